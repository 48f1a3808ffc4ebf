"""The sparsity sweep: test accuracy against sparsity for every pruning criterion, with and without KD.

One dense student, pruned once per (criterion, sparsity, retraining, seed) and retrained, every run
through `pipeline.Experiment.pruned_result`, so each is computed once and cached:

    teacher-guided   KD retraining at `config.kd.temperature` (the main curve) and CE retraining (no KD)
                     at every sparsity of `config.sweep`; KD at every temperature of
                     `config.temperatures` (the temperature ablation) at `config.temperature_sweep`
    magnitude, SNIP, random
                     KD retraining at `config.kd.temperature`, at `config.baseline_sweep`: the baselines

(sparsities are fractions of all weights: conv + BatchNorm gamma + fc, as the paper's tables count;
a level list left at None means every level of `config.sweep`), for every retraining seed of
`config.seeds`. The temperature is the KD
retraining temperature; the importance scores keep the scoring temperature `config.scoring.kd`.

    table = run_sweep(experiment)            one row per run (`COLUMNS`)
    summary = summarise(table)               mean and standard deviation over the seeds
    plot_accuracy(main_curves(table, 3.0))   accuracy against sparsity, a band of one std with several seeds
    beside_paper(summary, config)            our teacher-guided numbers beside the paper's, at its nearest level

The paper's numbers come from `tgkit.paper` and are only ever placed beside ours, in columns named
"paper", never mixed into our tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, NullLocator, PercentFormatter

from tgkit import paper, plots, report
from tgkit.frontend import progress_bar
from tgkit.pipeline import Experiment
from tgkit.profiles import RunConfig

METHOD_LABELS = plots.CRITERION_LABELS  # "teacher_guided" -> "teacher-guided", "snip" -> "SNIP", ...
BASELINES = ("magnitude", "snip", "random")
COLUMNS = ("method", "retraining", "temperature", "seed", "sparsity_target", "sparsity_all", "sparsity_prunable",
           "test_accuracy", "cached")
# the summary has one row per curve (method, retraining, temperature) and sparsity
SUMMARY_KEYS = ["method", "retraining", "temperature", "sparsity_target"]


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
    rows = []
    with progress_bar(runs, desc="sweep", unit="run", disable=not progress) as bar:
        for run in bar:
            bar.set_postfix_str(f"{METHOD_LABELS[run.criterion]} {run.sparsity:.2%} {setting_label(run.temperature)} "
                                f"seed {run.seed}")
            result = experiment.pruned_result(run.criterion, run.sparsity, kd=run.kd, over="all",
                                              temperature=run.temperature, seed=run.seed)
            rows.append({"method": METHOD_LABELS[run.criterion], "retraining": "KD" if run.kd else "CE",
                         "temperature": run.temperature, "seed": run.seed, "sparsity_target": run.sparsity,
                         "sparsity_all": result["sparsity_all"], "sparsity_prunable": result["sparsity_prunable"],
                         "test_accuracy": result["test_accuracy"], "cached": result["cached"]})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["temperature"] = table["temperature"].astype(float)
    return table


def setting_label(temperature: float | None) -> str:
    """"no KD", or "KD T=3": how the paper's sweep names its columns (`paper.SWEEP_COLUMNS`)."""
    if temperature is None or np.isnan(temperature):
        return "no KD"
    return f"KD T={temperature:g}"


def curve_labels(table: pd.DataFrame) -> pd.Series:
    """One label per row of a sweep table or summary, e.g. "teacher-guided, KD T=3": a curve's legend."""
    return table["method"] + ", " + table["temperature"].map(setting_label)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over the seeds of each setting and sparsity of a `run_sweep` table.

    Columns: method, retraining, temperature, sparsity_target, seeds (how many), sparsity_all,
    sparsity_prunable (means), test_accuracy (mean), test_accuracy_std (sample standard deviation
    over the seeds; NaN with one seed).
    """
    grouped = table.groupby(SUMMARY_KEYS, dropna=False, sort=False)
    summary = grouped.agg(seeds=("seed", "nunique"), sparsity_all=("sparsity_all", "mean"),
                          sparsity_prunable=("sparsity_prunable", "mean"), test_accuracy=("test_accuracy", "mean"),
                          test_accuracy_std=("test_accuracy", "std"))
    return summary.reset_index()


def main_curves(table: pd.DataFrame, temperature: float) -> pd.DataFrame:
    """The rows of the method comparison: every method at the KD `temperature`, and teacher-guided without KD."""
    return table[(table["temperature"] == temperature) | (table["retraining"] == "CE")]


def temperature_ablation(table: pd.DataFrame) -> pd.DataFrame:
    """The teacher-guided rows: KD at each temperature, and no KD."""
    return table[table["method"] == METHOD_LABELS["teacher_guided"]]


def plot_accuracy(table: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Test accuracy (%) against sparsity over all weights, one line per curve (`curve_labels`) of a
    `run_sweep` table; with several seeds the line is their mean and the band one standard deviation.

    The sparsity axis is a logit scale: 50%, 90%, 99% are equally far apart, as each keeps ten times
    fewer weights than the one before, so the high-sparsity end, where methods differ, is not squeezed.
    """
    axes = ax or plt.subplots(figsize=(7, 4.5))[1]
    several_seeds = table["seed"].nunique() > 1
    sns.lineplot(data=table.assign(curve=curve_labels(table), accuracy=100 * table["test_accuracy"]),
                 x="sparsity_target", y="accuracy", hue="curve", style="curve", markers=True, dashes=False,
                 errorbar="sd" if several_seeds else None, ax=axes)
    levels = sorted(table["sparsity_target"].unique())
    axes.set_xscale("logit")
    axes.xaxis.set_major_locator(FixedLocator(levels))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    spread = f"mean and one std over {table['seed'].nunique()} seeds" if several_seeds else "one seed"
    axes.set(xlabel="sparsity over all weights (logit scale)", ylabel="test accuracy (%)",
             title=f"{title} ({spread})" if title else spread)
    axes.grid(alpha=0.3)
    axes.legend(title=None, fontsize="small")
    return axes


# --------------------------------------------------------------------------------------------------
# beside the paper


def caveats(config: RunConfig) -> list[str]:
    """What differs between our numbers and the paper's, to print wherever they stand side by side."""
    notes = [note for note in (report.dataset_note(config.dataset),) if note]
    if config.dataset.lower() == "tinyimagenet":
        notes.append("The paper's TinyImageNet is 64 px upsampled to 224 px; ours stays at 32 px.")
    notes.append(f"Our teacher ({config.teacher.arch}, width {config.teacher.width}) and student "
                 f"({config.student.arch}, width {config.student.width}) are trained from scratch at the data's "
                 f"native resolution; the paper's are an ImageNet-pretrained ResNet-50 and ResNet-18 at 224 px.")
    if config.profile != "full":
        subset = f"{config.train_subset} training images, " if config.train_subset else ""
        notes.append(f"Profile {config.profile!r}: {subset}{config.teacher_training.epochs} teacher epochs and "
                     f"{config.retraining.epochs} retraining epochs, far fewer than the paper's: compare the shape "
                     f"of the curves, not the numbers.")
    notes.append("Our temperature acts on the KD retraining only (the scores keep T="
                 f"{config.scoring.kd.temperature:g}); the paper's runs may have changed both.")
    return notes


def nearest_level(sparsity: float, levels: pd.Series) -> int:
    """The index of `levels` nearest to `sparsity` (the first one on a tie)."""
    distances = (levels - sparsity).abs()
    return int(distances.idxmin())


def beside_paper(summary: pd.DataFrame, config: RunConfig, *, teacher_accuracy: float | None = None,
                 student_accuracy: float | None = None) -> pd.DataFrame | None:
    """Our teacher-guided accuracies beside the paper's, each at the paper's nearest sparsity level;
    None when the paper has no sweep on `config.dataset` (`paper.sweep`).

    One row per teacher-guided setting and sparsity of `summary` (a `summarise` table), after a row per
    dense network when its accuracy is given. Columns: setting ("no KD", "KD T=3", ...,
    "dense teacher", "dense student"), sparsity_ours (mean over all weights), sparsity_paper (the
    nearest level of the paper's sweep), ours and paper (test accuracy in percent; paper NaN where it
    did not run that setting at that level, or has no such column), ours_std (over the seeds), seeds.
    `attrs["source"]` names the paper's numbers, `attrs["caveats"]` lists what differs (`caveats`).
    """
    reference = paper.sweep(config.dataset)
    if reference is None:
        return None
    rows = []
    dense_reference = paper.dense(config.dataset).set_index("role")["test_accuracy"]
    for role, accuracy in (("teacher", teacher_accuracy), ("student", student_accuracy)):
        if accuracy is not None:
            rows.append({"setting": f"dense {role}", "sparsity_ours": 0.0, "sparsity_paper": 0.0,
                         "ours": 100 * accuracy, "ours_std": np.nan, "seeds": 1,
                         "paper": dense_reference.get(role, np.nan)})
    ours = temperature_ablation(summary)
    for row in ours.itertuples():
        setting = setting_label(row.temperature)
        level = nearest_level(row.sparsity_all, reference["sparsity_all"])
        paper_accuracy = reference.loc[level, setting] if setting in reference.columns else np.nan
        rows.append({"setting": setting, "sparsity_ours": row.sparsity_all,
                     "sparsity_paper": reference.loc[level, "sparsity_all"], "ours": 100 * row.test_accuracy,
                     "ours_std": 100 * row.test_accuracy_std, "seeds": row.seeds, "paper": paper_accuracy})
    table = pd.DataFrame(rows, columns=["setting", "sparsity_ours", "sparsity_paper", "ours", "ours_std", "seeds",
                                        "paper"])
    table.attrs["source"] = reference.attrs["source"]
    table.attrs["caveats"] = caveats(config)
    return table
