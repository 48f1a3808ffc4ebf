"""`tgkit.study.cli`, `python -m tgkit run`, as a new user meets it: every field settable with --set, and
errors (not tracebacks) that name the fix, all with one exit status, before any training starts."""

import os
import tempfile
from pathlib import Path

import pytest
import torch

from conftest import stage_folders
from tgkit.study import cli
from tgkit.util.errors import EXIT_ERROR


def run(*argv: str) -> int:
    return cli.main(["run", *argv])


# ---- --help and --set ---------------------------------------------------------------------------


def test_help_lists_every_settable_field(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    printed = capsys.readouterr().out
    for name in ("teacher_training.epochs", "train_subset", "scoring.kd.temperature", "colt.round_training.lr"):
        assert f"  {name} " in printed
    assert "--set KEY=VALUE" in printed


def test_a_subset_larger_than_the_data_says_which_setting_fixes_it(tmp_path, capsys):
    assert run("--profile", "smoke", "--set", "train_subset=5000", "--runs-dir", str(tmp_path)) == EXIT_ERROR
    error = capsys.readouterr().err
    assert error.startswith("error: train_subset=5000") and "--set train_subset=none" in error


# ---- errors, each naming the fix, before any work -------------------------------------------------


def test_bad_arguments_fail_with_one_exit_status_and_a_message(tmp_path, capsys):
    a_file = tmp_path / "runs.txt"
    a_file.write_text("")
    cases = [
        (["--sparsity", "1.5"], "outside [0, 1)"),
        (["--sparsity", "0.9999"], "unreachable"),
        (["--runs-dir", str(a_file)], "is a file"),
        (["--output", str(tmp_path)], "is a folder"),
        (["--device", "tpu"], "--device tpu"),
        (["--set", "kd.temperature=0"], "kd: temperature must be a finite number > 0"),
        (["--set", "student_kd.alpha=2"], "student_kd: alpha must be"),
        (["--dataset", "mnist"], "unknown dataset"),
    ]
    for arguments, message in cases:
        runs = tmp_path / "runs"
        assert run("--profile", "smoke", "--runs-dir", str(runs), *arguments) == EXIT_ERROR, arguments
        error = capsys.readouterr().err
        assert error.startswith("error: ") and message in error and "Traceback" not in error, (arguments, error)
        assert stage_folders(runs) == [], f"{arguments} left stage folders behind"


@pytest.mark.parametrize(
    "setting, message",
    [
        ("sparsities=()", "error: --set sparsities: sparsities is empty; it takes at least one sparsity in [0, 1)"),
        ("student.width=0", "error: --set student.width: width takes a whole number >= 1"),
        ("teacher_training.epochs=0", "error: --set teacher_training.epochs: epochs takes a whole number >= 1"),
        ("student_training.batch_size=0", "error: --set student_training.batch_size: batch_size takes a whole"),
        ("val_fraction=0", "error: --set val_fraction: val_fraction takes a number in (0, 1)"),
        ("retraining.optimizer=adamw", "error: --set retraining.optimizer: optimizer takes one of sgd, adam"),
        ("retraining.schedule=cosine", "error: --set retraining.schedule: schedule takes one of onecycle, constant"),
    ],
)
def test_a_setting_that_would_fail_late_is_refused_in_one_line_before_any_stage(setting, message, tmp_path, capsys):
    """Issue 23: an IndexError after training the teacher (sparsities=()), a ZeroDivisionError (width 0), a
    failure after training started (val_fraction=0) or after 64 s of it (an unknown retraining optimizer)."""
    runs = tmp_path / "runs"
    assert run("--profile", "smoke", "--runs-dir", str(runs), "--set", setting) == EXIT_ERROR
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1 and "Traceback" not in error, error
    assert stage_folders(runs) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_where_there_is_none(tmp_path, capsys):
    assert run("--device", "cuda", "--runs-dir", str(tmp_path)) == EXIT_ERROR
    assert "no CUDA GPU" in capsys.readouterr().err


def test_a_run_cache_that_cannot_be_written_points_to_runs_dir(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes through file modes; /sys refuses everyone
        unwritable = Path("/sys/tgkit-runs")
    else:
        unwritable = Path(tempfile.mkdtemp(dir=tmp_path))
        unwritable.chmod(0o555)
        unwritable = unwritable / "runs"
    assert run("--profile", "smoke", "--sparsity", "0.9", "--runs-dir", str(unwritable)) == EXIT_ERROR
    error = capsys.readouterr().err
    assert error.startswith("error: cannot write") and "--runs-dir or TGKIT_RUNS" in error


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sparsity", "1.5"], "outside [0, 1)"),
        (["--sparsity", "-0.1"], "outside [0, 1)"),
    ],
)
def test_cli_rejects_bad_sparsity(argv, message, capsys, tmp_path):
    runs = tmp_path / "runs"
    assert run("--profile", "smoke", "--runs-dir", str(runs), *argv) == EXIT_ERROR  # one status for every handled error
    assert message in capsys.readouterr().err
    assert stage_folders(runs) == []


def test_cli_unknown_dataset_fails_clearly(capsys, tmp_path):
    assert cli.main(["run", "--dataset", "mnist", "--runs-dir", str(tmp_path)]) == 2
    assert "digits" in capsys.readouterr().err
