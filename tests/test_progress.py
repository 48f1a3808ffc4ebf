"""`tgkit.util.progress`: progress bars follow who is watching: widgets only where a live notebook can draw them."""

from tqdm import std
from tqdm.auto import tqdm as auto_tqdm

from tgkit.util import progress


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
    with progress.progress_bar(range(3), disable=True) as bar:
        assert type(bar) is auto_tqdm  # a widget in a live notebook, kept when done


def test_a_bar_that_goes_away_is_text_even_in_a_live_notebook(monkeypatch):
    """A widget bar asked not to stay closes its widget, and a reloaded page then shows "Error displaying
    widget: model not found" where the saved notebook kept its output (tests/test_lab.py sees it)."""
    monkeypatch.delenv(progress.HEADLESS_VARIABLE, raising=False)
    with progress.progress_bar(range(3), disable=True, leave=False) as bar:
        assert type(bar) is std.tqdm and not bar.leave
