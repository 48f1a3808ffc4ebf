"""The sweep of `study.sweep` as jobs.

`run_grid` (and `python -m tgkit sweep`) spreads a grid of runs, over several datasets if
asked, across processes through submitit, the engine of FAIR's research code: `executor="local"`
runs `workers` processes on this machine (each with its own GPU where there are several, else with
the CPU's threads divided between them), "slurm" submits SLURM job arrays (partition, GPUs and CPUs
per job, time limit, array parallelism), "debug" runs the jobs in this process. The stages every run
builds on (teacher, dense student, scores) are computed first, one job per dataset; then the runs,
spread over the jobs. The jobs meet in the run cache, which names every stage by what it depends on
and locks it while it is computed, so a stage finished by any job is never computed again, and a
grid submitted again submits only what is missing. At the end the table is collected from the cache,
the very table notebook 03 draws (with `cpu_threads` set to the jobs' threads: the thread count is
part of every stage's key on a CPU). Local workers end with the sweep's process, even one killed
outright (`util.lifeline`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import submitit
import torch

from tgkit import hparams
from tgkit.hparams import ClusterConfig, RunConfig
from tgkit.scorer import CRITERIA
from tgkit.study.pipeline import Experiment
from tgkit.study.sweep import SweepRun, plan, pruned, row_of, table_of
from tgkit.util import checkpoint, flags, lifeline, locations
from tgkit.util.device import checked_device
from tgkit.util.errors import InputError, TgkitError, run_command


class SweepFailed(TgkitError):
    """A job of the grid failed, or the grid is incomplete; the message names each failure and its log."""


@dataclass(frozen=True)
class Job:
    """What one submitted job computes: the runs of one dataset's configuration (none: the stages they
    all build on), in the run cache `runs_dir`, on `device`, with `cpu_threads` torch threads (0: its default).
    `sweep_pid`: the local sweep's process, which the job ends with (`util.lifeline`); None on SLURM."""

    config: RunConfig
    runs: tuple[SweepRun, ...]
    runs_dir: str
    device: str | None = None
    cpu_threads: int = 0
    sweep_pid: int | None = None

    def experiment(self) -> Experiment:
        if self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        return Experiment(self.config, runs_dir=self.runs_dir, device=self.device, progress=False)


def run_job(job: Job) -> int:
    """The function every job runs (in its own process, or in this one for "debug"): it computes the
    shared stages, or its runs, through the run cache; returns how many runs it went through."""
    if job.sweep_pid is not None and job.sweep_pid != os.getpid():  # a local worker: no orphans
        lifeline.end_with(job.sweep_pid)
    experiment = job.experiment()
    if not job.runs:
        experiment.student_result()
        for criterion, seed in shared_scores(job.config):
            experiment.scores(criterion, seed=seed)
    for run in job.runs:
        pruned(experiment, run)
    return len(job.runs)


def shared_scores(config: RunConfig) -> list[tuple[str, int]]:
    """(criterion, seed) of every set of scores the runs of `config` prune by: one per criterion, one per
    seed for a criterion that draws random numbers."""
    uses = {(run.criterion, run.seed if CRITERIA[run.criterion].uses_seed else config.seed) for run in plan(config)}
    return sorted(uses)


def missing(job: Job) -> tuple[bool, list[SweepRun]]:
    """Whether the shared stages of `job.config` must still be computed, and which of its runs: looked up
    in the run cache, under the jobs' thread count (part of every key on a CPU)."""
    threads = torch.get_num_threads()
    try:
        experiment = job.experiment()
        shared = [
            *experiment.dense_stages(),
            *(experiment.scores_stage(c, seed=s) for c, s in shared_scores(job.config)),
        ]
        runs = [
            run
            for run in job.runs
            if not experiment.pruned_stage(
                run.criterion, run.sparsity, kd=run.kd, retraining_temperature=run.temperature, seed=run.seed
            ).done
        ]
        return not all(stage.done for stage in shared), runs
    finally:
        torch.set_num_threads(threads)


class _PlanningSlurmExecutor(submitit.SlurmExecutor):
    """submitit's SLURM executor where there is no SLURM: it checks parameters and writes the sbatch
    file like the real one (which refuses to exist without srun), for dry runs; it is never submitted to."""

    @classmethod
    def affinity(cls) -> int:
        return 1


def slurm_executor(cluster: ClusterConfig, *, submitting: bool = True) -> submitit.SlurmExecutor:
    """submitit's SLURM executor with `cluster`'s parameters, checked by submitit; `submitting=False`
    works without SLURM, for a dry run."""
    executor = (submitit.SlurmExecutor if submitting else _PlanningSlurmExecutor)(folder=Path(cluster.folder) / "%j")
    parameters = dict(
        gpus_per_node=cluster.gpus_per_job,
        cpus_per_task=cluster.cpus_per_job,
        time=cluster.time_min,
        array_parallelism=cluster.array_parallelism,
        job_name="tgkit-sweep",
    )
    if cluster.partition:
        parameters["partition"] = cluster.partition
    if cluster.mem_gb:
        parameters["mem"] = f"{cluster.mem_gb:g}GB"
    executor.update_parameters(**parameters)
    return executor


def sbatch_script(cluster: ClusterConfig, tasks: int) -> str:
    """The sbatch file submitit writes for a job array of `tasks` tasks on `cluster`; needs no SLURM."""
    executor = slurm_executor(cluster, submitting=False)
    executor.parameters["map_count"] = tasks  # as submitit's map_array sets it for the array it submits
    return executor._make_submission_file_text(executor._submitit_command_str, uid="<job>")


def submit(jobs: list[Job], cluster: ClusterConfig) -> list:
    """Submit `jobs` (a list, maybe empty) and return submitit's job handles."""
    if not jobs:
        return []
    if cluster.executor == "debug":
        executor = submitit.DebugExecutor(folder=cluster.folder)
        return [executor.submit(run_job, job) for job in jobs]
    if cluster.executor == "slurm":
        return slurm_executor(cluster).map_array(run_job, jobs)
    executor = submitit.LocalExecutor(folder=Path(cluster.folder) / "%j")
    executor.update_parameters(timeout_min=cluster.time_min)
    handles = []
    gpus = torch.cuda.device_count()
    for index, job in enumerate(jobs):  # every worker on its own GPU, where there are several
        executor.update_parameters(gpus_per_node=1 if gpus else 0, visible_gpus=[index % gpus] if gpus else [])
        handles.append(executor.submit(run_job, job))
    return handles


def wait(handles: list, what: str) -> list[str]:
    """Wait for every job; one line per failed job, naming its log."""
    failures = []
    for handle in handles:
        try:
            handle.result()
        except Exception as error:  # submitit's FailedJobError or UncompletedJobError, or the job's own (debug)
            failures.append(f"{what} job {handle.job_id} failed: {_cause(error)} (log: {handle.paths.stderr})")
    return failures


def _cause(error: Exception) -> str:
    """The job's own exception line out of submitit's report (which quotes the job's traceback)."""
    lines = [line.strip() for line in str(error).splitlines()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|NotFound|Interrupt|Exit)\b.*", line)]
    return raised[-1] if raised else (lines[0] if lines and lines[0] else type(error).__name__)


def run_grid(
    configs: list[RunConfig],
    cluster: ClusterConfig,
    *,
    runs_dir: str | Path | None = None,
    device: str | None = None,
    criteria: tuple[str, ...] | None = None,
    say=lambda message: print(message, file=sys.stderr, flush=True),
) -> pd.DataFrame:
    """Every run of `plan(config)` for each config (one per dataset; of `criteria` only, when given),
    as jobs (see the module docstring); returns the sweep table of them all, with a dataset column.
    Raises SweepFailed naming the logs if any job failed (what finished stays in the cache)."""
    runs_dir = str(runs_dir or locations.runs_dir())
    gpus = torch.cuda.device_count() if cluster.executor == "local" else 0
    workers = 1 if cluster.executor == "debug" else cluster.workers or max(gpus, 1 if gpus else 2)
    threads = max(1, len(os.sched_getaffinity(0)) // workers) if cluster.executor == "local" and not gpus else 0
    sweep_pid = os.getpid() if cluster.executor == "local" else None
    shared, spread = [], []
    for config in configs:
        runs = grid_runs(config, criteria)
        needs_shared, pending = missing(Job(config, runs, runs_dir, device, threads))
        say(f"{config.dataset}: {len(runs)} runs, {len(runs) - len(pending)} already in the run cache")
        if needs_shared:
            shared.append(Job(config, (), runs_dir, device, threads, sweep_pid))
        chunks = cluster.jobs or (workers if cluster.executor != "slurm" else len(pending))
        spread += [
            Job(config, tuple(pending[i::chunks]), runs_dir, device, threads, sweep_pid)
            for i in range(min(chunks, len(pending)))
        ]
    say(f"{len(shared)} job(s) for the shared stages, then {len(spread)} for the runs ({cluster.executor})")
    # SLURM queues a whole array at once; local processes start as soon as they are submitted: in waves
    wave = len(shared) + len(spread) if cluster.executor == "slurm" else workers
    failures = []
    for jobs, what in ((shared, "shared-stages"), (spread, "runs")):
        for start in range(0, len(jobs), wave):
            if not failures:
                failures += wait(submit(jobs[start : start + wave], cluster), what)
    if failures:
        raise SweepFailed("\n".join(failures))
    return collect(configs, runs_dir, device, threads, criteria)


def collect(
    configs: list[RunConfig], runs_dir: str, device: str | None, threads: int, criteria: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """The sweep table of the grid, read from the run cache (nothing is computed: a missing run is an error)."""
    tables = []
    for config in configs:
        job = Job(
            config,
            grid_runs(config, criteria),
            runs_dir,
            device,
            threads,
        )
        if any(missing(job)[1]):
            raise SweepFailed(f"{config.dataset}: runs missing from the run cache; submit the grid again")
        experiment = job.experiment()
        tables.append(
            table_of([row_of(run, pruned(experiment, run)) for run in job.runs]).assign(dataset=config.dataset)
        )
    return pd.concat(tables, ignore_index=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tgkit sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=list(hparams.PROFILES), default="smoke")
    parser.add_argument("--datasets", nargs="+", help="default: the profile's dataset")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any field of the configuration, as `python -m tgkit run --set` (e.g. sweep='(0.9, 0.98)')",
    )
    parser.add_argument("--criteria", nargs="+", choices=list(CRITERIA), help="only these criteria (default: all)")
    flags.add_flags(parser.add_argument_group("where the jobs run"), ClusterConfig)
    parser.add_argument(
        "--runs-dir", help="the run cache, on a file system every job sees (default: $TGKIT_RUNS, else data/runs)"
    )
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--output", help="write the sweep table (CSV) here")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the grid as a real run does (its datasets loaded), print the jobs (and the sbatch file), "
        "submit nothing",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of a handled error too")
    return parser


def grid_runs(config: RunConfig, criteria: tuple[str, ...] | None) -> tuple[SweepRun, ...]:
    """The runs of `plan(config)`, of `criteria` only when given."""
    return tuple(run for run in plan(config) if criteria is None or run.criterion in criteria)


def check_grid(configs: list[RunConfig], criteria: tuple[str, ...] | None, runs_dir: str | None) -> None:
    """Refuse, before any job, what every job would fail on: an empty grid, a dataset not found here, a
    sparsity the student cannot reach, KD settings the loss rejects (`Experiment.check_requests`, as the
    run command checks them). Loads each dataset once, on the CPU, as a job would (fetching CIFAR if it is
    absent): the jobs read it from the same places. A dry run checks the same."""
    for config in configs:
        runs = grid_runs(config, criteria)
        if not runs:
            only = f" of --criteria {' '.join(criteria)}" if criteria else ""
            raise InputError(
                f"{config.dataset}: the grid holds no runs{only} (sweep {config.sweep}, baseline_sweep "
                f"{config.baseline_sweep}); add levels with --set, or other --criteria"
            )
        experiment = Experiment(config, runs_dir=runs_dir, device="cpu", progress=False)
        try:
            experiment.check_requests(tuple(sorted({run.sparsity for run in runs})))
        except InputError as error:
            raise InputError(f"{config.dataset}: {error}") from error


def checked_folder(folder: str) -> str:
    """`--folder` if submitit can write its job files there (it makes the folder as it submits)."""
    path = Path(folder).expanduser().absolute()
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        raise InputError(f"--folder {folder}: {existing} is a file; give --folder a folder for the jobs' logs")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise InputError(
            f"--folder {folder}: cannot write in {existing} ({error.strerror}); give --folder a writable folder, "
            f"on a file system every job sees"
        ) from None
    return folder


def dry_run(configs: list[RunConfig], cluster: ClusterConfig, criteria: tuple[str, ...] | None = None) -> None:
    """Print the runs of each dataset (of `criteria` only, when given) and, for SLURM, the sbatch file of
    the runs' job array."""
    runs = [len(grid_runs(config, criteria)) for config in configs]
    for config, count in zip(configs, runs):
        print(f"{config.dataset}: {count} runs, the shared stages first")
    if cluster.executor == "slurm":
        print(f"the runs' job array ({cluster.jobs or sum(runs)} tasks), as submitit writes it:")
        print(sbatch_script(cluster, cluster.jobs or sum(runs)))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def command() -> None:
        cluster = flags.from_flags(ClusterConfig(), args)
        checked_folder(cluster.folder)
        device = checked_device(args.device)
        base = flags.apply_settings(hparams.profile(args.profile), args.settings)
        configs = [replace(base, dataset=dataset) for dataset in args.datasets or [base.dataset]]
        check_grid(configs, args.criteria, args.runs_dir)
        if args.dry_run:
            dry_run(configs, cluster, args.criteria)
            return
        table = run_grid(configs, cluster, runs_dir=args.runs_dir, device=device, criteria=args.criteria)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if args.output:
            checkpoint.write_text_atomic(table.to_csv(index=False), args.output)

    return run_command(command, debug=args.debug)
