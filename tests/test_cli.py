"""The command line as a new user meets it: every field settable, and errors (not tracebacks) that name
the fix, all with one exit status, before any training starts."""

import os
import tempfile
from pathlib import Path

import pytest
import torch

from tgkit import hparams
from tgkit.study import cli
from tgkit.util import flags
from tgkit.util.errors import EXIT_ERROR, InputError


def run(*argv: str) -> int:
    return cli.main(["run", *argv])


def stage_folders(runs_dir: Path) -> list[str]:
    return sorted(p.name for p in runs_dir.iterdir() if not p.name.startswith(".")) if runs_dir.exists() else []


# ---- --set KEY=VALUE -----------------------------------------------------------------------------


def test_any_field_can_be_set_nested_ones_included():
    config = flags.apply_settings(
        hparams.profile("quick"),
        [
            "teacher_training.epochs=3",
            "train_subset=none",
            "kd.temperature=5",
            "sparsities=(0.9, 0.95)",
            "student.arch=resnet18",
            "colt.target_sparsity=0.9",
            "teacher_training.nesterov=false",
        ],
    )
    assert config.teacher_training.epochs == 3 and config.train_subset is None
    assert config.kd.temperature == 5.0 and isinstance(config.kd.temperature, float)
    assert config.sparsities == (0.9, 0.95) and config.student.arch == "resnet18"
    assert config.colt.target_sparsity == 0.9 and config.teacher_training.nesterov is False
    assert config.student_training.epochs == hparams.profile("quick").student_training.epochs  # untouched


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("teacher_training.epoch=3", "has no field 'epoch'"),
        ("teacher_training.epochs=three", "takes int"),
        ("teacher_training.epochs=2.5", "takes int"),
        ("teacher_training.epochs=none", "not none"),
        ("kd=3", "one by one"),
        ("epochs", "write KEY=VALUE"),
        ("colt.prune_rate=1.5", "prune_rate must be in"),
        ("sparsities=(0.9, 'x')", "numbers"),
    ],
)
def test_a_bad_setting_names_what_the_field_takes(assignment, message):
    with pytest.raises(InputError, match=message):
        flags.apply_settings(hparams.profile("quick"), [assignment])


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
