"""The sweep's tables and figures (notebook 03): accuracy against sparsity, the temperature ablation,
and our numbers beside the paper's.

    summary = summarise(table)               mean and standard deviation over the seeds of a `sweep.run_sweep` table
    plot_sweep(main_curves(table, 3.0), references={"dense student": 0.97, "teacher": 0.98})
                                             accuracy against sparsity, every curve and a zoom without random
    plot_accuracy(temperature_ablation(table))   one panel; a band of one std with several seeds
    takeaway(table)                          what the curves show at the highest level: a figure's title
    beside_paper(summary, config)            our teacher-guided numbers beside the paper's, at its nearest level

Every curve has its palette colour (`tgkit.report.palette`): a method's colour in the method comparison
(without KD dashed), a setting's colour in the temperature ablation.

The paper's numbers come from `tgkit.report.paper` and are only ever placed beside ours, in columns named
"paper", never mixed into our tables.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator, PercentFormatter

from tgkit.hparams import RunConfig
from tgkit.report import palette, paper
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


def _curve_style(rows: pd.DataFrame, colour_by: str) -> dict[str, str]:
    """The palette's style of one curve: its method's colour and marker, its setting's line style (no KD
    dashed). Coloured by "setting" (the temperature ablation, every curve of one method), a KD curve
    takes its temperature's colour instead; the palette gives KD T=3, the main temperature, the colour
    of teacher-guided pruning, so that both figures of notebook 03 draw every shared curve alike."""
    first = rows.iloc[0]
    setting = setting_label(first["temperature"])
    style = palette.curve_style(first["method"], setting)
    if colour_by == "setting" and first["retraining"] == "KD":
        style["color"] = palette.color(setting)
    return style


def plot_accuracy(
    table: pd.DataFrame, *, title: str = "", ax: Axes | None = None, references: dict[str, float] | None = None
) -> Axes:
    """Test accuracy (%) against sparsity over all weights, one line per curve (`curve_labels`) of a
    `run_sweep` table in its palette style (`tgkit.report.palette`: colour by method, or by setting when
    every curve is of one method); with several seeds the line is their mean and the band one standard
    deviation. `references` ({"dense student": 0.97, "teacher": 0.98}) are drawn as level lines.

    The sparsity axis is a logit scale, logit(s) = ln(s / (1 - s)): a step that divides the weights kept
    by ten moves about ln 10 = 2.3 once the sparsity is high (90% -> 99% -> 99.9%: 2.40, then 2.31), so
    the high-sparsity end, where methods differ, is spread out; 50% -> 90% keeps five times fewer and
    moves ln 9 = 2.2.
    """
    axes = ax or plt.subplots(figsize=(7, 4.5))[1]
    several_seeds = table["seed"].nunique() > 1
    colour_by = "setting" if table["method"].nunique() == 1 else "method"
    labelled = table.assign(curve=curve_labels(table), accuracy=100 * table["test_accuracy"])
    for curve, rows in labelled.groupby("curve", sort=False):
        by_level = rows.groupby("sparsity_target")["accuracy"]
        mean, spread = by_level.mean(), by_level.std()
        axes.plot(mean.index, mean.to_numpy(), label=curve, markersize=5, **_curve_style(rows, colour_by))
        if several_seeds:
            color = _curve_style(rows, colour_by)["color"]
            axes.fill_between(mean.index, mean - spread, mean + spread, color=color, alpha=0.15, linewidth=0)
    for name, accuracy in (references or {}).items():
        axes.axhline(100 * accuracy, linewidth=1.2, label=f"{name} ({accuracy:.1%})", **palette.style(name))
    levels = sorted(table["sparsity_target"].unique())
    axes.set_xscale("logit")
    axes.xaxis.set_major_locator(FixedLocator(levels))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    spread = f"mean and one std over {table['seed'].nunique()} seeds" if several_seeds else "one seed"
    axes.set(
        xlabel="sparsity over all weights (logit scale)",
        ylabel="test accuracy (%)",
        title=textwrap.fill(f"{title} ({spread})" if title else spread, 90),
    )
    axes.grid(alpha=0.3)
    axes.legend(title=None, fontsize="small")
    return axes


def takeaway(table: pd.DataFrame) -> str:
    """What the curves of a `run_sweep` table show at the highest sparsity every one of them reached, in
    one line from the numbers: e.g. "at 95.0%: teacher-guided, KD T=3 highest (94.8%), random lowest
    (63.5%), 31.3 points below" (the means over the seeds)."""
    labelled = table.assign(curve=curve_labels(table))
    shared = set.intersection(*(set(rows["sparsity_target"]) for _, rows in labelled.groupby("curve")))
    level = max(shared)
    means = 100 * labelled[labelled["sparsity_target"] == level].groupby("curve")["test_accuracy"].mean()
    top, bottom = means.idxmax(), means.idxmin()
    return (
        f"at {level:.1%}: {top} highest ({means[top]:.1f}%), {bottom} lowest ({means[bottom]:.1f}%), "
        f"{means[top] - means[bottom]:.1f} points below"
    )


def plot_sweep(
    table: pd.DataFrame,
    *,
    references: dict[str, float] | None = None,
    zoom_without: tuple[str, ...] = ("random",),
    title: str = "",
) -> Figure:
    """Two panels of `plot_accuracy`: every curve of `table` with the `references`, and a zoom on the
    curves of the methods not in `zoom_without` (random's fall would squeeze them into a few pixels), its
    y-range fitted to them and to the references. Each panel's title states its `takeaway`."""
    figure, (whole, zoom) = plt.subplots(1, 2, figsize=(13, 4.8))
    plot_accuracy(table, ax=whole, references=references)
    whole.set_title(textwrap.fill(f"every curve: {takeaway(table)}", 75), fontsize="small")
    kept = table[~table["method"].isin(zoom_without)]
    plot_accuracy(kept, ax=zoom, references=references)
    zoom.set_title(textwrap.fill(f"zoom without {', '.join(zoom_without)}: {takeaway(kept)}", 75), fontsize="small")
    by_level = summarise(kept)
    mean, std = 100 * by_level["test_accuracy"], 100 * by_level["test_accuracy_std"].fillna(0)
    low = min((mean - std).min(), *(100 * a for a in (references or {}).values()))
    high = max((mean + std).max(), *(100 * a for a in (references or {}).values()))
    margin = max(0.5, 0.08 * (high - low))
    zoom.set_ylim(low - margin, high + margin)
    zoom.get_legend().remove()
    whole.legend(fontsize="small", loc="lower left")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


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
