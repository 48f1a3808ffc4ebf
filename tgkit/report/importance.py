"""Importance scores and masks, layer by layer (notebook 02): score distributions against the global
threshold, the fraction of each layer kept, and the agreement of the criteria.

    plot_score_distributions(scores, masks)     a box per layer of log10(score / threshold), a panel per criterion
    plot_layer_scores(scores, masks, layer)     one layer's histogram, kept and pruned weights apart
    plot_kept_fraction(layer_table)             bars of the kept fraction per layer and criterion
    plot_mask_overlap(layer_table)              bars of each layer's Jaccard overlap with the reference criterion
    plot_explorer(scores, model, ...)           the three together, for the interactive explorer

The tables behind the bars are `mask_analysis.layer_table`'s. Criteria are labelled as
`scorer.CRITERIA` names them, in the same colour in every figure.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from tgkit import mask_analysis, masker
from tgkit.scorer import CRITERIA

# scores this many decades below the threshold (zeros included) are drawn at the bottom of the axis, and
# this many above it at the top (see `relative_log_scores`)
LOWEST_DECADE, HIGHEST_DECADE = -8.0, 8.0


def label(criterion: str) -> str:
    """ "teacher_guided" -> "teacher-guided": a criterion as figures and tables name it."""
    return CRITERIA[criterion].label if criterion in CRITERIA else criterion


def short_name(layer: str) -> str:
    """ "layer2.0.conv1.weight" -> "layer2.0.conv1": the module, as the figures label it."""
    return layer.removesuffix(".weight")


def _labelled(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, tuple]]:
    """The table with short layer names and readable criteria, and one colour per criterion (in
    table order), so that every figure gives a criterion the same colour."""
    table = table.assign(layer=table["layer"].map(short_name), criterion=table["criterion"].map(label))
    return table, dict(zip(dict.fromkeys(table["criterion"]), sns.color_palette()))


def global_threshold(scores: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> float:
    """The smallest kept score of the whole network: the line between kept and pruned. It is 0 at low
    sparsities, where it falls among the many scores of exactly zero (weights that get no gradient)."""
    return float(min(scores[name][mask].min() for name, mask in masks.items() if mask.any()))


def relative_log_scores(scores: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """log10(score / threshold) per tensor (`global_threshold`): >= 0 kept, < 0 pruned (up to ties),
    whatever the criterion's own scale. Values are held within [LOWEST_DECADE, HIGHEST_DECADE]: a zero
    score lies at minus infinity, and when the threshold itself is 0 every positive score would lie
    some 40 decades above the smallest positive float it is divided by."""
    threshold = max(global_threshold(scores, masks), torch.finfo(torch.float32).tiny)
    return {
        name: torch.log10(score.double() / threshold).clamp(LOWEST_DECADE, HIGHEST_DECADE).float()
        for name, score in scores.items()
    }


def axis_label(scores: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> str:
    """The x label of a relative-score plot, saying so when the threshold is 0 (kept scores then sit at the cap)."""
    if global_threshold(scores, masks) > 0:
        return "log10(score / global threshold)"
    return f"log10(score / global threshold); the threshold is 0 here: kept scores drawn at +{HIGHEST_DECADE:g}"


def kept_label(fraction: float) -> str:
    """A kept fraction as a title shows it: "<0.1%" for a few weights kept, never "0.0%" beside a count."""
    if 0 < fraction < 0.001:
        return "<0.1%"
    if 0.999 < fraction < 1:
        return ">99.9%"
    return f"{fraction:.1%}"


def plot_score_distributions(
    scores: Mapping[str, dict[str, Tensor]],
    masks: Mapping[str, dict[str, Tensor]],
    *,
    sample_per_layer: int = 4000,
    seed: int = 0,
) -> Figure:
    """One panel per criterion: a box per layer of log10(score / global threshold); the red line at
    0 is the threshold, so the part of a box left of it is pruned. At most `sample_per_layer` scores
    per layer are drawn (a seeded random sample), which keeps paper-scale networks quick to plot."""
    generator = torch.Generator().manual_seed(seed)
    figure, axes_row = plt.subplots(1, len(scores), figsize=(4.5 * len(scores), 4.2), sharey=True, squeeze=False)
    for axes, (criterion, criterion_scores) in zip(axes_row[0], scores.items()):
        relative = relative_log_scores(criterion_scores, masks[criterion])
        samples = []
        for values in relative.values():
            values = values.reshape(-1)
            if values.numel() > sample_per_layer:
                values = values[torch.randperm(values.numel(), generator=generator)[:sample_per_layer]]
            samples.append(values.numpy())
        axes.boxplot(
            samples,
            orientation="horizontal",
            tick_labels=[short_name(layer) for layer in relative],
            flierprops={"markersize": 1},
        )
        axes.axvline(0, color="red", linewidth=1)
        axes.set(title=label(criterion), xlabel=axis_label(criterion_scores, masks[criterion]), ylabel="")
        axes.grid(alpha=0.3, axis="x")
    axes_row[0][0].invert_yaxis()  # the first layer on top (the panels share their y axis)
    figure.tight_layout()
    return figure


def plot_layer_scores(
    scores: Mapping[str, Tensor], masks: Mapping[str, Tensor], layer: str, *, ax: Axes | None = None
) -> Axes:
    """Histogram of one layer's log10(score / global threshold): kept weights blue, pruned ones orange."""
    axes = ax or plt.subplots(figsize=(5, 3.5))[1]
    relative = relative_log_scores(scores, masks)[layer].reshape(-1).numpy()
    kept = masks[layer].reshape(-1).numpy()
    bins = np.histogram_bin_edges(relative, bins=40)
    axes.hist(relative[kept], bins=bins, color="C0", label=f"kept ({kept.sum()})")
    axes.hist(relative[~kept], bins=bins, color="C1", label=f"pruned ({(~kept).sum()})")
    axes.axvline(0, color="red", linewidth=1)
    axes.set(
        title=f"{short_name(layer)}: {kept_label(kept.mean())} kept", xlabel=axis_label(scores, masks), ylabel="weights"
    )
    axes.legend(fontsize="small")
    return axes


def plot_kept_fraction(table: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Bars of the kept fraction per layer and criterion (a `layer_table`); x marks emptied layers,
    in red when the layer cuts the network."""
    axes = ax or plt.subplots(figsize=(11, 4))[1]
    table, palette = _labelled(table)
    sns.barplot(data=table, x="layer", y="kept_fraction", hue="criterion", palette=palette, ax=axes)
    layers = list(dict.fromkeys(table["layer"]))
    criteria = list(palette)
    width = 0.8 / len(criteria)
    for row in table[table["collapsed"]].itertuples():
        x = layers.index(row.layer) - 0.4 + width * (criteria.index(row.criterion) + 0.5)
        axes.plot(x, 0.02, marker="x", color="red" if row.cuts_network else "black", markersize=8)
    axes.set(ylim=(0, 1.05), xlabel="", ylabel="fraction of weights kept", title=title)
    _finish_bar_axes(axes)
    return axes


def plot_mask_overlap(
    table: pd.DataFrame, *, reference: str = "teacher_guided", title: str = "", ax: Axes | None = None
) -> Axes:
    """Bars of each layer's Jaccard overlap of the other criteria's kept weights with the `reference`'s."""
    axes = ax or plt.subplots(figsize=(11, 4))[1]
    labelled, palette = _labelled(table)
    others = labelled[table["criterion"] != reference]
    sns.barplot(data=others, x="layer", y="overlap", hue="criterion", palette=palette, ax=axes)
    axes.set(ylim=(0, 1.05), xlabel="", title=title, ylabel=f"Jaccard overlap with {label(reference)}")
    _finish_bar_axes(axes)
    return axes


def _finish_bar_axes(axes: Axes) -> None:
    """Slanted layer names that end under their bars, the legend beside the bars, a light grid."""
    plt.setp(axes.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
    axes.legend(title="criterion", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    axes.grid(alpha=0.3, axis="y")


def layer_to_explore(table: pd.DataFrame, criterion: str = "teacher_guided") -> str:
    """The layer the explorer opens on, from a `mask_analysis.layer_table`: where the threshold cuts
    deepest but still keeps something (both colours in its histogram), else the first layer."""
    rows = table[(table["criterion"] == criterion) & (table["kept"] > 0) & (table["kept"] < table["weights"])]
    if rows.empty:
        return table.loc[table["criterion"] == criterion, "layer"].iloc[0]
    return rows.sort_values("kept_fraction", kind="stable")["layer"].iloc[0]


def plot_explorer(
    model, scores: Mapping[str, Mapping[str, Tensor]], sparsity: float, criterion: str, layer: str
) -> Figure:
    """Notebook 02's explorer at one setting: the masks of every criterion at `sparsity` (over all weights)
    from the cached `scores`; `layer`'s scores by `criterion` (top left), each layer's agreement with the
    teacher-guided mask (top right), and the fraction of every layer kept (bottom)."""
    masks = mask_analysis.masks_by_criterion(scores, masker.sparsity_for_target(model, sparsity))
    table = mask_analysis.layer_table(model, masks)
    figure, axes = plt.subplot_mosaic([["scores", "overlap"], ["kept", "kept"]], figsize=(13, 8))
    plot_layer_scores(scores[criterion], masks[criterion], layer, ax=axes["scores"])
    plot_mask_overlap(table, ax=axes["overlap"], title="agreement with the teacher-guided mask")
    plot_kept_fraction(table, ax=axes["kept"], title=f"fraction of each layer kept at {sparsity:.1%} sparsity")
    figure.tight_layout()
    return figure
