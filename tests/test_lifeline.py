"""`tgkit.util.lifeline`: a worker ends when the process it works for ends, even one killed outright
(a local sweep's workers must not run on as orphans), through Linux's pidfd and through the portable
poll; and a local sweep's jobs carry the sweep's process."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tgkit.util.lifeline import EXIT_ORPHANED

WORKER = textwrap.dedent(
    """
    import os, sys, time
    if sys.argv[2] == "poll":
        del os.pidfd_open  # as on a system without pidfds
    from tgkit.util.lifeline import end_with
    end_with(int(sys.argv[1]), poll_s=0.05)
    print("working", flush=True)
    time.sleep(120)
    """
)


def worker_for(pid: int, path: str) -> subprocess.Popen:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(pid), path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return worker


@pytest.mark.parametrize("path", ["pidfd", "poll"])
def test_a_worker_ends_when_its_sweep_is_killed_outright(path):
    sweep = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    worker = worker_for(sweep.pid, path)
    try:
        assert worker.stdout.readline() == "working\n"  # alive while the sweep is
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait()
        assert worker.wait(timeout=20) == EXIT_ORPHANED
        assert f"the sweep process {sweep.pid} has ended" in worker.stderr.read()
    finally:
        for process in (sweep, worker):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_worker_whose_sweep_is_already_gone_ends_at_once():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    worker = worker_for(gone.pid, "pidfd")
    assert worker.wait(timeout=20) == EXIT_ORPHANED


def test_local_sweep_jobs_carry_the_sweeps_process_and_slurm_ones_do_not(monkeypatch, tmp_path):
    from tgkit import hparams
    from tgkit.study import jobs

    submitted = []
    monkeypatch.setattr(jobs, "submit", lambda batch, cluster: submitted.extend(batch) or [])
    monkeypatch.setattr(jobs, "collect", lambda *args, **kwargs: None)
    config = hparams.profile("smoke", sweep=(0.5,), seeds=(0,))
    for executor, expected in (("local", os.getpid()), ("slurm", None)):
        submitted.clear()
        jobs.run_grid([config], hparams.ClusterConfig(executor=executor, folder=str(tmp_path)), runs_dir=tmp_path)
        assert submitted and {job.sweep_pid for job in submitted} == {expected}
