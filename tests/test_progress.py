"""Progress bars follow who is watching: widgets only where a live notebook can draw them."""

from tqdm import std
from tqdm.auto import tqdm as auto_tqdm

from tgkit import progress


def test_headless_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(progress.HEADLESS_VARIABLE, raising=False)
    assert not progress.headless()
    monkeypatch.setenv(progress.HEADLESS_VARIABLE, "1")
    assert progress.headless()
    monkeypatch.setenv(progress.HEADLESS_VARIABLE, "0")
    assert not progress.headless()


def test_a_headless_progress_bar_is_plain_text_left_in_place(monkeypatch):
    monkeypatch.setenv(progress.HEADLESS_VARIABLE, "1")
    with progress.progress_bar(range(3), disable=True, leave=False) as bar:
        assert type(bar) is std.tqdm and bar.leave
        assert list(bar) == [0, 1, 2]
    monkeypatch.delenv(progress.HEADLESS_VARIABLE)
    with progress.progress_bar(range(3), disable=True, leave=False) as bar:
        assert type(bar) is auto_tqdm and not bar.leave
