"""The notebooks' figures, and the small tables they are drawn from.

Notebook 01, the dense networks and the loss:

    history_table, plot_learning_curves        loss and accuracy per epoch of each network
    accuracy_table                             the final accuracies
    ca_kld_by_temperature, plot_ca_kld_by_temperature
                                               what the temperature does in either order of
                                               normalising and dividing by T

Notebook 02, importance per layer:

    masks_by_criterion                         one global mask per criterion at the same ratio
    layer_table, sparsity_table                per layer (kept fraction, overlap, collapse) and globally
    cut_layers                                 emptied layers that no residual shortcut bypasses
    plot_score_distributions, plot_layer_scores, plot_kept_fraction, plot_mask_overlap

Tables are tidy pandas frames, one observation per row, so that they save as CSV and plot directly.
Figures are created with pyplot, so a notebook shows them inline; `report.save_figure` saves them.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from tgkit import losses, masker
from tgkit.profiles import RunConfig

CRITERION_LABELS = {"teacher_guided": "teacher-guided", "magnitude": "magnitude", "snip": "SNIP", "random": "random"}
# scores this many decades below the threshold (zeros included) are drawn at the bottom of the axis
LOWEST_DECADE = -8.0


def short_name(layer: str) -> str:
    """"layer2.0.conv1.weight" -> "layer2.0.conv1": the module, as the figures label it."""
    return layer.removesuffix(".weight")


def _labelled(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, tuple]]:
    """The table with short layer names and readable criteria, and one colour per criterion (in
    table order), so that every figure gives a criterion the same colour."""
    table = table.assign(layer=table["layer"].map(short_name),
                         criterion=table["criterion"].map(lambda c: CRITERION_LABELS.get(c, c)))
    return table, dict(zip(dict.fromkeys(table["criterion"]), sns.color_palette()))


# --------------------------------------------------------------------------------------------------
# notebook 01: the dense networks


def history_table(results: Mapping[str, dict]) -> pd.DataFrame:
    """The per-epoch history of each trained network, `results` mapping a network's name to its result
    (`Experiment.teacher_result()`, ...): network, epoch, loss, ce, kd, train_accuracy, val_accuracy, lr, seconds."""
    rows = [{"network": network, **epoch} for network, result in results.items() for epoch in result["history"]]
    return pd.DataFrame(rows, columns=["network", "epoch", "loss", "ce", "kd", "train_accuracy", "val_accuracy",
                                       "lr", "seconds"])


def plot_learning_curves(history: pd.DataFrame) -> Figure:
    """Loss (left) and accuracy (right) per epoch of each network of a `history_table`.

    The loss is what the network was trained on: cross-entropy for the teacher, the total KD loss for
    a student trained with KD, whose cross-entropy part is drawn dashed. Accuracy: validation solid,
    training (on augmented batches) dashed.
    """
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for (network, epochs), color in zip(history.groupby("network", sort=False), sns.color_palette()):
        loss_axes.plot(epochs["epoch"], epochs["loss"], color=color, label=f"{network}: training loss")
        if (epochs["kd"] > 0).any():
            loss_axes.plot(epochs["epoch"], epochs["ce"], color=color, linestyle="--",
                           label=f"{network}: its cross-entropy part")
        accuracy_axes.plot(epochs["epoch"], epochs["val_accuracy"], color=color, label=f"{network}: validation")
        accuracy_axes.plot(epochs["epoch"], epochs["train_accuracy"], color=color, linestyle="--",
                           label=f"{network}: training")
    loss_axes.set(xlabel="epoch", ylabel="loss", title="loss per epoch")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title="accuracy per epoch")
    for axes in (loss_axes, accuracy_axes):
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def accuracy_table(config: RunConfig, *, teacher: dict, student: dict) -> pd.DataFrame:
    """One row per dense network: architecture, width, parameters, epochs trained, final training
    accuracy, best validation accuracy (the weights kept), test accuracy, training minutes (when the
    stage ran, even if it is now read from the run cache) and whether it was read from the cache."""
    rows = []
    for network, spec, result in (("teacher", config.teacher, teacher), ("dense student", config.student, student)):
        history = result["history"]
        rows.append({
            "network": network, "architecture": spec.arch, "width": spec.width,
            "parameters": sum(p.numel() for p in result["model"].parameters()),
            "epochs": len(history), "final_train_accuracy": history[-1]["train_accuracy"],
            "best_val_accuracy": max(epoch["val_accuracy"] for epoch in history),
            "test_accuracy": result["test_accuracy"], "training_minutes": result["seconds"] / 60,
            "cached": result["cached"],
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# notebook 01: the loss against the temperature


def ca_kld_by_temperature(student_logits: Tensor, teacher_logits: Tensor, temperatures: Iterable[float], *,
                          beta: float = 0.5) -> pd.DataFrame:
    """CA-KLD of the same logits at each temperature, in both orders (`losses.ORDERS`).

    Columns: order, temperature, ca_kld, scaled_ca_kld (T^2 * CA-KLD, the distillation term of the
    total loss up to alpha), scaled_gradient_norm (the norm of the gradient of T^2 * CA-KLD with
    respect to the student's logits: how hard the term pushes the student).
    """
    rows = []
    for order in losses.ORDERS:
        for temperature in temperatures:
            logits = student_logits.detach().clone().requires_grad_(True)
            kd = losses.ca_kld(logits, teacher_logits.detach(), temperature, beta, order)
            (gradient,) = torch.autograd.grad(temperature**2 * kd, logits)
            rows.append({"order": order, "temperature": float(temperature), "ca_kld": kd.item(),
                         "scaled_ca_kld": temperature**2 * kd.item(), "scaled_gradient_norm": gradient.norm().item()})
    return pd.DataFrame(rows)


def plot_ca_kld_by_temperature(table: pd.DataFrame) -> Figure:
    """CA-KLD (left, log scale) and T^2 * CA-KLD (right) against T, one line per order."""
    figure, (raw_axes, scaled_axes) = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = {"paper": "paper: softmax(norm(z) / T)", "authors": "authors' code: softmax(norm(z / T))"}
    for order, rows in table.groupby("order", sort=False):
        raw_axes.plot(rows["temperature"], rows["ca_kld"], marker="o", label=labels[order])
        scaled_axes.plot(rows["temperature"], rows["scaled_ca_kld"], marker="o", label=labels[order])
    raw_axes.set(xlabel="temperature T", ylabel="CA-KLD", yscale="log", title="CA-KLD")
    scaled_axes.set(xlabel="temperature T", ylabel="T² · CA-KLD", title="T² · CA-KLD (the distillation term)")
    for axes in (raw_axes, scaled_axes):
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------------------------------
# notebook 02: masks and per-layer tables


def masks_by_criterion(scores: Mapping[str, dict[str, Tensor]], ratio: float) -> dict[str, dict[str, Tensor]]:
    """`masker.global_masks` of each criterion's scores at the same pruning `ratio` of the prunable weights.

    Emptied layers are not warned about here: `layer_table` reports them in its `collapsed` column.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", masker.LayerCollapseWarning)
        return {criterion: masker.global_masks(criterion_scores, ratio) for criterion, criterion_scores in scores.items()}


def collapsed_layers(masks: Mapping[str, Tensor]) -> list[str]:
    """The tensors whose every weight is pruned, in mask order."""
    return [name for name, mask in masks.items() if mask.numel() and not mask.any()]


def cut_layers(model: nn.Module, masks: Mapping[str, Tensor]) -> list[str]:
    """The emptied tensors that cut the network: no signal passes them, and nothing goes around them.

    An emptied convolution outputs zeros (BatchNorm then adds a constant), so on a plain chain of
    layers it cuts the network. In a residual block (torchvision's `BasicBlock` or `Bottleneck`),
    out = relu(branch(x) + shortcut(x)): an emptied branch is bypassed by the shortcut (the identity,
    or a 1x1 convolution that kept some weights), and an emptied shortcut convolution by the branch.
    The block is cut only when both its branch and its shortcut lost a whole convolution.
    """
    collapsed = set(collapsed_layers(masks))
    cut = set(collapsed)
    for block_name, block in model.named_modules():
        if not isinstance(block, (BasicBlock, Bottleneck)):
            continue
        branch = {f"{block_name}.{name}.weight" for name, child in block.named_children() if isinstance(child, nn.Conv2d)}
        shortcut = set()
        if block.downsample is not None:
            shortcut = {f"{block_name}.downsample.{name}.weight" for name, child in block.downsample.named_children()
                        if isinstance(child, nn.Conv2d)}
        if not shortcut & collapsed:
            cut -= branch
        if not branch & collapsed:
            cut -= shortcut
    return [name for name in masks if name in cut]


def layer_table(model: nn.Module, masks: Mapping[str, dict[str, Tensor]], *,
                reference: str = "teacher_guided") -> pd.DataFrame:
    """One row per (prunable layer, criterion) of `masks_by_criterion`'s masks for `model`.

    Columns: layer, criterion, weights, kept, kept_fraction, overlap (the Jaccard similarity,
    `masker.mask_overlap`, of the layer's kept weights with the `reference` criterion's; 1.0 for the
    reference itself, and for two masks that both empty the layer), collapsed (the layer lost every
    weight), cuts_network (collapsed, and no residual shortcut goes around it: see `cut_layers`).
    """
    rows = []
    for criterion, criterion_masks in masks.items():
        collapsed = set(collapsed_layers(criterion_masks))
        cut = set(cut_layers(model, criterion_masks))
        for layer, mask in criterion_masks.items():
            kept = int(mask.sum())
            rows.append({"layer": layer, "criterion": criterion, "weights": mask.numel(), "kept": kept,
                         "kept_fraction": kept / mask.numel(),
                         "overlap": masker.mask_overlap(mask, masks[reference][layer]),
                         "collapsed": layer in collapsed, "cuts_network": layer in cut})
    return pd.DataFrame(rows)


def sparsity_table(model: nn.Module, masks: Mapping[str, dict[str, Tensor]], target: float, *,
                   reference: str = "teacher_guided") -> pd.DataFrame:
    """One row per criterion: the target sparsity (over all weights), the sparsity reached over all
    weights and over the prunable ones, the overlap of the whole mask with the `reference`
    criterion's, and the emptied layers ("; "-joined, "" when none) and those that cut the network."""
    rows = []
    for criterion, criterion_masks in masks.items():
        rows.append({
            "criterion": criterion, "target_sparsity": target,
            "sparsity_all": masker.global_sparsity(model, criterion_masks, over="all"),
            "sparsity_prunable": masker.global_sparsity(model, criterion_masks, over="prunable"),
            "overlap": masker.mask_overlap(criterion_masks, masks[reference]),
            "collapsed_layers": "; ".join(collapsed_layers(criterion_masks)),
            "cut_layers": "; ".join(cut_layers(model, criterion_masks)),
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# notebook 02: figures


def relative_log_scores(scores: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """log10(score / threshold) per tensor, the threshold being the smallest kept score of the whole
    network: >= 0 kept, < 0 pruned (up to ties), whatever the criterion's own scale. Values below
    `LOWEST_DECADE` (zeros included) are raised to it."""
    threshold = min(scores[name][mask].min() for name, mask in masks.items() if mask.any())
    threshold = threshold.double().clamp_min(torch.finfo(torch.float32).tiny)  # nothing pruned, lowest score 0
    return {name: torch.log10(score.double() / threshold).clamp_min(LOWEST_DECADE).float()
            for name, score in scores.items()}


def plot_score_distributions(scores: Mapping[str, dict[str, Tensor]], masks: Mapping[str, dict[str, Tensor]], *,
                             sample_per_layer: int = 4000, seed: int = 0) -> Figure:
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
        axes.boxplot(samples, orientation="horizontal", tick_labels=[short_name(layer) for layer in relative],
                     flierprops={"markersize": 1})
        axes.axvline(0, color="red", linewidth=1)
        axes.set(title=CRITERION_LABELS.get(criterion, criterion), xlabel="log10(score / global threshold)",
                 ylabel="")
        axes.grid(alpha=0.3, axis="x")
    axes_row[0][0].invert_yaxis()  # the first layer on top (the panels share their y axis)
    figure.tight_layout()
    return figure


def plot_layer_scores(scores: Mapping[str, Tensor], masks: Mapping[str, Tensor], layer: str, *,
                      ax: Axes | None = None) -> Axes:
    """Histogram of one layer's log10(score / global threshold): kept weights blue, pruned ones orange."""
    axes = ax or plt.subplots(figsize=(5, 3.5))[1]
    relative = relative_log_scores(scores, masks)[layer].reshape(-1).numpy()
    kept = masks[layer].reshape(-1).numpy()
    bins = np.histogram_bin_edges(relative, bins=40)
    axes.hist(relative[kept], bins=bins, color="C0", label=f"kept ({kept.sum()})")
    axes.hist(relative[~kept], bins=bins, color="C1", label=f"pruned ({(~kept).sum()})")
    axes.axvline(0, color="red", linewidth=1)
    axes.set(title=f"{short_name(layer)}: {kept.mean():.1%} kept", xlabel="log10(score / global threshold)",
             ylabel="weights")
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


def plot_mask_overlap(table: pd.DataFrame, *, reference: str = "teacher_guided", title: str = "",
                      ax: Axes | None = None) -> Axes:
    """Bars of each layer's Jaccard overlap of the other criteria's kept weights with the `reference`'s."""
    axes = ax or plt.subplots(figsize=(11, 4))[1]
    labelled, palette = _labelled(table)
    others = labelled[table["criterion"] != reference]
    sns.barplot(data=others, x="layer", y="overlap", hue="criterion", palette=palette, ax=axes)
    axes.set(ylim=(0, 1.05), xlabel="", title=title,
             ylabel=f"Jaccard overlap with {CRITERION_LABELS.get(reference, reference)}")
    _finish_bar_axes(axes)
    return axes


def _finish_bar_axes(axes: Axes) -> None:
    """Slanted layer names that end under their bars, the legend beside the bars, a light grid."""
    plt.setp(axes.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
    axes.legend(title="criterion", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    axes.grid(alpha=0.3, axis="y")
