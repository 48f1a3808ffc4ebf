"""scripts/gpu_run.sh on the CPU: OUTDIR holds what finished after every step (status.txt, logs.tar.gz,
bench.csv, one archive per finished notebook), also when the run is killed part-way, and a second call on
the same work folder resumes. (The whole dry run, with a bundle and a node-like environment, is
`make gpu-dry-run`: it installs torch into a fresh environment, too slow for every test run.)"""

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_BENCH = (
    "--width 4 --teacher-arch resnet10 --teacher-width 4 --batch-size 8 --steps 1 --warmup 1 --rounds 1 --device cpu"
)
TWO_NOTEBOOKS = "01_teacher_training 02_importance_per_layer"
VERSIONS = ("python", "numpy", "pandas", "matplotlib", "seaborn", "torchvision", "torch")
LIMIT_BYTES = 16 * 1024 * 1024


def environment(bundle: Path, work: Path, **settings: str) -> dict[str, str]:
    return (
        os.environ
        | {
            "PYTHON": sys.executable,
            "BUNDLE": str(bundle),
            "TGKIT_GPU_WORK": str(work),
            "BENCH_ARGS": TINY_BENCH,
            "CELL_TIMEOUT_S": "300",
        }
        | settings
    )


def gpu_run(profile: str, outdir: Path, bundle: Path, *arguments: str, **settings: str) -> subprocess.CompletedProcess:
    """The script run to its end, its work folder in the test's folder (beside `outdir`)."""
    return subprocess.run(
        ["bash", "scripts/gpu_run.sh", profile, str(outdir), *arguments],
        cwd=REPO,
        env=environment(bundle, outdir.parent / "work", **settings),
        capture_output=True,
        text=True,
        timeout=900,
    )


def bundle_with_a_wheel(folder: Path) -> Path:
    """A bundle whose only wheel is a one-module package, tgkit_probe: enough for pip to install."""
    wheels = folder / "wheels"
    wheels.mkdir(parents=True)
    info = "tgkit_probe-1.0.dist-info"
    with zipfile.ZipFile(wheels / "tgkit_probe-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("tgkit_probe/__init__.py", "PROBE = 1\n")
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: tgkit-probe\nVersion: 1.0\n")
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    return folder


def outdir_files(outdir: Path) -> dict[str, Path]:
    """OUTDIR's entries, checked to be what the device tool brings back: at most 8 files, no folder."""
    entries = sorted(outdir.iterdir())
    assert len(entries) <= 8, entries
    assert all(entry.is_file() for entry in entries), entries
    return {entry.name: entry for entry in entries}


def members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as packed:
        return {member.name.removeprefix("./"): member for member in packed.getmembers()}


def read_member(archive: Path, name: str) -> str:
    with tarfile.open(archive) as packed:
        return packed.extractfile(name).read().decode()


def status_lines(outdir: Path) -> dict[str, str]:
    """status.txt as {step: its status}, from its "step: status" lines."""
    lines = (outdir / "status.txt").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def assert_notebook_archive(archive: Path, notebook: str) -> dict:
    """The archive holds the notebook's figures, tables, manifest and executed copy; returns the manifest."""
    assert archive.stat().st_size <= LIMIT_BYTES
    packed = members(archive)
    prefix = f"smoke/digits/{notebook[:3]}"
    assert any(name.startswith(prefix) and name.endswith(".png") for name in packed), sorted(packed)
    assert any(name.startswith(prefix) and name.endswith(".csv") for name in packed), sorted(packed)
    assert f"smoke/digits/executed/{notebook}.ipynb" in packed, sorted(packed)
    return json.loads(read_member(archive, f"smoke/digits/{notebook}.manifest.json"))


@pytest.mark.slow
def test_a_smoke_run_packs_status_logs_bench_and_each_notebook(tmp_path):
    out = tmp_path / "out"
    finished = gpu_run("smoke", out, tmp_path / "empty-bundle", NOTEBOOKS="01_teacher_training")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    files = outdir_files(out)
    assert set(files) == {"status.txt", "logs.tar.gz", "bench.csv", "01_teacher_training.tar.gz"}
    manifest = assert_notebook_archive(files["01_teacher_training.tar.gz"], "01_teacher_training")
    assert manifest["notebook"] == "01_teacher_training.ipynb"

    status = status_lines(out)
    for step in ("node", "install", "data", "bench", "01_teacher_training"):
        assert status[step].startswith("ok, "), status
    assert all(f"{name} " in status["versions"] for name in VERSIONS), status["versions"]
    assert "total" in (out / "status.txt").read_text().splitlines()[-1]

    logs = files["logs.tar.gz"]
    for name in ("node", "install", "data", "bench", "01_teacher_training"):
        assert f"logs/call1/{name}.log" in members(logs), sorted(members(logs))
    assert "PLAN (arithmetic, not a measurement)" in read_member(logs, "logs/call1/bench.log")
    with tarfile.open(logs) as packed:
        wall_clock = pd.read_csv(packed.extractfile("batch_wall_clock.csv"))
    assert list(wall_clock["notebook"]) == ["01_teacher_training.ipynb"] and (wall_clock["status"] == "ok").all()
    assert not pd.read_csv(files["bench.csv"]).empty


def processes_naming(text: str) -> list[str]:
    """The command lines of the running processes that name `text` (a notebook kernel names its connection
    file, in the work folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        if text in command:
            found.append(command)
    return found


def wait_for(condition, what: str, process: subprocess.Popen, log: Path, seconds: float = 600) -> None:
    ends = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the run ended (exit {process.returncode}) before {what}:\n{log.read_text()}"
        assert time.monotonic() < ends, f"no {what} after {seconds} s:\n{log.read_text()}"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_run_killed_after_its_first_notebook_keeps_it_and_a_second_call_resumes(tmp_path):
    bundle = bundle_with_a_wheel(tmp_path / "bundle")
    out, log = tmp_path / "out", tmp_path / "first-call.log"
    with log.open("w") as output:
        first = subprocess.Popen(
            ["bash", "scripts/gpu_run.sh", "smoke", str(out)],
            cwd=REPO,
            env=environment(bundle, tmp_path / "work", NOTEBOOKS=TWO_NOTEBOOKS),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, all of it killed below
        )
    try:
        # notebook 01 is packed, then status.txt names 02 as started: kill while 02 computes, no trap runs
        wait_for(
            lambda: (
                (out / "status.txt").is_file()
                and "02_importance_per_layer: started at" in (out / "status.txt").read_text()
            ),
            "notebook 02 starting",
            first,
            log,
        )
        time.sleep(5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # the kernel of notebook 02, in a session of its own, ends when it sees its parent gone
    ends = time.monotonic() + 30
    while processes_naming(str(tmp_path / "work")) and time.monotonic() < ends:
        time.sleep(0.5)
    assert not processes_naming(str(tmp_path / "work")), processes_naming(str(tmp_path / "work"))

    assert (out / "01_teacher_training.tar.gz").is_file(), (out / "status.txt").read_text() + log.read_text()
    files = outdir_files(out)
    assert set(files) == {"status.txt", "logs.tar.gz", "bench.csv", "01_teacher_training.tar.gz"}, log.read_text()
    status = status_lines(out)
    assert status["01_teacher_training"].startswith("ok, ") and status["bench"].startswith("ok, "), status
    assert (
        status["02_importance_per_layer"].startswith("started at")
        and "no result yet" in status["02_importance_per_layer"]
    ), status
    assert all(f"{name} " in status["versions"] for name in VERSIONS), status["versions"]
    first_manifest = assert_notebook_archive(files["01_teacher_training.tar.gz"], "01_teacher_training")
    assert not any(stage["cached"] for stage in first_manifest["pipeline_stages"]), first_manifest["pipeline_stages"]
    logs = members(files["logs.tar.gz"])
    assert {"logs/call1/node.log", "logs/call1/bench.log", "logs/call1/01_teacher_training.log"} <= set(logs), logs
    assert not pd.read_csv(files["bench.csv"]).empty

    # the second call, into an empty OUTDIR as the device tool gives it, resumes from the work folder
    out2 = tmp_path / "out2"
    second = gpu_run("smoke", out2, bundle, NOTEBOOKS=TWO_NOTEBOOKS)
    assert second.returncode == 0, second.stdout + second.stderr
    files = outdir_files(out2)
    assert set(files) == {
        "status.txt",
        "logs.tar.gz",
        "bench.csv",
        "01_teacher_training.tar.gz",
        "02_importance_per_layer.tar.gz",
    }
    status = status_lines(out2)
    assert status["install"].startswith("skipped (installed by an earlier call"), status
    assert status["bench"].startswith("skipped") and status["01_teacher_training"].startswith("skipped"), status
    assert status["02_importance_per_layer"].startswith("ok, "), status
    assert assert_notebook_archive(files["01_teacher_training.tar.gz"], "01_teacher_training") == first_manifest
    # notebook 02 reads the teacher and the dense student that notebook 01 trained in the first call
    stages = assert_notebook_archive(files["02_importance_per_layer.tar.gz"], "02_importance_per_layer")[
        "pipeline_stages"
    ]
    assert {stage["stage"]: stage["cached"] for stage in stages if stage["stage"] in ("teacher", "student")} == {
        "teacher": True,
        "student": True,
    }, stages
    assert {"logs/call1/node.log", "logs/call2/node.log", "logs/call2/02_importance_per_layer.log"} <= set(
        members(files["logs.tar.gz"])
    )


def test_install_extract_and_bench_run_once_per_work_folder(tmp_path):
    bundle = bundle_with_a_wheel(tmp_path / "bundle")
    with tarfile.open(bundle / "cifar10-jpeg.tar.gz", "w:gz") as archive:
        readme = tmp_path / "README"
        readme.write_text("a stand-in for the dataset archive\n")
        archive.add(readme, "cifar10-jpeg/README")
    # no notebook starts: each needs more time than the deadline leaves (exit 124)
    first = gpu_run("fast", tmp_path / "out", bundle, "600", MIN_NOTEBOOK_S="100000")
    assert first.returncode == 124, first.stdout + first.stderr
    status = status_lines(tmp_path / "out")
    assert "deadline 600 s" in (tmp_path / "out" / "status.txt").read_text()
    for step in ("install", "data", "bench"):
        assert status[step].startswith("ok, "), status
    assert status["04_colt_latency"].startswith("not started (deadline"), status
    site = tmp_path / "work" / "site"
    assert (site / "tgkit_probe" / "__init__.py").is_file() and not list(site.rglob("*.pyc")), "--no-compile"
    assert (tmp_path / "work" / "data" / "cifar10-jpeg" / "README").is_file()

    second = gpu_run("fast", tmp_path / "out2", bundle, "600", MIN_NOTEBOOK_S="100000")
    assert second.returncode == 124, second.stdout + second.stderr
    status = status_lines(tmp_path / "out2")
    assert status["install"].startswith("skipped (installed by an earlier call"), status
    assert status["data"].startswith("skipped (extracted by an earlier call"), status
    assert status["bench"].startswith("skipped (measured by an earlier call"), status
    assert set(outdir_files(tmp_path / "out2")) == {"status.txt", "logs.tar.gz", "bench.csv"}


@pytest.mark.slow
def test_the_deadline_cuts_a_notebook_in_time_to_pack(tmp_path):
    out = tmp_path / "out"
    # a first call does the steps before the notebooks, so that the second spends its few seconds on notebook 01
    gpu_run("smoke", out, tmp_path / "bundle", MIN_NOTEBOOK_S="100000")
    began = time.monotonic()
    cut = gpu_run("smoke", out, tmp_path / "bundle", "30", NOTEBOOKS="01_teacher_training", MIN_NOTEBOOK_S="5")
    assert cut.returncode == 124, cut.stdout + cut.stderr
    assert time.monotonic() - began < 30  # the deadline: steps end PACK_RESERVE_S (20 s) before it
    status = status_lines(out)
    assert status["01_teacher_training"].startswith("cut at the deadline after"), status
    assert "logs/call2/01_teacher_training.log" in members(out / "logs.tar.gz")
    assert "01_teacher_training.tar.gz" not in outdir_files(out)
    assert not processes_naming(str(tmp_path / "work")), "the cut notebook's processes outlived the run"


def test_a_failed_run_still_packs_its_logs_and_exits_non_zero(tmp_path):
    out = tmp_path / "out"
    finished = gpu_run("fast", out, tmp_path / "bundle-without-data")
    assert finished.returncode == 1, finished.stdout + finished.stderr
    files = outdir_files(out)
    assert set(files) == {"status.txt", "logs.tar.gz"}
    assert "make gpu-bundle DATASETS=cifar10" in read_member(files["logs.tar.gz"], "logs/call1/data.log")
    status = status_lines(out)
    assert status["data"].startswith("failed (exit 1)"), status
    assert status["bench"] == status["01_teacher_training"] == "not started (the data step failed)", status


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["huge", "out"], "unknown profile 'huge'"), (["fast", "out", "soon"], "whole seconds, not 'soon'")],
)
def test_bad_arguments_are_refused_with_exit_status_2(tmp_path, arguments, message):
    finished = gpu_run(arguments[0], tmp_path / arguments[1], tmp_path / "bundle", *arguments[2:])
    assert finished.returncode == 2 and message in finished.stderr, finished.stderr
