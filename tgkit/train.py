"""One training loop for everything the kit trains: teachers, dense students, and pruned students.

`fit` trains with cross-entropy, or with the teacher-guided loss when a teacher is given
(docs/method.md section 2), picks the epoch with the best validation accuracy (the test set is never looked at), and
restores that state by copy. It checkpoints every epoch atomically, so a run killed half-way resumes
from its last finished epoch.

Given pruning masks, it keeps every pruned weight exactly zero for ever after. Zeroing the weights
once is not enough: momentum, weight decay and Adam's moment estimates would all move a zeroed weight
off zero on the next step. The `MaskEnforcer` therefore, around every optimizer step,

    1. zeroes the gradients of pruned weights before the step,
    2. re-zeroes the pruned weights after it, and
    3. zeroes their optimizer state (momentum buffer, Adam's exp_avg and exp_avg_sq),

so that no optimizer, with any weight decay, can regrow a pruned connection.

The CPU recipe's tricks (airbench94's, README "The CPU recipe") are `TrainConfig` fields, off by default:
label smoothing, the BatchNorm shifts' own learning rate (`bn_bias_lr_scale`), and lookahead averaging
(`tgkit.lookahead`), which keeps a pruned weight at zero like every other step. A network with a patch-whitening layer
(`models.PatchWhitening`, airbench's) has it set from the training images before its first training.

It trains with bf16 autocast wherever the device multiplies bf16 natively (a GPU; a CPU with AMX or
AVX-512 BF16: `TrainConfig.precision`, `device.autocast_dtype`), in fp32 elsewhere, with channels_last
tensors where they pay (`device.memory_format_for`), and on a GPU optionally with `torch.compile`; the
dataset stays resident on the device and is augmented there (see `data.Batches`).
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from tgkit import losses
from tgkit.data import ImageData, Loaders
from tgkit.hparams import KDConfig, TrainConfig
from tgkit.lookahead import Lookahead
from tgkit.models import logits_of, num_classes_of, whitening_layers
from tgkit.util import checkpoint
from tgkit.util.device import autocast, default_device, memory_format_for, synchronize
from tgkit.util.errors import InputError, TgkitError
from tgkit.util.progress import progress_bar


class TrainingDiverged(TgkitError, FloatingPointError):
    """The training loss became NaN or infinite; the message says what to lower and what was kept."""


@torch.no_grad()
def predict(
    model: nn.Module,
    data: ImageData | Loaders,
    split: str = "test",
    *,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    precision: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32, CPU) and labels of a whole split, in order, in eval mode (the mode is restored),
    computed at `precision` (as `TrainConfig.precision`: the training's, for like-with-like numbers)."""
    device = torch.device(device or next(model.parameters()).device)
    was_training = model.training
    model.eval()
    logits, labels = [], []
    channels_last = memory_format_for(device, True, precision) == torch.channels_last
    for x, y in data.batches(split, batch_size, device=device, channels_last=channels_last):
        with autocast(device, precision):
            logits.append(logits_of(model(x)).float())
        labels.append(y)
    model.train(was_training)
    return torch.cat(logits).cpu(), torch.cat(labels).cpu()


def evaluate(model: nn.Module, data: ImageData | Loaders, split: str = "test", **kwargs) -> float:
    """Top-1 accuracy in [0, 1] on a split."""
    logits, labels = predict(model, data, split, **kwargs)
    return (logits.argmax(1) == labels).float().mean().item()


def _check_data(model: nn.Module, data: ImageData | Loaders) -> None:
    if not isinstance(data, (ImageData, Loaders)):
        raise InputError(
            f"fit takes the kit's ImageData or tgkit.data.Loaders, not a {type(data).__name__}: wrap your "
            "loaders as Loaders(train_loader, val=val_loader), the best epoch is picked on val_loader"
        )
    if data.num_classes is not None and num_classes_of(model) != data.num_classes:
        raise InputError(
            f"the network predicts {num_classes_of(model)} classes but {data.name} has {data.num_classes}: "
            f"build it for this dataset (models.build_model(arch, data.num_classes, ...))."
        )


def check_same_classes(student: nn.Module, teacher: nn.Module, data: ImageData | Loaders | None = None) -> None:
    """Teacher and student must predict the same classes (and those of the data)."""
    n_student, n_teacher = num_classes_of(student), num_classes_of(teacher)
    if n_student != n_teacher:
        raise InputError(
            f"the teacher predicts {n_teacher} classes but the student {n_student}: distillation needs "
            f"both trained on the same dataset; train or load a teacher for the student's dataset."
        )
    if data is not None:
        _check_data(student, data)


def _parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """The trainable parameters, in one group, or two where `bn_bias_lr_scale` is not 1: BatchNorm shifts at
    lr * scale and weight decay / scale (the same decay per step, lr * wd), the rest as configured."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if config.bn_bias_lr_scale == 1:
        return [{"params": trainable}]
    shifts = {id(m.bias) for m in model.modules() if isinstance(m, _BatchNorm) and m.bias is not None}
    scale = config.bn_bias_lr_scale
    return [
        {"params": [p for p in trainable if id(p) not in shifts]},
        {
            "params": [p for p in trainable if id(p) in shifts],
            "lr": config.lr * scale,
            "weight_decay": config.weight_decay / scale,
        },
    ]


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = _parameter_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    raise InputError(f"unknown optimizer {config.optimizer!r}; use 'sgd' or 'adam'")


def _make_schedule(optimizer, config: TrainConfig, steps_per_epoch: int):
    """A multiplier of `config.lr` per step: constant, or one-cycle (linear warm-up from lr/10, then cosine to 0)."""
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if config.schedule != "onecycle":
        raise InputError(f"unknown schedule {config.schedule!r}; use 'onecycle' or 'constant'")
    total = config.epochs * steps_per_epoch
    warmup = min(round(config.warmup_epochs * steps_per_epoch), total // 2)

    def one_cycle(step: int) -> float:
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle)


class MaskEnforcer:
    """Keep the pruned weights of `model` (mask False) at exactly zero through an optimizer's steps."""

    def __init__(self, model: nn.Module, masks: dict[str, torch.Tensor]):
        parameters = dict(model.named_parameters())
        missing = sorted(set(masks) - set(parameters))
        if missing:
            raise KeyError(f"masks name parameters the model does not have: {missing[:3]}")
        self.parameters = [parameters[name] for name in masks]
        self.masks = [masks[name] for name in masks]
        self.keep: list[torch.Tensor] = []
        self.optimizer: torch.optim.Optimizer | None = None

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Bind to the optimizer that steps the (by now placed) model; the masks take each weight's
        device, dtype and memory layout, so the multiplications below never mix layouts."""
        self.optimizer = optimizer
        self.keep = [torch.empty_like(p).copy_(mask) for p, mask in zip(self.parameters, self.masks)]

    @torch.no_grad()
    def before_step(self) -> None:
        grads = [p.grad for p in self.parameters if p.grad is not None]
        keeps = [k for p, k in zip(self.parameters, self.keep) if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, keeps)

    @torch.no_grad()
    def after_step(self) -> None:
        torch._foreach_mul_(self.parameters, self.keep)
        if self.optimizer is None:
            return
        for parameter, keep in zip(self.parameters, self.keep):
            for value in self.optimizer.state.get(parameter, {}).values():
                if torch.is_tensor(value) and value.shape == keep.shape:
                    value.mul_(keep)


class TrainingStep:
    """One optimizer step of `fit`, set up once: the model (and teacher) on the device in the right memory
    format, optionally compiled, the optimizer, the lr schedule, and the mask enforcer around the step.

    Calling it with a batch runs forward, loss, backward, the step and the lookahead, and returns the batch's
    (loss, ce, kd, correct) summed over its samples, on the device (no host sync per step).
    `tgkit.bench` times exactly this.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        device: torch.device,
        steps_per_epoch: int,
        *,
        teacher: nn.Module | None = None,
        kd: KDConfig | None = None,
        enforcer: MaskEnforcer | None = None,
    ):
        self.device, self.precision = device, config.precision
        self.memory_format = memory_format_for(device, config.channels_last, config.precision, model)
        self.model = model.to(device, memory_format=self.memory_format)
        self.teacher = None if teacher is None else teacher.to(device, memory_format=self.memory_format).eval()
        self.kd = kd or KDConfig()
        self.step_model = torch.compile(self.model) if device.type == "cuda" and config.compile else self.model
        self.optimizer = _make_optimizer(self.model, config)
        self.schedule = _make_schedule(self.optimizer, config, steps_per_epoch)
        self.enforcer = enforcer
        if enforcer is not None:
            enforcer.attach(self.optimizer)
            enforcer.after_step()  # the weights start pruned: the lookahead's slow copy too
        self.label_smoothing = config.label_smoothing
        self.lookahead = (
            Lookahead(self.model, config.lookahead_every, config.epochs * steps_per_epoch)
            if config.lookahead_every
            else None
        )

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.precision):
            logits = logits_of(self.step_model(x))
            if self.teacher is None:
                loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
                parts = (loss, loss, torch.zeros((), device=self.device))
            else:
                with torch.no_grad():
                    teacher_logits = logits_of(self.teacher(x))
                kd = self.kd
                terms = losses.teacher_guided_loss(
                    logits.float(),
                    teacher_logits.float(),
                    y,
                    alpha=kd.alpha,
                    temperature=kd.temperature,
                    beta=kd.beta,
                    order=kd.order,
                )
                loss, parts = terms["total"], (terms["total"], terms["ce"], terms["kd"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.enforcer is not None:
            self.enforcer.before_step()
        self.optimizer.step()
        self.schedule.step()
        if self.enforcer is not None:
            self.enforcer.after_step()
        if self.lookahead is not None:
            self.lookahead.step()
        with torch.no_grad():
            return torch.stack([p.detach().float() * len(y) for p in parts] + [(logits.argmax(1) == y).sum().float()])


# The images whose 2x2 patches set a whitening layer: airbench's 5,000, enough for a 12 x 12 covariance.
WHITENING_IMAGES = 5000


def fit_whitening(model: nn.Module, data: ImageData | Loaders, device: torch.device) -> None:
    """Set the model's patch-whitening layers (`models.PatchWhitening`) from the first `WHITENING_IMAGES`
    training images as the network sees them (normalised, not augmented), once: a fitted layer (a
    trained network's, retrained or resumed) is left as it is."""
    layers = [layer for layer in whitening_layers(model) if not layer.fitted]
    if not layers:
        return
    if isinstance(data, ImageData):
        batches = data.batches("train", WHITENING_IMAGES, shuffle=False, augment=False, device=device)
        images = next(iter(batches))[0]
    else:
        taken, count = [], 0
        for x, _ in data.batches("train", device=device):
            taken.append(x)
            count += len(x)
            if count >= WHITENING_IMAGES:
                break
        images = torch.cat(taken)[:WHITENING_IMAGES]
    for layer in layers:
        layer.fit(images.to(layer.weight.device))


def check_batch_fits(batch_size: int, train_images: int, dataset: str, setting: str = "batch_size") -> None:
    """Refuse a batch larger than the training set: every epoch would be one step on all of it, and the
    network would learn next to nothing without a word (a teacher at 18% where it reaches 98%)."""
    if batch_size > train_images:
        raise InputError(
            f"{setting} {batch_size} is larger than the training set of {dataset} ({train_images} images): every "
            f"epoch would be a single step; set {setting} to at most {train_images}, better about "
            f"{max(1, train_images // 20)} (some 20 steps per epoch), or train on more images"
        )


def fit(
    model: nn.Module,
    data: ImageData | Loaders,
    config: TrainConfig,
    *,
    teacher: nn.Module | None = None,
    kd: KDConfig | None = None,
    masks: dict[str, torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    resume: str | Path | None = None,
    desc: str = "train",
    progress: bool = True,
    after_checkpoint: Callable[[], None] | None = None,
    checkpoint_every_s: float = 0.0,
    after_epoch: Callable[[int, nn.Module], None] | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train `model` on `data`; return it with its best-validation weights restored, and the history.

    `data`: the kit's `ImageData` (resident on the device, augmented there), or your own loaders
    wrapped as `data.Loaders(train, val=...)` (their batch size, order and augmentation are theirs).

    Without a teacher the loss is cross-entropy. With one it is the teacher-guided total loss
        L = alpha * T^2 * CA-KLD(z_s, z_t) + (1 - alpha) * CE(z_s, y)
    with the teacher in eval mode under no_grad. `masks` (True = kept): the weights they prune are
    kept at zero through every step. `resume`: a checkpoint file (model, optimizer, schedule, best
    weights) written after an epoch once `checkpoint_every_s` seconds have passed since the last one
    (0: after every epoch); if it exists, training continues from it, and a kill loses only the epochs
    since. `after_checkpoint` is called right after each checkpoint (the run cache counts a stage's time
    across resumes with it). `after_epoch(epoch, model)` is called after each epoch's validation, before
    its checkpoint, with the 1-based epoch and the model in its current (not best) state: snapshots of a
    teacher at chosen epochs are taken there. The history is one dict per epoch.
    """
    device = torch.device(device or default_device())
    if config.epochs < 1:
        raise InputError(f"epochs must be at least 1, got {config.epochs}")
    _check_data(model, data)
    if teacher is not None:
        check_same_classes(model, teacher)
    data = data.to(device)  # the kit's data resident on the device: batches copy nothing per epoch
    if isinstance(data, ImageData):
        check_batch_fits(config.batch_size, len(data.train_y), data.name)
        whole_epoch = len(data.batches("train", config.batch_size, device=device))
    elif config.schedule == "onecycle" or config.epoch_fraction < 1:  # only these need the loader's length
        whole_epoch = data.steps("train")
    else:
        whole_epoch = 0  # unknown, and no step needs it
    steps_per_epoch = max(1, round(config.epoch_fraction * whole_epoch)) if whole_epoch else 0
    fit_whitening(model, data, device)
    enforcer = MaskEnforcer(model, masks) if masks is not None else None
    step = TrainingStep(model, config, device, steps_per_epoch, teacher=teacher, kd=kd, enforcer=enforcer)
    model, optimizer, schedule = step.model, step.optimizer, step.schedule
    channels_last = step.memory_format == torch.channels_last  # the batches laid out as the step's model

    state = {"epoch": 0, "history": [], "best_accuracy": -1.0, "best_state": None, "stale_epochs": 0}
    resume = Path(resume) if resume else None
    if resume is not None and resume.exists():
        saved = checkpoint.load_checkpoint(resume, map_location=device)
        if saved["config"] != asdict(config):
            raise checkpoint.CheckpointError(
                f"{resume} was written for another training configuration; delete it to start over."
            )
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        if step.lookahead is not None:
            step.lookahead.load_state_dict(saved["lookahead"])
        state = saved["state"]

    epochs = progress_bar(
        range(state["epoch"], config.epochs),
        desc=desc,
        initial=state["epoch"],
        total=config.epochs,
        disable=not progress,
        leave=False,
        unit="epoch",
    )
    last_checkpoint = time.perf_counter()
    for epoch in epochs:
        started = time.perf_counter()
        model.train()
        totals = torch.zeros(4, device=device)  # loss, ce, kd, correct
        seen = 0
        batches = data.batches(
            "train", config.batch_size, device=device, seed=seed, epoch=epoch, channels_last=channels_last
        )
        # a shuffled epoch's first batches: a fresh random draw of `epoch_fraction` of the split (None: all)
        for x, y in itertools.islice(batches, steps_per_epoch or None):
            totals += step(x, y)
            seen += len(y)
        loss_sum, ce_sum, kd_sum, correct = (totals / seen).tolist()
        if not math.isfinite(loss_sum):
            raise TrainingDiverged(
                f"{desc}: the training loss became {loss_sum} in epoch {epoch + 1}. Lower the learning rate "
                f"(now {config.lr}) or check the data; "
                + (f"the last finished epoch is kept in {resume}." if resume else "nothing was saved.")
            )
        val_accuracy = evaluate(model, data, "val", device=device, precision=config.precision)
        synchronize(device)
        state["history"].append(
            {
                "epoch": epoch + 1,
                "lr": optimizer.param_groups[0]["lr"],
                "loss": loss_sum,
                "ce": ce_sum,
                "kd": kd_sum,
                "train_accuracy": correct,
                "val_accuracy": val_accuracy,
                "seconds": time.perf_counter() - started,
            }
        )
        if val_accuracy > state["best_accuracy"]:
            state.update(
                best_accuracy=val_accuracy,
                stale_epochs=0,
                best_state={k: v.detach().clone() for k, v in model.state_dict().items()},
            )
        else:
            state["stale_epochs"] += 1
        state["epoch"] = epoch + 1
        epochs.set_postfix(loss=f"{loss_sum:.3f}", val=f"{val_accuracy:.3f}")
        if after_epoch is not None:
            after_epoch(epoch + 1, model)
        stop = config.patience is not None and state["stale_epochs"] >= config.patience
        if resume is not None and (stop or time.perf_counter() - last_checkpoint >= checkpoint_every_s):
            if stop:  # a resumed run must not train past the early stop
                state["epoch"] = config.epochs
            checkpoint.save_atomic(
                {
                    "config": asdict(config),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "lookahead": None if step.lookahead is None else step.lookahead.state_dict(),
                    "state": state,
                },
                resume,
            )
            last_checkpoint = time.perf_counter()
            if after_checkpoint is not None:
                after_checkpoint()
        if stop:
            break
    epochs.close()
    model.load_state_dict(state["best_state"])
    return model, copy.deepcopy(state["history"])
