"""scripts/gpu_run.sh on the CPU: one archive with the figures, tables, bench table and logs, packed
whether the run succeeds or fails. (The whole dry run, with a bundle and a node-like environment, is
`make gpu-dry-run`: it installs torch into a fresh environment, too slow for every test run.)"""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_BENCH = (
    "--width 4 --teacher-arch resnet10 --teacher-width 4 --batch-size 8 --steps 1 --warmup 1 --rounds 1 --device cpu"
)


def gpu_run(profile: str, outdir: Path, bundle: Path, **settings: str) -> subprocess.CompletedProcess:
    environment = (
        os.environ
        | {"PYTHON": sys.executable, "BUNDLE": str(bundle), "BENCH_ARGS": TINY_BENCH, "CELL_TIMEOUT_S": "300"}
        | settings
    )
    return subprocess.run(
        ["bash", "scripts/gpu_run.sh", profile, str(outdir)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


def members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as packed:
        return {member.name.removeprefix("./"): member for member in packed.getmembers()}


def read_member(archive: Path, name: str) -> str:
    with tarfile.open(archive) as packed:
        return packed.extractfile(f"./{name}").read().decode()


@pytest.mark.slow
def test_a_smoke_run_packs_figures_tables_bench_and_logs(tmp_path):
    finished = gpu_run("smoke", tmp_path / "out", tmp_path / "empty-bundle", NOTEBOOKS="01_teacher_training")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    archive = tmp_path / "out" / "tgkit-smoke-digits.tar.gz"
    assert archive.stat().st_size <= 16 * 1024 * 1024
    packed = members(archive)
    for name in (
        "status.txt",
        "bench.csv",
        "logs/bench.log",
        "logs/batch.log",
        "logs/node.log",
        "figures/smoke/digits/01_accuracies.csv",
        "figures/smoke/digits/01_learning_curves.png",
        "figures/smoke/digits/01_teacher_training.manifest.json",
        "figures/smoke/digits/batch_wall_clock.csv",
        "figures/smoke/digits/executed/01_teacher_training.ipynb",
    ):
        assert name in packed, f"{name} missing from {sorted(packed)}"
    status = read_member(archive, "status.txt")
    for step in ("node", "install", "data", "bench", "batch"):
        assert f"{step:<8}   0" in status, status
    assert "PLAN (arithmetic, not a measurement)" in read_member(archive, "logs/bench.log")
    with tarfile.open(archive) as packed_file:
        wall_clock = pd.read_csv(packed_file.extractfile("./figures/smoke/digits/batch_wall_clock.csv"))
    assert list(wall_clock["notebook"]) == ["01_teacher_training.ipynb"] and (wall_clock["status"] == "ok").all()


@pytest.mark.slow
def test_a_failed_run_still_packs_its_logs_and_exits_non_zero(tmp_path):
    finished = gpu_run("fast", tmp_path / "out", tmp_path / "bundle-without-data")
    assert finished.returncode != 0
    archive = tmp_path / "out" / "tgkit-fast-cifar10.tar.gz"
    packed = members(archive)
    assert "logs/data.log" in packed and "status.txt" in packed
    assert "make gpu-bundle DATASETS=cifar10" in read_member(archive, "logs/data.log")
    assert "data       1" in read_member(archive, "status.txt")


def test_an_unknown_profile_is_refused(tmp_path):
    finished = gpu_run("huge", tmp_path / "out", tmp_path / "bundle")
    assert finished.returncode == 2 and "unknown profile 'huge'" in finished.stderr
