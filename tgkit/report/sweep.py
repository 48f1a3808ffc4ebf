"""The sweep's tables and figures (notebook 03): accuracy against sparsity, the temperature ablation,
and our numbers beside the paper's.

    summary = summarise(table)               mean and standard deviation over the seeds of a `sweep.run_sweep` table
    plot_accuracy(main_curves(table, 3.0))   accuracy against sparsity, a band of one std with several seeds
    plot_accuracy(temperature_ablation(table))
    beside_paper(summary, config)            our teacher-guided numbers beside the paper's, at its nearest level

The paper's numbers come from `tgkit.report.paper` and are only ever placed beside ours, in columns named
"paper", never mixed into our tables.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, NullLocator, PercentFormatter

from tgkit.hparams import RunConfig
from tgkit.report import paper
from tgkit.report.output import dataset_note
from tgkit.report.paper import setting_label
from tgkit.scorer import CRITERIA

# the summary has one row per curve (method, retraining, temperature) and sparsity
SUMMARY_KEYS = ["method", "retraining", "temperature", "sparsity_target"]


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
    summary = grouped.agg(
        seeds=("seed", "nunique"),
        sparsity_all=("sparsity_all", "mean"),
        sparsity_prunable=("sparsity_prunable", "mean"),
        test_accuracy=("test_accuracy", "mean"),
        test_accuracy_std=("test_accuracy", "std"),
    )
    return summary.reset_index()


def main_curves(table: pd.DataFrame, temperature: float) -> pd.DataFrame:
    """The rows of the method comparison: every method at the KD `temperature`, and teacher-guided without KD."""
    return table[(table["temperature"] == temperature) | (table["retraining"] == "CE")]


def temperature_ablation(table: pd.DataFrame) -> pd.DataFrame:
    """The teacher-guided rows: KD at each temperature, and no KD."""
    return table[table["method"] == CRITERIA["teacher_guided"].label]


def plot_accuracy(table: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Test accuracy (%) against sparsity over all weights, one line per curve (`curve_labels`) of a
    `run_sweep` table; with several seeds the line is their mean and the band one standard deviation.

    The sparsity axis is a logit scale: 50%, 90%, 99% are equally far apart, as each keeps ten times
    fewer weights than the one before, so the high-sparsity end, where methods differ, is not squeezed.
    """
    axes = ax or plt.subplots(figsize=(7, 4.5))[1]
    several_seeds = table["seed"].nunique() > 1
    sns.lineplot(
        data=table.assign(curve=curve_labels(table), accuracy=100 * table["test_accuracy"]),
        x="sparsity_target",
        y="accuracy",
        hue="curve",
        style="curve",
        markers=True,
        dashes=False,
        errorbar="sd" if several_seeds else None,
        ax=axes,
    )
    levels = sorted(table["sparsity_target"].unique())
    axes.set_xscale("logit")
    axes.xaxis.set_major_locator(FixedLocator(levels))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    spread = f"mean and one std over {table['seed'].nunique()} seeds" if several_seeds else "one seed"
    axes.set(
        xlabel="sparsity over all weights (logit scale)",
        ylabel="test accuracy (%)",
        title=f"{title} ({spread})" if title else spread,
    )
    axes.grid(alpha=0.3)
    axes.legend(title=None, fontsize="small")
    return axes


# --------------------------------------------------------------------------------------------------
# beside the paper


def caveats(config: RunConfig) -> list[str]:
    """What differs between our numbers and the paper's, to print wherever they stand side by side."""
    notes = [note for note in (dataset_note(config.dataset),) if note]
    if config.dataset.lower() == "tinyimagenet":
        notes.append("The paper's TinyImageNet is 64 px upsampled to 224 px; ours stays at 32 px.")
    notes.append(
        f"Our teacher ({config.teacher.arch}, width {config.teacher.width}) and student "
        f"({config.student.arch}, width {config.student.width}) are trained from scratch at the data's "
        f"native resolution; the paper's are an ImageNet-pretrained ResNet-50 and ResNet-18 at 224 px."
    )
    if config.profile != "full":
        subset = f"{config.train_subset} training images, " if config.train_subset else ""
        notes.append(
            f"Profile {config.profile!r}: {subset}{config.teacher_training.epochs} teacher epochs and "
            f"{config.retraining.epochs} retraining epochs, far fewer than the paper's: compare the shape "
            f"of the curves, not the numbers."
        )
    notes.append(
        "Our temperature acts on the KD retraining only (the scores keep T="
        f"{config.scoring.kd.temperature:g}); the paper's runs may have changed both."
    )
    return notes


def nearest_level(sparsity: float, levels: pd.Series) -> int:
    """The index of `levels` nearest to `sparsity` (the first one on a tie)."""
    distances = (levels - sparsity).abs()
    return int(distances.idxmin())


def beside_paper(
    summary: pd.DataFrame,
    config: RunConfig,
    *,
    teacher_accuracy: float | None = None,
    student_accuracy: float | None = None,
) -> pd.DataFrame | None:
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
            rows.append(
                {
                    "setting": f"dense {role}",
                    "sparsity_ours": 0.0,
                    "sparsity_paper": 0.0,
                    "ours": 100 * accuracy,
                    "ours_std": np.nan,
                    "seeds": 1,
                    "paper": dense_reference.get(role, np.nan),
                }
            )
    ours = temperature_ablation(summary)
    for row in ours.itertuples():
        setting = setting_label(row.temperature)
        level = nearest_level(row.sparsity_all, reference["sparsity_all"])
        paper_accuracy = reference.loc[level, setting] if setting in reference.columns else np.nan
        rows.append(
            {
                "setting": setting,
                "sparsity_ours": row.sparsity_all,
                "sparsity_paper": reference.loc[level, "sparsity_all"],
                "ours": 100 * row.test_accuracy,
                "ours_std": 100 * row.test_accuracy_std,
                "seeds": row.seeds,
                "paper": paper_accuracy,
            }
        )
    table = pd.DataFrame(
        rows, columns=["setting", "sparsity_ours", "sparsity_paper", "ours", "ours_std", "seeds", "paper"]
    )
    table.attrs["source"] = reference.attrs["source"]
    table.attrs["caveats"] = caveats(config)
    return table


def paper_headline(dataset: str) -> pd.DataFrame:
    """The paper's headline rows for `dataset` (`paper.headline`, its source in `attrs`): the reference to
    show where the paper has no sweep; empty where it reports nothing on the dataset."""
    headline = paper.headline()
    rows = headline[headline["dataset"] == paper.DATASET_NAMES.get(dataset.lower())].reset_index(drop=True)
    rows.attrs["source"] = headline.attrs["source"]
    return rows
