"""Where the kit reads and writes by default (`tgkit.util.locations`): the checkout the command runs in,
found from the working directory, else the user folder; the environment variables win over both."""

from pathlib import Path

import pytest

from tgkit import hparams, report
from tgkit.study import batch
from tgkit.study.pipeline import Experiment
from tgkit.util import locations
from tgkit.util.errors import InputError

VARIABLES = ("TGKIT_DATA", "TGKIT_RUNS", "TGKIT_FIGURES", "TGKIT_GIT_COMMIT", "XDG_DATA_HOME")


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch, tmp_path):
    """No variable of the kit set, and a home of the test's own: the defaults alone decide."""
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def fake_checkout(folder: Path, name: str = "tgkit") -> Path:
    """A folder that looks like a checkout of project `name`: a pyproject.toml naming it."""
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f'[build-system]\nrequires = ["setuptools"]\n\n[project]\nname = "{name}"\n')
    return folder.resolve()


def test_the_checkout_is_found_from_a_folder_deep_inside_it(tmp_path):
    kit = fake_checkout(tmp_path / "kit")
    nested = kit / "notebooks" / "drafts"
    nested.mkdir(parents=True)
    assert locations.checkout(nested) == kit
    assert locations.checkout(kit) == kit


def test_another_projects_pyproject_is_walked_past(tmp_path):
    kit = fake_checkout(tmp_path / "kit")
    other = fake_checkout(kit / "vendor" / "other", name="other")
    assert locations.checkout(other) == kit
    assert locations.checkout(fake_checkout(tmp_path / "elsewhere", name="other")) is None


def test_in_a_checkout_every_default_lies_in_it(tmp_path, monkeypatch):
    kit = fake_checkout(tmp_path / "kit")
    (kit / "notebooks").mkdir()
    monkeypatch.chdir(kit / "notebooks")  # where a notebook runs
    assert locations.checkout() == kit
    assert locations.root() == kit
    assert locations.data_dir() == kit / "data"
    assert locations.runs_dir() == kit / "data" / "runs"
    assert locations.figures_root() == kit / "figures"
    assert locations.notebooks_dir() == kit / "notebooks"


def test_outside_a_checkout_the_defaults_lie_in_the_user_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert locations.checkout() is None
    user = tmp_path / "home" / ".local" / "share" / "tgkit"
    assert locations.user_folder() == user
    assert locations.root() == user
    assert locations.data_dir() == user / "data"
    assert locations.runs_dir() == user / "data" / "runs"
    assert locations.figures_root() == user / "figures"


def test_the_user_folder_honours_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert locations.user_folder() == tmp_path / "xdg" / "tgkit"
    assert locations.data_dir() == tmp_path / "xdg" / "tgkit" / "data"
    assert locations.figures_root() == tmp_path / "xdg" / "tgkit" / "figures"


def test_the_environment_variables_win_over_the_checkout(tmp_path, monkeypatch):
    kit = fake_checkout(tmp_path / "kit")
    monkeypatch.chdir(kit)
    monkeypatch.setenv("TGKIT_DATA", str(tmp_path / "datasets"))
    assert locations.data_dir() == tmp_path / "datasets"
    assert locations.runs_dir() == tmp_path / "datasets" / "runs"  # the run cache follows the data folder
    monkeypatch.setenv("TGKIT_RUNS", str(tmp_path / "cache"))
    monkeypatch.setenv("TGKIT_FIGURES", str(tmp_path / "plots"))
    assert locations.runs_dir() == tmp_path / "cache"
    assert locations.figures_root() == tmp_path / "plots"


def test_a_variable_may_start_with_a_tilde_and_an_empty_one_counts_as_unset(tmp_path, monkeypatch):
    kit = fake_checkout(tmp_path / "kit")
    monkeypatch.chdir(kit)
    monkeypatch.setenv("TGKIT_DATA", "~/datasets")
    assert locations.data_dir() == tmp_path / "home" / "datasets"
    monkeypatch.setenv("TGKIT_DATA", "")
    assert locations.data_dir() == kit / "data"


def test_the_notebooks_outside_a_checkout_are_refused_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="notebooks belong to a checkout of the kit.*clone"):
        locations.notebooks_dir()


def test_the_batch_outside_a_checkout_takes_notebooks_by_path_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    notebook = tmp_path / "mine.ipynb"
    notebook.write_text("{}")
    assert batch.find_notebooks([str(notebook)]) == [notebook.resolve()]
    with pytest.raises(InputError, match="checkout of the kit"):
        batch.find_notebooks(["01_teacher_training"])


def test_the_writers_defaults_follow_the_checkout(tmp_path, monkeypatch):
    """Figures and the run cache follow the checkout the command runs in, not the package's source."""
    kit = fake_checkout(tmp_path / "kit")
    monkeypatch.chdir(kit)
    monkeypatch.setenv("TGKIT_GIT_COMMIT", "0123456789abcdef")
    assert report.figures_dir("smoke", "imagefolder:a/b") == kit / "figures" / "smoke" / "imagefolder_a_b"
    assert Experiment(hparams.profile("smoke"), device="cpu", progress=False).runs_dir == kit / "data" / "runs"


def test_the_manifests_commit_is_that_of_the_code_that_runs_not_of_the_working_directory(tmp_path, monkeypatch):
    kit = fake_checkout(tmp_path / "kit")
    monkeypatch.chdir(kit)
    running = locations.code_checkout()
    assert running == Path(locations.__file__).resolve().parents[2] != kit  # the editable install's checkout
    monkeypatch.setattr(locations, "code_checkout", lambda: None)  # as for an installed copy
    monkeypatch.setenv("TGKIT_GIT_COMMIT", "0123456789abcdef")
    assert report.git_commit() == "0123456789abcdef"
    monkeypatch.delenv("TGKIT_GIT_COMMIT")
    assert report.git_commit() == "unknown"
