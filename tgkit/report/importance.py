"""Importance scores and masks, layer by layer (notebook 02): score distributions against the global
threshold, the fraction of each layer kept, what two criteria's masks agree on, and what a mask costs.

    plot_score_distributions(scores, masks)     a box per layer of log10(score / threshold), a panel per criterion
    plot_kept_fraction(layer_table)             bars of the kept fraction per layer and criterion
    plot_mask_overlap(layer_table)              bars of each layer's Jaccard overlap with the reference criterion
    plot_kernels(weight, mask)                  one layer's 3x3 kernels, pruned weights blank: the mask itself
    layer_to_draw(layer_table, model)           the layer that shows a mask best: kept nearest one half
    agreement(reference_mask, compared_mask)    which of two masks keeps each weight (`COMPARISON`)
    agreement_table(reference, compared)        per layer, how many weights fall in each of the four cases
    plot_score_scatter(scores, masks, ...)      two criteria's scores of one layer, coloured by `agreement`
    accuracy_without_retraining(model, masks, data)   what a mask costs before any retraining
    plot_explorer(model, scores, ...)           the explorer: the scatter, the agreement per layer, the accuracies

The tables behind the bars are `mask_analysis.layer_table`'s. Criteria are labelled as `scorer.CRITERIA`
names them, and coloured by `report.palette`, the same in every figure of the kit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from torch import Tensor, nn

from tgkit import mask_analysis, masker, train
from tgkit.report import palette
from tgkit.scorer import CRITERIA

# scores this many decades below the threshold (zeros included) are drawn at the bottom of the axis, and
# this many above it at the top (see `relative_log_scores`)
LOWEST_DECADE, HIGHEST_DECADE = -8.0, 8.0
# the four cases of two masks, in the order of `agreement`'s codes and of every legend
COMPARISON = tuple(palette.COMPARISON)  # the cases of two masks side by side, each with its palette colour


def label(criterion: str) -> str:
    """ "teacher_guided" -> "teacher-guided": a criterion as figures and tables name it; any other
    name (a variant such as "teacher-guided, alpha=0") is its own label."""
    return CRITERIA[criterion].label if criterion in CRITERIA else criterion


def short_name(layer: str) -> str:
    """ "layer2.0.conv1.weight" -> "layer2.0.conv1": the module, as the figures label it."""
    return layer.removesuffix(".weight")


def _labelled(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table with short layer names and readable criteria, and each criterion's palette colour."""
    table = table.assign(layer=table["layer"].map(short_name), criterion=table["criterion"].map(label))
    return table, palette.colors(table["criterion"])


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


def axis_label(scores: Mapping[str, Tensor], masks: Mapping[str, Tensor], name: str = "score") -> str:
    """The label of a relative-score axis, saying so when the threshold is 0 (kept scores then sit at the cap)."""
    if global_threshold(scores, masks) > 0:
        return f"log10({name} / global threshold)"
    return f"log10({name} / global threshold); the threshold is 0 here: kept scores drawn at +{HIGHEST_DECADE:g}"


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
    """One panel per criterion: a box per layer of log10(score / global threshold); the dashed line at
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
            boxprops={"color": palette.color(criterion)},
            medianprops={"color": palette.BLACK},
        )
        axes.axvline(0, color=palette.THRESHOLD, linewidth=1.2, linestyle="--", label="global threshold")
        axes.set(title=label(criterion), xlabel=axis_label(criterion_scores, masks[criterion]), ylabel="")
        axes.grid(alpha=0.3, axis="x")
    axes_row[0][0].invert_yaxis()  # the first layer on top (the panels share their y axis)
    figure.suptitle(
        "each score against its criterion's global threshold (dashed): the part of a box left of it is pruned"
    )
    figure.tight_layout()
    return figure


def kept_fraction_title(table: pd.DataFrame, criterion: str = "teacher_guided") -> str:
    """What the kept-fraction bars show, in one line: the range of the fraction `criterion` keeps per layer."""
    rows = table[table["criterion"] == criterion].sort_values("kept_fraction", kind="stable")
    low, high = rows.iloc[0], rows.iloc[-1]
    return (
        f"one threshold, uneven layers: {label(criterion)} keeps {kept_label(low['kept_fraction'])} of "
        f"{short_name(low['layer'])} but {kept_label(high['kept_fraction'])} of {short_name(high['layer'])}"
    )


def plot_kept_fraction(table: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Bars of the kept fraction per layer and criterion (a `layer_table`); x marks emptied layers,
    vermillion when the layer cuts the network, black when a shortcut goes around it."""
    axes = ax or plt.subplots(figsize=(11, 4))[1]
    table, colours = _labelled(table)
    sns.barplot(data=table, x="layer", y="kept_fraction", hue="criterion", palette=colours, saturation=1, ax=axes)
    layers = list(dict.fromkeys(table["layer"]))
    criteria = list(colours)
    width = 0.8 / len(criteria)
    for row in table[table["collapsed"]].itertuples():
        x = layers.index(row.layer) - 0.4 + width * (criteria.index(row.criterion) + 0.5)
        mark = palette.VERMILLION if row.cuts_network else palette.BLACK
        axes.plot(x, 0.02, marker="x", color=mark, markersize=8)
    axes.set(ylim=(0, 1.05), xlabel="", ylabel="fraction of weights kept", title=title)
    _finish_bar_axes(axes)
    return axes


def overlap_title(table: pd.DataFrame, reference: str = "teacher_guided") -> str:
    """What the overlap bars show, in one line: each other criterion's mean overlap with the reference."""
    others = table[table["criterion"] != reference].groupby("criterion", sort=False)["overlap"].mean()
    means = ", ".join(f"{label(criterion)} {mean:.2f}" for criterion, mean in others.sort_values().items())
    return f"agreement with {label(reference)} (mean Jaccard over layers): {means}"


def plot_mask_overlap(
    table: pd.DataFrame, *, reference: str = "teacher_guided", title: str = "", ax: Axes | None = None
) -> Axes:
    """Bars of each layer's Jaccard overlap of the other criteria's kept weights with the `reference`'s."""
    axes = ax or plt.subplots(figsize=(11, 4))[1]
    labelled, colours = _labelled(table)
    others = labelled[table["criterion"] != reference]
    sns.barplot(data=others, x="layer", y="overlap", hue="criterion", palette=colours, saturation=1, ax=axes)
    axes.set(ylim=(0, 1.05), xlabel="", title=title, ylabel=f"Jaccard overlap with {label(reference)}")
    _finish_bar_axes(axes)
    return axes


def _finish_bar_axes(axes: Axes, legend_title: str = "criterion") -> None:
    """Slanted layer names that end under their bars, the legend beside the bars, a light grid."""
    plt.setp(axes.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
    axes.legend(title=legend_title, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    axes.grid(alpha=0.3, axis="y")


# --------------------------------------------------------------------------------------------------
# the mask itself


def layer_to_draw(table: pd.DataFrame, model: nn.Module, criterion: str = "teacher_guided") -> str:
    """The layer that shows a mask best (its kernels, `plot_kernels`; its scores, the explorer's scatter),
    from a `mask_analysis.layer_table`: of the convolutions with 3x3 kernels (any, if none has them), the
    one whose kept fraction is nearest one half, where kept and pruned weights are about as many."""
    rows = table[table["criterion"] == criterion]
    square = rows[[tuple(model.get_parameter(layer).shape[2:]) == (3, 3) for layer in rows["layer"]]]
    rows = square if len(square) else rows
    return rows.loc[(rows["kept_fraction"] - 0.5).abs().sort_values(kind="stable").index[0], "layer"]


def kernel_image(weight: Tensor, mask: Tensor, rows: int, columns: int) -> np.ndarray:
    """The first `rows` output channels by `columns` input channels of a convolution's kernels tiled
    into one image, one blank (NaN) pixel between kernels, and NaN wherever the mask prunes a weight."""
    out_channels, in_channels, height, width = weight.shape
    rows, columns = min(rows, out_channels), min(columns, in_channels)
    image = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan)
    kept = torch.where(mask.bool(), weight.detach().float().cpu(), torch.nan).numpy()
    for row in range(rows):
        for column in range(columns):
            top, left = row * (height + 1), column * (width + 1)
            image[top : top + height, left : left + width] = kept[row, column]
    return image


def plot_kernels(
    weight: Tensor, mask: Tensor, *, layer: str = "", rows: int = 8, columns: int = 16, ax: Axes | None = None
) -> Axes:
    """A convolution's kernels as a grid (output channel down, input channel across): each weight a
    pixel coloured by its value, each pruned weight blank. Kernels are framed in grey."""
    axes = ax or plt.subplots(figsize=(10, 5.5))[1]
    image = kernel_image(weight, mask, rows, columns)
    height, width = weight.shape[2:]
    frame = np.ones_like(image)  # white under every kernel, so that a pruned weight shows blank
    frame[height :: height + 1, :] = frame[:, width :: width + 1] = 0.0  # grey between kernels
    axes.imshow(frame, cmap=ListedColormap(["0.75", "white"]), vmin=0, vmax=1, interpolation="nearest")
    limit = float(np.nanmax(np.abs(image))) if not np.isnan(image).all() else 1.0
    shown = axes.imshow(image, cmap="PuOr_r", vmin=-limit, vmax=limit, interpolation="nearest")
    axes.figure.colorbar(shown, ax=axes, shrink=0.7, label="weight (pruned: blank)")
    drawn_rows, drawn_columns = min(rows, weight.shape[0]), min(columns, weight.shape[1])
    axes.set(
        title=f"{short_name(layer)}: {kept_label(float(mask.bool().float().mean()))} of its weights kept "
        f"(first {drawn_rows} x {drawn_columns} kernels shown)",
        xlabel="input channel",
        ylabel="output channel",
        xticks=[],
        yticks=[],
    )
    return axes


# --------------------------------------------------------------------------------------------------
# two masks side by side, and what a mask costs


def agreement(reference: Tensor, compared: Tensor) -> Tensor:
    """Per weight, the index in `COMPARISON` of which mask keeps it:
    0 kept by both, 1 only by the reference, 2 only by the compared mask, 3 by neither."""
    return 2 * (~reference.bool()).long() + (~compared.bool()).long()


def agreement_table(reference: Mapping[str, Tensor], compared: Mapping[str, Tensor]) -> pd.DataFrame:
    """One row per layer and case of `COMPARISON`: layer, case, weights (how many), fraction (of the layer)."""
    rows = []
    for layer, mask in reference.items():
        counts = torch.bincount(agreement(mask, compared[layer]).reshape(-1), minlength=len(COMPARISON))
        for case, count in zip(COMPARISON, counts.tolist()):
            rows.append({"layer": layer, "case": case, "weights": count, "fraction": count / mask.numel()})
    return pd.DataFrame(rows, columns=["layer", "case", "weights", "fraction"])


def case_labels(reference: str, compared: str) -> dict[str, str]:
    """The legend's words for the four cases, naming the two criteria."""
    return dict(zip(COMPARISON, ("kept by both", f"only {label(reference)}", f"only {label(compared)}", "by neither")))


def plot_score_scatter(
    scores: Mapping[str, Mapping[str, Tensor]],
    masks: Mapping[str, Mapping[str, Tensor]],
    reference: str,
    compared: str,
    layer: str,
    *,
    sample: int = 3000,
    seed: int = 0,
    ax: Axes | None = None,
) -> Axes:
    """One layer's weights, the `reference` criterion's score across and the `compared` one's up (each
    as log10(score / its global threshold)), coloured by which mask keeps each (`agreement`): the dashed
    lines are the thresholds, so each case fills a quadrant. At most `sample` weights of each case are
    drawn (seeded), so that the few kept weights of a deeply pruned layer all show; the legend counts them all."""
    axes = ax or plt.subplots(figsize=(5.5, 5))[1]
    x = relative_log_scores(scores[reference], masks[reference])[layer].reshape(-1)
    y = relative_log_scores(scores[compared], masks[compared])[layer].reshape(-1)
    cases = agreement(masks[reference][layer], masks[compared][layer]).reshape(-1)
    shuffled = torch.randperm(x.numel(), generator=torch.Generator().manual_seed(seed))
    names = case_labels(reference, compared)
    for code in (3, 0, 1, 2):  # the background first
        case = COMPARISON[code]
        chosen = shuffled[cases[shuffled] == code][:sample]
        count = int((cases == code).sum())
        marker = palette.style(case)["marker"]
        axes.scatter(
            x[chosen], y[chosen], s=8, marker=marker, color=palette.color(case), label=f"{names[case]} ({count})"
        )
    for line in (axes.axvline, axes.axhline):
        line(0, color=palette.THRESHOLD, linewidth=1, linestyle="--")
    overlap = mask_analysis.mask_overlap(masks[reference][layer], masks[compared][layer])
    axes.set(
        title=f"{short_name(layer)}: Jaccard overlap {overlap:.2f}",
        xlabel=axis_label(scores[reference], masks[reference], label(reference)),
        ylabel=axis_label(scores[compared], masks[compared], label(compared)),
    )
    axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, markerscale=1.5)
    axes.grid(alpha=0.3)
    return axes


def plot_layer_agreement(table: pd.DataFrame, reference: str, compared: str, *, ax: Axes | None = None) -> Axes:
    """A stacked bar per layer of an `agreement_table`: the fractions kept by both, by one, by neither."""
    axes = ax or plt.subplots(figsize=(11, 4))[1]
    fractions = table.pivot(index="layer", columns="case", values="fraction").loc[list(dict.fromkeys(table["layer"]))]
    names = case_labels(reference, compared)
    bottom = np.zeros(len(fractions))
    for case in COMPARISON:
        axes.bar(
            [short_name(layer) for layer in fractions.index],
            fractions[case],
            bottom=bottom,
            color=palette.color(case),
            label=names[case],
            width=0.7,
        )
        bottom += fractions[case].to_numpy()
    axes.set(ylim=(0, 1), ylabel="fraction of the layer's weights", title="which mask keeps each layer's weights")
    _finish_bar_axes(axes, legend_title="")
    return axes


def accuracy_without_retraining(
    model: nn.Module, masks: Mapping[str, Tensor], data, split: str = "val", **kwargs
) -> float:
    """Top-1 accuracy of a copy of `model` with `masks` applied, as it is, before any retraining: what the
    mask costs on its own (the BatchNorm statistics stay the dense network's). `model` is left untouched;
    `kwargs` go to `train.evaluate`."""
    return train.evaluate(masker.apply_masks(copy.deepcopy(model), dict(masks)), data, split, **kwargs)


def plot_explorer(
    model: nn.Module,
    scores: Mapping[str, Mapping[str, Tensor]],
    sparsity: float,
    reference: str,
    compared: str,
    layer: str,
    *,
    accuracy: Callable[[Mapping[str, Tensor]], float] | None = None,
) -> Figure:
    """Notebook 02's explorer at one setting: the `reference` and `compared` criteria's masks at `sparsity`
    (over all weights), made from the cached `scores`; `layer`'s two scores against each other (top left),
    `accuracy(masks)` of the dense network and of each mask without retraining (top right; left out when
    `accuracy` is None), and which mask keeps each layer's weights (bottom)."""
    masks = mask_analysis.masks_by_criterion(
        {name: scores[name] for name in (reference, compared)}, masker.sparsity_for_target(model, sparsity)
    )
    figure, axes = plt.subplot_mosaic(
        [["scatter", "accuracy"], ["layers", "layers"]],
        figsize=(14, 10),
        layout="constrained",  # room for legends
    )
    plot_score_scatter(scores, masks, reference, compared, layer, ax=axes["scatter"])
    plot_layer_agreement(agreement_table(masks[reference], masks[compared]), reference, compared, ax=axes["layers"])
    if accuracy is None:
        axes["accuracy"].set_axis_off()
    else:
        names = {
            "dense": {},
            f"{label(reference)}'s mask": masks[reference],
            f"{label(compared)}'s mask": masks[compared],
        }
        values = [100 * accuracy(chosen) for chosen in names.values()]
        colours = [palette.color("dense"), palette.color("only the reference"), palette.color("only the compared")]
        bars = axes["accuracy"].barh(list(names), values, color=colours)
        axes["accuracy"].bar_label(bars, fmt="%.1f%%", padding=3)
        axes["accuracy"].invert_yaxis()
        axes["accuracy"].set(xlim=(0, 115), xlabel="validation accuracy (%)", title="accuracy without retraining")
    figure.suptitle(f"{label(reference)} against {label(compared)} at {sparsity:.1%} sparsity (all weights)")
    return figure
