"""What a set of masks does to a network, layer by layer: how much each keeps, where two criteria
agree, and which layers a global threshold empties (and whether that cuts the network).

    masks = masks_by_criterion(scores, ratio)       one global mask per criterion at the same ratio
    layer_table(model, masks)                       per layer and criterion: kept, overlap, collapsed, cut
    sparsity_table(model, masks, target)            per criterion: the sparsity reached, overlap, emptied layers
    mask_overlap(a, b)                              Jaccard similarity of the weights two masks keep
    residual_blocks(model)                          the branch and shortcut convolutions of every residual block

Tables are tidy pandas frames, one observation per row, so that they save as CSV and plot directly
(`report.importance`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import pandas as pd
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from tgkit import masker
from tgkit.util.errors import InputError


def mask_overlap(a: dict[str, Tensor] | Tensor, b: dict[str, Tensor] | Tensor) -> float:
    """Jaccard similarity of the kept weights: |kept_a & kept_b| / |kept_a | kept_b|.

    Takes two mask dicts over the same tensors, or two mask tensors. 1.0 means the same weights
    survive; two masks that keep nothing count as identical (1.0).
    """
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        pairs = [("mask", a, b)]
    else:
        if set(a) != set(b):
            raise InputError(
                f"mask dicts cover different tensors: only in the first {sorted(set(a) - set(b))}, "
                f"only in the second {sorted(set(b) - set(a))}."
            )
        pairs = [(name, a[name], b[name]) for name in a]
    both, either = 0, 0
    for name, kept_a, kept_b in pairs:
        if kept_a.shape != kept_b.shape:
            raise InputError(f"masks of {name!r} differ in shape: {tuple(kept_a.shape)} vs {tuple(kept_b.shape)}.")
        kept_a, kept_b = kept_a.bool(), kept_b.bool().to(kept_a.device)
        both += int((kept_a & kept_b).sum())
        either += int((kept_a | kept_b).sum())
    return 1.0 if either == 0 else both / either


def masks_by_criterion(scores: Mapping[str, dict[str, Tensor]], ratio: float) -> dict[str, dict[str, Tensor]]:
    """`masker.global_masks` of each criterion's scores at the same pruning `ratio` of the prunable weights.

    Emptied layers are not warned about here: `layer_table` reports them in its `collapsed` column.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", masker.LayerCollapseWarning)
        return {
            criterion: masker.global_masks(criterion_scores, ratio) for criterion, criterion_scores in scores.items()
        }


def collapsed_layers(masks: Mapping[str, Tensor]) -> list[str]:
    """The tensors whose every weight is pruned, in mask order."""
    return [name for name, mask in masks.items() if mask.numel() and not mask.any()]


def residual_blocks(model: nn.Module) -> list[tuple[list[str], list[str]]]:
    """(branch, shortcut) of every residual block of `model` (torchvision's `BasicBlock` or `Bottleneck`), in
    model order: the weight names of the convolutions on each of its two paths, out = relu(branch(x) +
    shortcut(x)). The shortcut list is empty where the shortcut is the identity."""
    blocks = []
    for block_name, block in model.named_modules():
        if not isinstance(block, (BasicBlock, Bottleneck)):
            continue
        branch = [
            f"{block_name}.{name}.weight" for name, child in block.named_children() if isinstance(child, nn.Conv2d)
        ]
        shortcut = []
        if block.downsample is not None:
            shortcut = [
                f"{block_name}.downsample.{name}.weight"
                for name, child in block.downsample.named_children()
                if isinstance(child, nn.Conv2d)
            ]
        blocks.append((branch, shortcut))
    return blocks


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
    for branch, shortcut in residual_blocks(model):
        if not collapsed.intersection(shortcut):
            cut -= set(branch)
        if not collapsed.intersection(branch):
            cut -= set(shortcut)
    return [name for name in masks if name in cut]


def layer_table(
    model: nn.Module, masks: Mapping[str, dict[str, Tensor]], *, reference: str = "teacher_guided"
) -> pd.DataFrame:
    """One row per (prunable layer, criterion) of `masks_by_criterion`'s masks for `model`.

    Columns: layer, criterion, weights, kept, kept_fraction, overlap (the Jaccard similarity,
    `mask_overlap`, of the layer's kept weights with the `reference` criterion's; 1.0 for the
    reference itself, and for two masks that both empty the layer), collapsed (the layer lost every
    weight), cuts_network (collapsed, and no residual shortcut goes around it: see `cut_layers`).
    """
    rows = []
    for criterion, criterion_masks in masks.items():
        collapsed = set(collapsed_layers(criterion_masks))
        cut = set(cut_layers(model, criterion_masks))
        for layer, mask in criterion_masks.items():
            kept = int(mask.sum())
            rows.append(
                {
                    "layer": layer,
                    "criterion": criterion,
                    "weights": mask.numel(),
                    "kept": kept,
                    "kept_fraction": kept / mask.numel(),
                    "overlap": mask_overlap(mask, masks[reference][layer]),
                    "collapsed": layer in collapsed,
                    "cuts_network": layer in cut,
                }
            )
    return pd.DataFrame(rows)


def sparsity_table(
    model: nn.Module, masks: Mapping[str, dict[str, Tensor]], target: float, *, reference: str = "teacher_guided"
) -> pd.DataFrame:
    """One row per criterion: the target sparsity (over all weights), the sparsity reached over all
    weights and over the prunable ones, the overlap of the whole mask with the `reference`
    criterion's, and the emptied layers ("; "-joined, "" when none) and those that cut the network."""
    rows = []
    for criterion, criterion_masks in masks.items():
        rows.append(
            {
                "criterion": criterion,
                "target_sparsity": target,
                "sparsity_all": masker.global_sparsity(model, criterion_masks, over="all"),
                "sparsity_prunable": masker.global_sparsity(model, criterion_masks, over="prunable"),
                "overlap": mask_overlap(criterion_masks, masks[reference]),
                "collapsed_layers": "; ".join(collapsed_layers(criterion_masks)),
                "cut_layers": "; ".join(cut_layers(model, criterion_masks)),
            }
        )
    return pd.DataFrame(rows)
