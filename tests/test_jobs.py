"""`tgkit.study.jobs`: the sweep as jobs (submitit): local workers give the in-process sweep's table, a
killed worker leaves nothing half-written and is finished on resubmission, notebook 03 draws the result
without recomputing, and SLURM's parameters are checked by submitit without submitting anything."""

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from tgkit import hparams
from tgkit.hparams import ClusterConfig
from tgkit.study import jobs, runcache, sweep
from tgkit.util import flags

REPO = Path(__file__).resolve().parents[1]
# a small grid: one level, one seed, one temperature; teacher-guided with and without KD, and the baselines
# (dense networks trained for a moment)
GRID = ["sweep=(0.9,)", "seeds=(0,)", "temperatures=(3.0,)", "teacher_training.epochs=3", "student_training.epochs=3"]
NUMBERS = [
    "method",
    "retraining",
    "temperature",
    "seed",
    "sparsity_target",
    "sparsity_all",
    "sparsity_prunable",
    "test_accuracy",
]


def smoke(*settings: str) -> hparams.RunConfig:
    return flags.apply_settings(hparams.profile("smoke"), [*GRID, *settings])


def copy_shared_stages(source: Path, target: Path) -> None:
    """The stages the runs build on (teacher, dense student, scores), copied into another run cache."""
    for stage in source.iterdir():
        if not stage.name.startswith(("pruned-", ".")):
            shutil.copytree(stage, target / stage.name)


def numbers(table: pd.DataFrame) -> pd.DataFrame:
    return table[NUMBERS].sort_values(NUMBERS[:4], na_position="first").reset_index(drop=True)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The small grid through two local workers (one thread each, on 2 cores), and its run cache."""
    root = tmp_path_factory.mktemp("sweep")
    messages = []
    started = time.perf_counter()
    table = jobs.run_grid(
        [smoke()], ClusterConfig("local", str(root / "logs"), workers=2), runs_dir=root / "runs", say=messages.append
    )
    print(f"local sweep, 2 workers: {time.perf_counter() - started:.0f} s")
    return root, table, messages


@pytest.mark.slow
def test_two_local_workers_give_the_in_process_sweeps_table(local_sweep, tmp_path):
    root, table, messages = local_sweep
    assert len(table) == len(sweep.plan(smoke())) == 5 and (table["dataset"] == "digits").all()
    assert "1 job(s) for the shared stages, then 2 for the runs (local)" in messages
    copy_shared_stages(root / "runs", tmp_path / "runs")  # the in-process runs start from the same dense networks
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(len(os.sched_getaffinity(0)) // 2)  # the workers' threads: the same numbers
        in_process = jobs.run_grid(
            [smoke()],
            ClusterConfig("debug", str(tmp_path / "logs")),
            runs_dir=tmp_path / "runs",
            say=lambda message: None,
        )
    finally:
        torch.set_num_threads(threads)
    pd.testing.assert_frame_equal(numbers(table), numbers(in_process))


@pytest.mark.slow
def test_a_grid_submitted_again_submits_nothing(local_sweep):
    root, table, _ = local_sweep
    messages = []
    again = jobs.run_grid(
        [smoke()], ClusterConfig("local", str(root / "logs"), workers=2), runs_dir=root / "runs", say=messages.append
    )
    assert "digits: 5 runs, 5 already in the run cache" in messages
    assert "0 job(s) for the shared stages, then 0 for the runs (local)" in messages
    pd.testing.assert_frame_equal(numbers(again), numbers(table))


@pytest.mark.slow
def test_notebook_03_draws_the_jobs_sweep_without_recomputing(local_sweep, tmp_path):
    root, _, _ = local_sweep
    executed = tmp_path / "03.ipynb"
    environment = os.environ | {
        "TGKIT_RUNS": str(root / "runs"),
        "TGKIT_FIGURES": str(tmp_path / "figures"),
        "TGKIT_HEADLESS": "1",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(REPO / "notebooks" / "03_sparsity_sweep.ipynb"),
            str(executed),
            "-p",
            "cpu_threads",
            str(len(os.sched_getaffinity(0)) // 2),
            "-y",
            json.dumps({"settings": GRID}),
            "--cwd",
            str(REPO / "notebooks"),
        ],
        env=environment,
        check=True,
        capture_output=True,
        timeout=600,
    )
    manifest = json.loads((tmp_path / "figures" / "smoke" / "digits" / "03_sparsity_sweep.manifest.json").read_text())
    assert manifest["runs"] == 5 and manifest["runs_computed_now"] == 0
    assert all(stage["cached"] for stage in manifest["pipeline_stages"])


def _work_then_die(job: jobs.Job) -> None:
    jobs.run_job(job)


@pytest.mark.slow
def test_a_worker_killed_mid_stage_leaves_nothing_half_written_and_is_finished_later(tmp_path):
    config = smoke("baseline_sweep=()", "retraining.epochs=10")  # ten epochs: caught in the middle
    runs = tuple(sweep.plan(config))
    threads = len(os.sched_getaffinity(0)) // 2  # a worker's, of two: the thread count is part of every key
    jobs.run_job(jobs.Job(config, (), str(tmp_path / "runs"), None, threads))  # the shared stages, here
    worker = multiprocessing.get_context("spawn").Process(
        target=_work_then_die, args=(jobs.Job(config, runs, str(tmp_path / "runs"), None, threads),)
    )
    worker.start()
    deadline = time.monotonic() + 300
    while not list((tmp_path / "runs").glob("pruned-*/training.ckpt")):
        assert time.monotonic() < deadline and worker.is_alive(), "the worker never got into a retraining"
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)  # mid-stage: no handler runs
    worker.join()
    (folder,) = {path.parent for path in (tmp_path / "runs").glob("pruned-*/training.ckpt")}
    assert not (folder / runcache.RESULT).exists()
    torch.load(folder / "training.ckpt", weights_only=True)  # what is there is whole
    finished = jobs.run_grid(
        [config],
        ClusterConfig("local", str(tmp_path / "logs"), workers=2),
        runs_dir=tmp_path / "runs",
        say=lambda message: None,
    )
    assert (folder / runcache.RESULT).exists() and not list(folder.glob(".*.tmp"))
    copy_shared_stages(tmp_path / "runs", tmp_path / "fresh")  # the reference: the same dense networks
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        reference = jobs.run_grid(
            [config],
            ClusterConfig("debug", str(tmp_path / "logs")),
            runs_dir=tmp_path / "fresh",
            say=lambda message: None,
        )
    finally:
        torch.set_num_threads(saved)
    pd.testing.assert_frame_equal(numbers(finished), numbers(reference))


@pytest.mark.slow
def test_a_failed_job_is_reported_with_its_log(tmp_path):
    """Images that exist but cannot be decoded: the grid is planned (a folder's key reads no pixel), and the
    shared-stages job fails while decoding them, in its own process."""
    for split in ("train", "test"):
        for label in ("a", "b"):
            (tmp_path / "tree" / split / label).mkdir(parents=True)
            (tmp_path / "tree" / split / label / "0.png").write_bytes(b"not a png")
    config = hparams.profile("smoke", "imagefolder:" + str(tmp_path / "tree"))
    with pytest.raises(jobs.SweepFailed, match=r"shared-stages job \S+ failed: .*cannot decode.*\(log: .*\.err\)"):
        jobs.run_grid(
            [config],
            ClusterConfig("local", str(tmp_path / "logs"), workers=1),
            runs_dir=tmp_path / "runs",
            say=lambda message: None,
        )


def test_slurm_parameters_are_checked_by_submitit_without_submitting(tmp_path):
    cluster = ClusterConfig(
        "slurm",
        str(tmp_path / "logs"),
        partition="gpu",
        gpus_per_job=1,
        cpus_per_job=8,
        time_min=120,
        array_parallelism=16,
        mem_gb=32,
    )
    executor = jobs.slurm_executor(cluster, submitting=False)
    assert executor.parameters["partition"] == "gpu" and executor.parameters["array_parallelism"] == 16
    script = jobs.sbatch_script(cluster, 42)
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --time=120",
        "#SBATCH --mem=32GB",
        "#SBATCH --job-name=tgkit-sweep",
    ):
        assert line in script, script
    with pytest.raises(ValueError, match="no_such_option"):  # submitit refuses a parameter SLURM has not
        executor.update_parameters(no_such_option=1)


def test_the_command_line_dry_run_prints_the_grid_and_the_sbatch_file(capsys):
    # digits: a dry run loads the dataset, as the jobs would (digits is bundled, cifar10 may be absent)
    argv = ["--profile", "full", "--datasets", "digits", "--executor", "slurm", "--partition", "gpu", "--dry-run"]
    assert jobs.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"digits: {len(sweep.plan(hparams.profile('full')))} runs" in printed
    assert "#SBATCH --partition=gpu" in printed and "submitit.core._submit" in printed


def unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes through file modes; /sys refuses everyone
        return Path("/sys/tgkit-sweep-logs")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder / "logs"


@pytest.mark.parametrize(
    "argv, message",
    [
        # an empty grid ran nothing and exited 0
        (["--set", "seeds=()"], "error: --set seeds: seeds is empty; it takes at least one retraining seed"),
        (["--set", "sweep=()"], "error: --set sweep: sweep is empty; it takes at least one sparsity"),
        (["--set", "baseline_sweep=()", "--criteria", "snip"], "error: digits: the grid holds no runs of --criteria"),
        # non-positive counts
        (["--workers", "0"], "error: --workers takes a whole number >= 1"),
        (["--workers", "-1"], "error: --workers takes a whole number >= 1"),
        (["--jobs", "-1"], "error: --jobs takes a whole number >= 1"),
        # the dry run checks what the jobs would fail on: the dataset, the levels' reachability, the device
        (["--datasets", "mnist"], "error: mnist: unknown dataset 'mnist'"),
        (["--set", "sweep=(0.9999,)"], "error: digits: target sparsity 99.9900% over all weights is unreachable"),
        (["--device", "tpu"], "error: --device tpu: unknown device"),
    ],
)
def test_a_grid_that_cannot_run_is_refused_in_one_line_by_the_dry_run(argv, message, tmp_path, capsys):
    assert jobs.main(["--runs-dir", str(tmp_path / "runs"), *argv, "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1, error
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_an_unwritable_job_folder_is_refused_before_any_job(dry_run, tmp_path, capsys):
    folder = unwritable_folder(tmp_path)
    argv = ["--folder", str(folder), "--runs-dir", str(tmp_path / "runs"), *dry_run]
    assert jobs.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: --folder {folder}: cannot write in ") and "give --folder a writable" in error
    assert error.count("\n") == 1 and not (tmp_path / "runs").exists()
