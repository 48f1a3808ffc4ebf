"""Layer sensitivity, drawn (notebook 02): what pruning each layer alone costs, beside what the global threshold
chose for it, from a `tgkit.sensitivity.layer_sensitivity` table.

    pruned = global_pruned_fraction(layers)            per layer, the fraction the global mask prunes (a layer_table)
    plot_sensitivity(table, pruned)                    heatmap layer x level of the accuracy drop, and the global choice
    plot_layer_sensitivity(table, layer, pruned)       one layer's curve: accuracy against level, and the global choice

In both, a measurement that changed no output (`effective` False: nothing that mattered was pruned) is drawn
apart, never as a robust layer; each layer is labelled with what emptying it does (`when_emptied`).
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tgkit.report import palette
from tgkit.report.importance import short_name

# what `when_emptied` says, as a layer's tag in the figures
TAGS = {"cuts the network": "cuts", "bypassed by the shortcut": "branch", "bypassed by the branch": "shortcut"}


def global_pruned_fraction(layers: pd.DataFrame, criterion: str = "teacher_guided") -> pd.Series:
    """Per layer, the fraction of its weights the global mask of `criterion` prunes: 1 - kept_fraction of a
    `mask_analysis.layer_table`."""
    rows = layers[layers["criterion"] == criterion]
    return pd.Series(1 - rows["kept_fraction"].to_numpy(), index=rows["layer"].to_numpy(), name="global_pruned")


def _level_position(levels: list[float], pruned: float) -> float:
    """Where a pruned fraction falls on the heatmap's level axis (columns at 0, 1, ...): between its columns;
    below the first level, between the axis' left edge (nothing pruned) and the first column."""
    if levels[0] > 0:
        return float(np.interp(pruned, [0.0, *levels], [-0.5, *range(len(levels))]))
    return float(np.interp(pruned, levels, range(len(levels))))


def plot_sensitivity(table: pd.DataFrame, pruned: Mapping[str, float] | None = None, *, title: str = "") -> Figure:
    """Left: the accuracy drop (points) of each layer (rows, in model order) pruned alone to each level (columns);
    a dot marks a cell whose pruning changed no output, a triangle where the global mask put the layer (`pruned`,
    e.g. `global_pruned_fraction(layers)`). Right: the fraction of each layer the global mask keeps."""
    layers = list(dict.fromkeys(table["layer"]))
    levels = sorted(table["level"].unique())
    drop = 100 * table.pivot(index="layer", columns="level", values="accuracy_drop").loc[layers, levels]
    effective = table.pivot(index="layer", columns="level", values="effective").loc[layers, levels]
    fates = table.drop_duplicates("layer").set_index("layer")["when_emptied"]
    panels = 2 if pruned is not None else 1
    figure, axes_row = plt.subplots(
        1,
        panels,
        figsize=(0.8 * len(levels) + 3 + 2.5 * (panels - 1), 0.38 * len(layers) + 1.8),
        gridspec_kw={"width_ratios": [len(levels), 2.5][:panels]},
        sharey=True,
        squeeze=False,
    )
    axes = axes_row[0][0]
    limit = max(1.0, float(np.nanmax(np.abs(drop.to_numpy()))))
    axes.imshow(drop.to_numpy(), cmap="Reds", vmin=0, vmax=limit, aspect="auto")
    for (i, j), value in np.ndenumerate(drop.to_numpy()):
        inert = not effective.to_numpy()[i, j]
        text = "·" if inert else f"{value:.0f}"
        axes.text(
            j, i, text, ha="center", va="center", fontsize="x-small", color="white" if value > 0.6 * limit else "black"
        )
    if pruned is not None:
        for i, layer in enumerate(layers):
            axes.plot(
                _level_position(levels, pruned[layer]),
                i - 0.28,
                marker="v",
                color=palette.color("teacher-guided"),
                markersize=7,
            )
    axes.set_yticks(
        range(len(layers)), [f"{short_name(name)} ({TAGS.get(fates[name], fates[name])})" for name in layers]
    )
    axes.set_xticks(range(len(levels)), [f"{level:.0%}" for level in levels])
    axes.set(
        xlabel="fraction of the layer pruned (alone, not retrained)",
        title=title or "accuracy drop (points); · no output changed; ▼ the global mask's choice",
    )
    if pruned is not None:
        kept = [1 - pruned[layer] for layer in layers]
        bars = axes_row[0][1]
        bars.barh(range(len(layers)), kept, color=palette.color("teacher-guided"))
        bars.set(xlim=(0, 1), xlabel="fraction kept by the global mask")
        bars.grid(alpha=0.3, axis="x")
    figure.tight_layout()
    return figure


def plot_layer_sensitivity(
    table: pd.DataFrame, layer: str, pruned: Mapping[str, float] | None = None, *, ax: Axes | None = None
) -> Axes:
    """One layer's accuracy (%) against the fraction of it pruned alone: effective measurements as filled
    points, those that changed no output hollow; the dense accuracy dashed, and a vertical line at the fraction
    the global mask prunes (`pruned`). The title says what emptying the layer does."""
    axes = ax or plt.subplots(figsize=(6, 4))[1]
    rows = table[table["layer"] == layer].sort_values("level")
    style = palette.style("teacher-guided")
    axes.plot(rows["level"], 100 * rows["accuracy"], color=style["color"], linestyle="-")
    inert = rows[~rows["effective"].astype(bool)]
    live = rows[rows["effective"].astype(bool)]
    axes.plot(live["level"], 100 * live["accuracy"], "o", color=style["color"], label="pruning changed the output")
    axes.plot(
        inert["level"],
        100 * inert["accuracy"],
        "o",
        markerfacecolor="white",
        color=style["color"],
        label="no output changed: nothing effective pruned",
    )
    axes.axhline(100 * rows["dense_accuracy"].iloc[0], **palette.style("dense"), label="dense", linewidth=1)
    if pruned is not None:
        axes.axvline(pruned[layer], color=palette.GREY, linestyle=":", label=f"global mask: {pruned[layer]:.1%} pruned")
    fate, partner = rows["when_emptied"].iloc[0], rows["shares_fate_with"].iloc[0]
    partners = "; ".join(short_name(name) for name in partner.split("; ")) if partner else ""
    emptied = fate + (f" ({partners})" if partners else "")
    dense = 100 * rows["dense_accuracy"].iloc[0]
    low = min(dense - 10, 100 * rows["accuracy"].min() - 1)  # a span of 10 points at least: small drops look small
    axes.set(
        ylim=(max(0, low), min(100, dense + 2)),
        xlabel="fraction of the layer pruned (alone, not retrained)",
        ylabel="accuracy (%)",
        title=f"{short_name(layer)}; emptied: {emptied}",
        xlim=(-0.02, 1.02),
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return axes
