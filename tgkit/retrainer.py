"""Sparsity-aware retraining of a pruned student, with or without knowledge distillation.

After one-shot pruning (docs/method.md section 5) the surviving weights are retrained while every pruned
weight stays exactly zero for ever after: `train.fit` runs with the masks, and its `MaskEnforcer`
zeroes the gradients, the weights and the optimizer state of pruned weights around
every optimizer step, so that neither momentum nor weight decay can regrow them. With a teacher the
loss is the teacher-guided total loss (KD); without one, cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tgkit.data import ImageData, Loaders
from tgkit.hparams import KDConfig, RetrainConfig
from tgkit.masker import apply_masks, regrown_weights
from tgkit.train import check_same_classes, fit


def retrain(
    model: nn.Module,
    masks: dict[str, torch.Tensor],
    data: ImageData | Loaders,
    *,
    teacher: nn.Module | None = None,
    config: RetrainConfig | None = None,
    kd: KDConfig | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    resume: str | Path | None = None,
    progress: bool = True,
    desc: str | None = None,
    after_checkpoint: Callable[[], None] | None = None,
    checkpoint_every_s: float = 0.0,
) -> tuple[nn.Module, list[dict]]:
    """Retrain a pruned `model` under `masks` (True = kept): with KD when a teacher is given, else CE.

    The masks are applied first (pruned weights zeroed), kept on every step, and checked at the end.
    Returns the model with its best-validation weights and the per-epoch history. `resume`,
    `after_checkpoint` and `checkpoint_every_s`: resumable training, as `train.fit` has it.
    """
    config = config or RetrainConfig()
    if teacher is not None:  # before the masks change any weight
        check_same_classes(model, teacher, data)
    apply_masks(model, masks)
    desc = desc or ("retrain with KD" if teacher is not None else "retrain without KD")
    model, history = fit(
        model,
        data,
        config,
        teacher=teacher,
        kd=kd,
        masks=masks,
        device=device,
        seed=seed,
        resume=resume,
        desc=desc,
        progress=progress,
        after_checkpoint=after_checkpoint,
        checkpoint_every_s=checkpoint_every_s,
    )
    regrown = regrown_weights(model, masks)
    if regrown:
        raise AssertionError(f"pruned weights of {regrown} became non-zero during retraining")
    return model, history
