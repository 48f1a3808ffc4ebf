"""`tgkit.util.errors`: the kit's errors share one base class, and the command lines print those on one
line (exit status 2) while anything else, a bug, shows its traceback."""

import pytest

from tgkit import masker, train
from tgkit.data import DatasetNotFound
from tgkit.deploy.export import ExportFormatError
from tgkit.study import batch, cli, jobs, runcache
from tgkit.study.pipeline import Experiment
from tgkit.util.checkpoint import CheckpointError
from tgkit.util.errors import EXIT_ERROR, InputError, TgkitError, run_command


@pytest.mark.parametrize(
    "error, builtin",
    [
        (InputError, ValueError),
        (CheckpointError, RuntimeError),
        (ExportFormatError, RuntimeError),
        (DatasetNotFound, FileNotFoundError),
        (train.TrainingDiverged, FloatingPointError),
        (runcache.RunCacheIsAFile, NotADirectoryError),
        (masker.MaskMismatchError, KeyError),
        (jobs.SweepFailed, Exception),
        (batch.NotebookFailed, Exception),
    ],
)
def test_every_kit_error_is_a_tgkit_error_and_still_the_builtin_it_refines(error, builtin):
    assert issubclass(error, TgkitError) and issubclass(error, builtin)


def test_a_kit_error_is_one_line_and_status_2(capsys):
    def command():
        raise InputError("--sparsity 1.5 is outside [0, 1)")

    assert run_command(command) == EXIT_ERROR
    assert capsys.readouterr().err == "error: --sparsity 1.5 is outside [0, 1)\n"


def test_with_debug_a_kit_error_shows_its_traceback():
    def command():
        raise InputError("bad")

    with pytest.raises(InputError, match="bad"):
        run_command(command, debug=True)


def test_anything_else_is_a_bug_and_propagates(capsys):
    def command():
        raise ValueError("a bug deep in training")

    with pytest.raises(ValueError, match="a bug deep in training"):
        run_command(command)
    assert capsys.readouterr().err == ""


def test_the_run_command_shows_a_bugs_traceback_instead_of_calling_it_bad_input(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise ValueError("shapes do not match: a bug")

    monkeypatch.setattr(Experiment, "summary_table", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["run", "--profile", "smoke", "--runs-dir", str(tmp_path)])


def test_the_run_command_with_debug_shows_a_kit_errors_traceback(tmp_path):
    with pytest.raises(InputError, match="outside"):
        cli.main(["run", "--sparsity", "1.5", "--runs-dir", str(tmp_path), "--debug"])
    assert cli.main(["run", "--sparsity", "1.5", "--runs-dir", str(tmp_path)]) == EXIT_ERROR
