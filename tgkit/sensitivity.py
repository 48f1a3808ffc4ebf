"""Layer sensitivity: how much accuracy a network loses when one layer alone is pruned, without retraining.

    table = layer_sensitivity(model, scores, levels, batches)     one row per (layer, level)
    ranking = rank_layers(table, tolerance=0.01)                   one row per layer: how far it prunes safely

For every prunable layer l and level s, the round(s * n_l) lowest-scoring weights of that layer (by any
criterion's scores: teacher-guided, magnitude, ...) are set to zero, every other layer stays dense, and the
network is evaluated in eval mode on `batches`. Nothing is retrained: this is what a global threshold's choice
for one layer costs before retraining repairs it.

Cost: evaluations only. The batches are read into memory once; for each layer one forward pass per batch
measures every level at once: the batch runs once through what comes before the top-level module holding the
layer, is repeated there once per level, and the layer computes each copy with its own masked weight. No
model is copied or rebuilt, no batch decoded twice.

The trap. A layer can keep the accuracy where it was when pruned because nothing that mattered was removed:
its weights were zero already, or its output is multiplied by zero further on (a residual branch whose last
BatchNorm has gamma 0). A tool that ranks layers by their accuracy drop alone calls such a layer the most
robust. Here every measurement records whether the network's output changed at all (`effective`), and
`rank_layers` ranks a layer on its effective levels only; a layer with none is reported, not ranked. Emptying
a layer (level 1) is described apart, in `when_emptied` (`mask_analysis.residual_blocks`): it "cuts the
network" (no path goes around it), or a residual block's other path carries the signal on, so that the layer
shares its fate with that path (`shares_fate_with`): "bypassed by the shortcut" for a branch convolution (the
identity, or the 1x1 convolution named), "bypassed by the branch" for a shortcut convolution. The ranking
never counts level 1: whether the network survives an emptied layer is a question of its structure.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

import pandas as pd
import torch
from torch import Tensor, nn
from torch.func import functional_call

from tgkit import masker
from tgkit.losses import evaluating
from tgkit.mask_analysis import residual_blocks
from tgkit.models import logits_of
from tgkit.util.device import autocast
from tgkit.util.errors import InputError

COLUMNS = (
    "layer",
    "weights",
    "level",
    "pruned",
    "pruned_nonzero",
    "accuracy",
    "dense_accuracy",
    "accuracy_drop",
    "output_change",
    "effective",
    "when_emptied",
    "shares_fate_with",
)


def layer_mask(scores: Tensor, level: float) -> Tensor:
    """One layer's mask at `level`: its round(level * n) lowest scores pruned (`masker.global_masks` on the layer
    alone, so ties break as there; level 1 prunes every weight); True = kept."""
    if level == 1:
        return torch.zeros_like(scores, dtype=torch.bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", masker.LayerCollapseWarning)  # a level near 1 may empty a small layer
        return masker.global_masks({"layer": scores}, level)["layer"]


def emptied_fates(model: nn.Module, layers: Iterable[str]) -> dict[str, tuple[str, str]]:
    """What emptying each of `layers` alone does, as (when_emptied, shares_fate_with): "cuts the network" (no
    residual path goes around it), "bypassed by the shortcut" (a residual branch; the shortcut is the identity or
    the convolutions named) or "bypassed by the branch" (a shortcut convolution; the branch's convolutions named)."""
    fates = {name: ("cuts the network", "") for name in layers}
    for branch, shortcut in residual_blocks(model):
        for name in set(branch) & set(fates):
            fates[name] = ("bypassed by the shortcut", "; ".join(shortcut) or "identity")
        for name in set(shortcut) & set(fates):
            fates[name] = ("bypassed by the branch", "; ".join(branch))
    return fates


@torch.no_grad()
def layer_sensitivity(
    model: nn.Module,
    scores: dict[str, Tensor],
    levels: Sequence[float],
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    layers: Sequence[str] | None = None,
    precision: str = "fp32",
) -> pd.DataFrame:
    """Accuracy on `batches` with each layer of `scores` (or of `layers`) pruned alone to each of `levels`.

    `scores`: one criterion's importance per prunable weight (`scorer.score`, `Experiment.scores`), on any device.
    `levels`: fractions of the layer's own weights pruned, each in [0, 1]. `batches`: (inputs, labels), read once;
    they should not be the test set if the table picks anything; each is repeated once per level inside the
    network, so small batches (64 images) keep memory, and time, down. `precision`: of the forward passes ("fp32",
    "bf16", "auto", as `TrainConfig.precision`). The model is evaluated in eval mode and given back as found.

    Columns (`COLUMNS`): layer, weights, level, pruned (exactly round(level * weights)), pruned_nonzero (those
    of them that were not zero already), accuracy, dense_accuracy (nothing pruned), accuracy_drop = dense_accuracy
    - accuracy, output_change (the largest |change| of any logit), effective (output_change > 0: the pruning
    changed the network's output), when_emptied and shares_fate_with (`emptied_fates`).
    """
    levels = [float(level) for level in levels]
    outside = [level for level in levels if not 0 <= level <= 1]
    if not levels or outside:
        raise InputError(f"levels takes fractions of a layer's weights in [0, 1], e.g. (0.5, 0.9, 1.0); got {levels}")
    parameters = dict(model.named_parameters())
    layers = list(scores) if layers is None else list(layers)
    unknown = [name for name in layers if name not in parameters or name not in scores]
    if unknown:
        raise InputError(f"no scores or no parameter for layer(s) {unknown[:3]}: pass scores of this model's layers")
    device = next(model.parameters()).device
    batches = [(inputs.to(device), labels.to(device)) for inputs, labels in batches]
    if not batches:
        raise InputError("layer_sensitivity needs at least one batch of (inputs, labels)")
    images = sum(len(labels) for _, labels in batches)
    fates = emptied_fates(model, layers)
    rows = []
    with evaluating(model), autocast(device, precision):
        dense = [logits_of(model(inputs)).float() for inputs, _ in batches]
        dense_accuracy = sum(int((z.argmax(1) == y).sum()) for z, (_, y) in zip(dense, batches)) / images
        for name in layers:
            weight = parameters[name].detach()
            keeps = [layer_mask(scores[name].to(device), level) for level in levels]
            correct, change = torch.zeros(len(levels)), torch.zeros(len(levels))
            with _every_level(model, name, [weight * keep for keep in keeps]):
                for (inputs, labels), reference in zip(batches, dense):
                    logits = logits_of(model(inputs)).float().reshape(len(levels), len(labels), -1)
                    correct += (logits.argmax(2) == labels).sum(1).cpu()
                    change = torch.maximum(change, (logits - reference).abs().amax((1, 2)).cpu())
            for level, keep, right, changed in zip(levels, keeps, correct.tolist(), change.tolist()):
                rows.append(
                    {
                        "layer": name,
                        "weights": weight.numel(),
                        "level": level,
                        "pruned": int((~keep).sum()),
                        "pruned_nonzero": int(((~keep) & (weight != 0)).sum()),
                        "accuracy": right / images,
                        "dense_accuracy": dense_accuracy,
                        "accuracy_drop": dense_accuracy - right / images,
                        "output_change": changed,
                        "effective": changed > 0,
                        "when_emptied": fates[name][0],
                        "shares_fate_with": fates[name][1],
                    }
                )
    return pd.DataFrame(rows, columns=list(COLUMNS))


class _EveryLevel(nn.Module):
    """Stands in for one layer while every level is measured: its input holds one copy of the batch per level,
    one after the other, and each copy is computed with that level's masked weight."""

    def __init__(self, layer: nn.Module, weights: list[Tensor]):
        super().__init__()
        self.layer, self.weights = layer, weights

    def forward(self, x: Tensor) -> Tensor:
        copies = x.chunk(len(self.weights))
        return torch.cat([functional_call(self.layer, {"weight": w}, (c,)) for c, w in zip(copies, self.weights)])


@contextmanager
def _every_level(model: nn.Module, name: str, weights: list[Tensor]):
    """Inside the block, `model(x)` returns len(weights) * len(x) logits, level by level: the layer owning the
    parameter `name` is replaced by an `_EveryLevel`, and the batch is repeated once per level on entering the
    top-level module that holds it (what comes before is computed once)."""
    path = name.rsplit(".", 1)[0]
    if "." not in name:
        raise InputError(f"{name!r} is not the weight of a submodule: pass a model that holds its layers")
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path)
    layer = parent.get_submodule(child)
    stand_in = _EveryLevel(layer, weights)
    setattr(parent, child, stand_in)
    entrance = stand_in if "." not in path else model.get_submodule(path.split(".")[0])
    copies = len(weights)
    hook = entrance.register_forward_pre_hook(lambda module, args: (torch.cat([args[0]] * copies), *args[1:]))
    try:
        yield
    finally:
        hook.remove()
        setattr(parent, child, layer)


def rank_layers(table: pd.DataFrame, *, tolerance: float = 0.01) -> pd.DataFrame:
    """One row per layer of a `layer_sensitivity` table: how far it can be pruned alone, and its rank.

    safe_level: the highest level below 1 whose pruning was effective and cost at most `tolerance` of accuracy
    (NaN where none). A layer is ranked only on effective levels: one whose pruning never changed the output is
    "not ranked: pruning it changed no output", however high its accuracy stayed. rank 1 is the layer that prunes
    furthest within the tolerance; ties go to the smaller mean drop over its effective levels below 1.
    Columns: layer, when_emptied, shares_fate_with, safe_level, mean_drop, effective_levels, status, rank.
    """
    rows = []
    for layer, measured in table.groupby("layer", sort=False):
        counted = measured[measured["effective"] & (measured["level"] < 1)]
        safe = counted[counted["accuracy_drop"] <= tolerance]["level"]
        if counted.empty:
            status = "not ranked: pruning it changed no output"
        elif safe.empty:
            status = f"ranked: every effective level costs more than {tolerance:.1%}"
        else:
            status = "ranked"
        rows.append(
            {
                "layer": layer,
                "when_emptied": measured["when_emptied"].iloc[0],
                "shares_fate_with": measured["shares_fate_with"].iloc[0],
                "safe_level": safe.max() if not safe.empty else float("nan"),
                "mean_drop": counted["accuracy_drop"].mean(),
                "effective_levels": len(counted),
                "status": status,
            }
        )
    ranking = pd.DataFrame(rows)
    ranked = ranking["effective_levels"] > 0
    order = ranking[ranked].sort_values(["safe_level", "mean_drop"], ascending=[False, True], na_position="last")
    ranking["rank"] = pd.Series(range(1, len(order) + 1), index=order.index, dtype="Int64")
    return pd.concat([ranking.loc[order.index], ranking[~ranked]], ignore_index=True)
