"""The sparsity sweep: every pruning criterion at every sparsity, with and without KD, one run each.

One dense student, pruned once per (criterion, sparsity, retraining, seed) and retrained, every run
through `pipeline.Experiment.pruned_result`, so each is computed once and cached:

    teacher-guided   KD retraining at `config.kd.temperature` (the main curve) and CE retraining (no KD)
                     at every sparsity of `config.sweep`; KD at every temperature of
                     `config.temperatures` (the temperature ablation) at `config.temperature_sweep`
    magnitude, SNIP, random
                     KD retraining at `config.kd.temperature`, at `config.baseline_sweep`: the baselines

(sparsities are fractions of all weights: conv + BatchNorm gamma + fc, as the paper's tables count;
a level list left at None means every level of `config.sweep`), for every retraining seed of
`config.seeds`. The temperature is the KD retraining temperature; the importance scores keep the
scoring temperature `config.scoring.kd`.

    runs = plan(config)                      every run, once
    table = run_sweep(experiment)            one row per run (`COLUMNS`), computed in this process

`report.sweep` summarises and draws the table, and puts it beside the paper's numbers.

As jobs. `run_grid` (and `python -m tgkit.sweep`) spreads a grid of runs, over several datasets if
asked, across processes through submitit, the engine of FAIR's research code: `executor="local"`
runs `workers` processes on this machine (each with its own GPU where there are several, else with
the CPU's threads divided between them), "slurm" submits SLURM job arrays (partition, GPUs and CPUs
per job, time limit, array parallelism), "debug" runs the jobs in this process. The stages every run
builds on (teacher, dense student, scores) are computed first, one job per dataset; then the runs,
spread over the jobs. The jobs meet in the run cache, which names every stage by what it depends on
and locks it while it is computed, so a stage finished by any job is never computed again, and a
grid submitted again submits only what is missing. At the end the table is collected from the cache,
the very table notebook 03 draws (with `cpu_threads` set to the jobs' threads: the thread count is
part of every stage's key on a CPU).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import submitit
import torch

from tgkit import checkpoint, cli, data, hparams
from tgkit.hparams import RunConfig
from tgkit.pipeline import Experiment
from tgkit.progress import progress_bar
from tgkit.scorer import CRITERIA

BASELINES = ("magnitude", "snip", "random")
COLUMNS = (
    "method",
    "retraining",
    "temperature",
    "seed",
    "sparsity_target",
    "sparsity_all",
    "sparsity_prunable",
    "test_accuracy",
    "cached",
)


@dataclass(frozen=True)
class SweepRun:
    """One pruned-and-retrained student: `temperature` is the KD retraining temperature (None: no KD)."""

    criterion: str
    sparsity: float
    temperature: float | None
    seed: int

    @property
    def kd(self) -> bool:
        return self.temperature is not None


def plan(config: RunConfig) -> list[SweepRun]:
    """Every run of the sweep, each once, seed by seed and level by level (so the first seed's curves
    are complete before the second seed starts).

    Teacher-guided pruning runs at every level of `config.sweep`, with KD at the main temperature and
    without KD; the other temperatures at the levels of `config.temperature_sweep`, the baselines at
    those of `config.baseline_sweep` (each None: every level of `config.sweep`).
    """
    main = config.kd.temperature
    other_temperatures = [t for t in dict.fromkeys(config.temperatures) if t != main]
    ablation_levels = set(config.sweep if config.temperature_sweep is None else config.temperature_sweep)
    baseline_levels = set(config.sweep if config.baseline_sweep is None else config.baseline_sweep)
    levels = sorted(set(config.sweep) | ablation_levels | baseline_levels)
    runs = []
    for seed in config.seeds:
        for sparsity in levels:
            if sparsity in config.sweep:
                runs.append(SweepRun("teacher_guided", sparsity, main, seed))
            if sparsity in ablation_levels:
                runs += [SweepRun("teacher_guided", sparsity, temperature, seed) for temperature in other_temperatures]
            if sparsity in config.sweep:
                runs.append(SweepRun("teacher_guided", sparsity, None, seed))
            if sparsity in baseline_levels:
                runs += [SweepRun(criterion, sparsity, main, seed) for criterion in BASELINES]
    return runs


def run_sweep(experiment: Experiment, *, progress: bool = True) -> pd.DataFrame:
    """Run (or read from the run cache) every run of `plan(experiment.config)`; one row per run.

    Columns (`COLUMNS`): method ("teacher-guided", "magnitude", "SNIP", "random"), retraining ("KD" or
    "CE"), temperature (of the KD retraining; NaN for CE), seed (of the retraining, and of the random
    scores), sparsity_target, sparsity_all and sparsity_prunable (reached), test_accuracy (a fraction),
    cached (read from the run cache rather than computed now).
    """
    runs = plan(experiment.config)
    with progress_bar(runs, desc="sweep", unit="run", disable=not progress) as bar:
        rows = []
        for run in bar:
            bar.set_postfix_str(
                f"{CRITERIA[run.criterion].label} {run.sparsity:.2%} {setting_label(run.temperature)} seed {run.seed}"
            )
            rows.append(row_of(run, pruned(experiment, run)))
    return table_of(rows)


def pruned(experiment: Experiment, run: SweepRun) -> dict:
    return experiment.pruned_result(
        run.criterion, run.sparsity, kd=run.kd, over="all", retraining_temperature=run.temperature, seed=run.seed
    )


def row_of(run: SweepRun, result: dict) -> dict:
    return {
        "method": CRITERIA[run.criterion].label,
        "retraining": "KD" if run.kd else "CE",
        "temperature": run.temperature,
        "seed": run.seed,
        "sparsity_target": run.sparsity,
        "sparsity_all": result["sparsity_all"],
        "sparsity_prunable": result["sparsity_prunable"],
        "test_accuracy": result["test_accuracy"],
        "cached": result["cached"],
    }


def table_of(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["temperature"] = table["temperature"].astype(float)
    return table


def setting_label(temperature: float | None) -> str:
    """ "no KD", or "KD T=3": how the paper's sweep names its columns (`paper.SWEEP_COLUMNS`)."""
    if temperature is None or np.isnan(temperature):
        return "no KD"
    return f"KD T={temperature:g}"


# --------------------------------------------------------------------------------------------------
# the sweep as jobs


@dataclass(frozen=True)
class Job:
    """What one submitted job computes: the runs of one dataset's configuration (none: the stages they
    all build on), in the run cache `runs_dir`, on `device`, with `cpu_threads` torch threads (0: its default)."""

    config: RunConfig
    runs: tuple[SweepRun, ...]
    runs_dir: str
    device: str | None = None
    cpu_threads: int = 0

    def experiment(self) -> Experiment:
        if self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        return Experiment(self.config, runs_dir=self.runs_dir, device=self.device, progress=False)


def run_job(job: Job) -> int:
    """The function every job runs (in its own process, or in this one for "debug"): it computes the
    shared stages, or its runs, through the run cache; returns how many runs it went through."""
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


@dataclass(frozen=True)
class Cluster:
    """Where the jobs run. executor: "local", "slurm" or "debug". workers: local processes at once (default
    one per GPU, else 2 on a CPU); jobs: SLURM array tasks for the runs (default one per run). The rest
    are SLURM's: partition, GPUs and CPUs per job, time limit (minutes), array parallelism, memory (GB)."""

    executor: str = "local"
    folder: str = "sweep-logs"
    workers: int | None = None
    jobs: int | None = None
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    time_min: int = 240
    array_parallelism: int = 64
    mem_gb: float | None = None


class _PlanningSlurmExecutor(submitit.SlurmExecutor):
    """submitit's SLURM executor where there is no SLURM: it checks parameters and writes the sbatch
    file like the real one (which refuses to exist without srun), for dry runs; it is never submitted to."""

    @classmethod
    def affinity(cls) -> int:
        return 1


def slurm_executor(cluster: Cluster, *, submitting: bool = True) -> submitit.SlurmExecutor:
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


def sbatch_script(cluster: Cluster, tasks: int) -> str:
    """The sbatch file submitit writes for a job array of `tasks` tasks on `cluster`; needs no SLURM."""
    executor = slurm_executor(cluster, submitting=False)
    executor.parameters["map_count"] = tasks  # as submitit's map_array sets it for the array it submits
    return executor._make_submission_file_text(executor._submitit_command_str, uid="<job>")


def submit(jobs: list[Job], cluster: Cluster) -> list:
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
    cluster: Cluster,
    *,
    runs_dir: str | Path | None = None,
    device: str | None = None,
    criteria: tuple[str, ...] | None = None,
    say=lambda message: print(message, file=sys.stderr, flush=True),
) -> pd.DataFrame:
    """Every run of `plan(config)` for each config (one per dataset; of `criteria` only, when given),
    as jobs (see the module docstring); returns the sweep table of them all, with a dataset column.
    Raises RuntimeError naming the logs if any job failed (what finished stays in the cache)."""
    runs_dir = str(runs_dir or os.environ.get("TGKIT_RUNS") or data.default_data_dir() / "runs")
    gpus = torch.cuda.device_count() if cluster.executor == "local" else 0
    workers = 1 if cluster.executor == "debug" else cluster.workers or max(gpus, 1 if gpus else 2)
    threads = max(1, len(os.sched_getaffinity(0)) // workers) if cluster.executor == "local" and not gpus else 0
    shared, spread = [], []
    for config in configs:
        runs = tuple(run for run in plan(config) if criteria is None or run.criterion in criteria)
        needs_shared, pending = missing(Job(config, runs, runs_dir, device, threads))
        say(f"{config.dataset}: {len(runs)} runs, {len(runs) - len(pending)} already in the run cache")
        if needs_shared:
            shared.append(Job(config, (), runs_dir, device, threads))
        chunks = cluster.jobs or (workers if cluster.executor != "slurm" else len(pending))
        spread += [
            Job(config, tuple(pending[i::chunks]), runs_dir, device, threads) for i in range(min(chunks, len(pending)))
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
        raise RuntimeError("\n".join(failures))
    return collect(configs, runs_dir, device, threads, criteria)


def collect(
    configs: list[RunConfig], runs_dir: str, device: str | None, threads: int, criteria: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """The sweep table of the grid, read from the run cache (nothing is computed: a missing run is an error)."""
    tables = []
    for config in configs:
        job = Job(
            config,
            tuple(run for run in plan(config) if criteria is None or run.criterion in criteria),
            runs_dir,
            device,
            threads,
        )
        if any(missing(job)[1]):
            raise RuntimeError(f"{config.dataset}: runs missing from the run cache; submit the grid again")
        experiment = job.experiment()
        tables.append(
            table_of([row_of(run, pruned(experiment, run)) for run in job.runs]).assign(dataset=config.dataset)
        )
    return pd.concat(tables, ignore_index=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tgkit.sweep", description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--executor", choices=["local", "slurm", "debug"], default="local")
    parser.add_argument("--workers", type=int, help="local processes (default: one per GPU, else 2)")
    parser.add_argument(
        "--jobs", type=int, help="jobs the runs are spread over (default: local workers; SLURM: one per run)"
    )
    parser.add_argument(
        "--folder", default="sweep-logs", help="submitit's job folder: pickles and logs (default %(default)s)"
    )
    parser.add_argument(
        "--runs-dir", help="the run cache, on a file system every job sees (default: $TGKIT_RUNS, else data/runs)"
    )
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--partition", help="SLURM partition")
    parser.add_argument("--gpus-per-job", type=int, default=1, help="SLURM (default %(default)s)")
    parser.add_argument("--cpus-per-job", type=int, default=8, help="SLURM (default %(default)s)")
    parser.add_argument("--time-min", type=int, default=240, help="time limit of a job, minutes (default %(default)s)")
    parser.add_argument(
        "--array-parallelism", type=int, default=64, help="SLURM array tasks at once (default %(default)s)"
    )
    parser.add_argument("--mem-gb", type=float, help="SLURM memory per job")
    parser.add_argument("--output", help="write the sweep table (CSV) here")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the jobs (and the sbatch file) and submit nothing"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cluster = Cluster(
        args.executor,
        args.folder,
        args.workers,
        args.jobs,
        args.partition,
        args.gpus_per_job,
        args.cpus_per_job,
        args.time_min,
        args.array_parallelism,
        args.mem_gb,
    )
    try:
        base = cli.apply_settings(hparams.profile(args.profile), args.settings)
        configs = [replace(base, dataset=dataset) for dataset in args.datasets or [base.dataset]]
        if args.dry_run:
            runs = [len(plan(config)) for config in configs]
            for config, count in zip(configs, runs):
                print(f"{config.dataset}: {count} runs, the shared stages first")
            if cluster.executor == "slurm":
                print(f"the runs' job array ({cluster.jobs or sum(runs)} tasks), as submitit writes it:")
                print(sbatch_script(cluster, cluster.jobs or sum(runs)))
            return 0
        table = run_grid(configs, cluster, runs_dir=args.runs_dir, device=args.device, criteria=args.criteria)
    except (cli.CliError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return cli.EXIT_ERROR
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.output:
        checkpoint.write_text_atomic(table.to_csv(index=False), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
