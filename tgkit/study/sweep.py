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

As jobs, over several processes or a SLURM cluster: `tgkit.study.jobs` (`python -m tgkit sweep`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tgkit.hparams import RunConfig
from tgkit.report.paper import setting_label
from tgkit.scorer import CRITERIA
from tgkit.study.pipeline import Experiment
from tgkit.util.progress import progress_bar

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
