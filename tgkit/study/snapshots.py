"""Teachers of graded strength from one training: the teacher's weights at chosen epochs, kept in its stage.

    after_epoch = saver(stage, data, device)       `train.fit`'s hook: writes the chosen epochs' weights
    snapshot = load(stage, epoch, model)           {"epoch", "model", "val_accuracy", "test_accuracy"}
    checked_epoch(config, epoch)                   an epoch the teacher keeps (None: the trained teacher)

The epochs are `RunConfig.teacher_help.snapshot_epochs`, a field of the teacher's stage (`NetworkTraining.
snapshot_epochs`), so the run cache keys them with the teacher: no second teacher is trained for them, and a
teacher without snapshots keeps the key it always had. Each snapshot is the network in its state at the end of
that epoch (not the best epoch so far), with its validation and test accuracy measured then, at the training's
precision; it is written atomically into the stage's folder, so a training killed and resumed keeps the
snapshots of the epochs it kept and writes the others as it reaches them. Taking them draws no random number:
the trained teacher is the same with or without snapshots (tests/test_pipeline.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tgkit.data import ImageData
from tgkit.hparams import NetworkTraining, RunConfig
from tgkit.study.runcache import Stage
from tgkit.train import evaluate
from tgkit.util.errors import InputError


def file_name(epoch: int) -> str:
    return f"snapshot-epoch{epoch}.pt"


def saver(stage: Stage, data: ImageData, device: torch.device) -> Callable[[int, nn.Module], None]:
    """`train.fit`'s `after_epoch` for a dense network's stage: at each of its `snapshot_epochs`, the network's
    weights and their validation and test accuracy, saved into the stage's folder."""
    settings: NetworkTraining = stage.config

    def save(epoch: int, model: nn.Module) -> None:
        if epoch in (settings.snapshot_epochs or ()):
            precision = settings.training.precision
            accuracy = {
                split: evaluate(model, data, split, device=device, precision=precision) for split in ("val", "test")
            }
            snapshot = {
                "epoch": epoch,
                "model": model.state_dict(),
                **{f"{k}_accuracy": v for k, v in accuracy.items()},
            }
            stage.save(snapshot, file_name(epoch))

    return save


def load(stage: Stage, epoch: int, model: nn.Module) -> dict:
    """The snapshot of `epoch` in `stage`, its weights loaded into `model` (built like the teacher), in eval mode."""
    saved = stage.load(file_name(epoch))
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as error:  # a state dict of another shape: not this stage's file
        raise stage.damaged(error) from error
    return {**saved, "model": model.eval()}


def kept_epochs(config: RunConfig) -> tuple[int, ...]:
    """The epochs the teacher keeps a snapshot of: those of `teacher_help.snapshot_epochs` within its training,
    in order, each once (a shortened training keeps fewer)."""
    return tuple(sorted({e for e in config.teacher_help.snapshot_epochs or () if e <= config.teacher_training.epochs}))


def checked_epoch(config: RunConfig, epoch: int | None) -> int | None:
    """`epoch` if the teacher keeps a snapshot of it, None (the trained teacher) as it is; else a one-line error."""
    kept = kept_epochs(config)
    if epoch is not None and epoch not in kept:
        raise InputError(
            f"teacher_epoch {epoch!r}: the teacher keeps snapshots at epochs {kept} (teacher_help.snapshot_epochs "
            f"within teacher_training.epochs); pass one of them, or None for the trained teacher"
        )
    return epoch
