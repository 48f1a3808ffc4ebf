"""Throughput of the kit's training, retraining, scoring and evaluation steps on this machine.

One run measures, on synthetic CIFAR-shaped data (random uint8 images, 10 classes) fed through the
real `ImageData.batches` path, so that the augmentation on the device is part of every step:

    train teacher    a teacher training step (cross-entropy), as notebook 01 trains the teacher
    train dense      a student training step exactly as `train.fit` takes it (cross-entropy)
    train masked     the same step with a `MaskEnforcer` around the optimizer step, as `retrain` runs
                     it, at 90% sparsity (global magnitude masks); and its overhead over dense, in %
    MaskEnforcer     the enforcer's two calls per step, timed on their own
    retrain with KD  the masked step plus the teacher's forward pass and the teacher-guided loss
    scoring          `scorer.teacher_guided_scores` as the pipeline calls it, in seconds per 50,000
                     images (one CIFAR epoch), extrapolated from the batches measured
    eval             `train.evaluate`, of the student and of the teacher

Beside each rate stands the arithmetic it sustains, in GFLOP/s: the floating-point operations of one
image's step, counted once by torch's `FlopCounterMode` (a multiply-add is 2; the dense count, so a
masked step's zeros count like any other weight), times images/s. Set against the processor's peak
this says whether a step is compute-bound or wasted on overhead and memory traffic.

Warm-up steps, and with them torch.compile's compilation, are not timed; queued GPU work is
synchronised before every clock read. The kinds of training step are timed in alternating rounds
and each reports its median round, so that a machine that slows down or speeds up during the run
(clocks, another process on a shared CPU) shifts all of them alike instead of biasing one.

Defaults follow the device (`DEVICE_DEFAULTS`): on CUDA the full profile's networks
(ResNet-18 width 64 student, ResNet-50 width 64 teacher) at batch 512; on the CPU the same student at
width 16, a ResNet-18 width 16 teacher, batch 128 and a few steps. As in `train.fit`, bf16 autocast
applies where the device has bf16 units, channels_last where it pays, torch.compile on CUDA only; scoring
autocasts its forward passes at the same precision, as the GPU profiles score (`ScoringConfig.precision`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
from collections.abc import Callable, Iterator
from functools import partial

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tgkit import masker, scorer
from tgkit.data import ImageData
from tgkit.hparams import BenchConfig, TrainConfig
from tgkit.models import build_model
from tgkit.train import MaskEnforcer, TrainingStep, evaluate
from tgkit.util.device import default_device, device_name, memory_format_for, precision_name, stopwatch

# On CUDA the full profile's networks (ResNet-18 width 64 student, ResNet-50 width 64 teacher) at batch
# 512; on the CPU the same student at width 16, a ResNet-18 width 16 teacher, batch 128 and a few steps,
# so that a CPU's run stays short.
DEVICE_DEFAULTS = {
    "cuda": dict(
        width=64, teacher_arch="resnet50", teacher_width=64, batch_size=512, steps=30, warmup=10, eval_images=10_000
    ),
    "cpu": dict(
        width=16, teacher_arch="resnet18", teacher_width=16, batch_size=128, steps=3, warmup=1, eval_images=1_024
    ),
}
# One CIFAR-10 training epoch: scoring cost is reported per this many images.
EPOCH_IMAGES = 50_000
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
# Uniform random pixels have mean 1/2 and std 1/sqrt(12) in [0, 1] units.
RANDOM_PIXEL_MEAN, RANDOM_PIXEL_STD = 0.5, 12**-0.5


def resolved(config: BenchConfig) -> BenchConfig:
    """A copy with the device chosen and every None field set to that device's default
    (`DEVICE_DEFAULTS`)."""
    device = str(config.device or default_device())
    defaults = DEVICE_DEFAULTS["cuda" if torch.device(device).type == "cuda" else "cpu"]
    filled = {name: value for name, value in defaults.items() if getattr(config, name) is None}
    return dataclasses.replace(config, device=device, **filled)


def synthetic_cifar(
    train_images: int, eval_images: int, seed: int = 0, image_shape: tuple[int, int, int] = IMAGE_SHAPE
) -> ImageData:
    """Random uint8 images (CIFAR's shape by default) and random labels of 10 classes; val is the test split."""
    generator = torch.Generator().manual_seed(seed)

    def split(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.randint(0, 256, (count, *image_shape), dtype=torch.uint8, generator=generator)
        return images, torch.randint(0, NUM_CLASSES, (count,), generator=generator)

    train_x, train_y = split(train_images)
    test_x, test_y = split(eval_images)
    channels = image_shape[0]
    return ImageData(
        "synthetic-cifar",
        [str(c) for c in range(NUM_CLASSES)],
        train_x,
        train_y,
        test_x,
        test_y,
        test_x,
        test_y,
        mean=(RANDOM_PIXEL_MEAN,) * channels,
        std=(RANDOM_PIXEL_STD,) * channels,
    )


def first_training_images(data: ImageData, count: int) -> ImageData:
    """`data` with only the first `count` training images."""
    return dataclasses.replace(data, train_x=data.train_x[:count], train_y=data.train_y[:count])


def endless_batches(
    data: ImageData, batch_size: int, device: torch.device, channels_last: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches epoch after epoch, each epoch asked of `data.batches` as `train.fit` asks it."""
    epoch = 0
    while True:
        yield from data.batches("train", batch_size, device=device, epoch=epoch, channels_last=channels_last)
        epoch += 1


def timed(work: Callable[[], object], device: torch.device) -> float:
    """Seconds that `work()` takes, queued GPU work included."""
    with stopwatch(device) as elapsed:
        work()
    return elapsed.seconds


def run_steps(step: TrainingStep, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], count: int) -> None:
    for _ in range(count):
        step(*next(batches))


def magnitude_masks(model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Global magnitude masks over the prunable weights: a realistic pattern at negligible cost."""
    return masker.global_masks(scorer.magnitude_scores(model), sparsity)


def masked_enforcer(model: nn.Module, sparsity: float) -> MaskEnforcer:
    """Prune `model` in place and return its enforcer, made the way `retrain` makes it."""
    masks = magnitude_masks(model, sparsity)
    masker.apply_masks(model, masks)
    return MaskEnforcer(model, masks)


def time_training_steps(config: BenchConfig, data: ImageData, device: torch.device, say: Callable[[str], None]) -> dict:
    """Images/s of dense, masked and KD steps (median of alternating rounds), the masked overhead, and
    the enforcer's own cost per step."""
    steps_per_epoch = len(data.batches("train", config.batch_size, device=device))
    total_steps = config.warmup + config.rounds * config.steps
    train_config = TrainConfig(
        epochs=math.ceil(total_steps / steps_per_epoch) + 1,
        batch_size=config.batch_size,
        precision=config.precision,
        channels_last=config.channels_last,
        compile=config.compile,
    )
    student = build_model(config.arch, NUM_CLASSES, in_channels=config.image_shape[0], width=config.width)
    teacher = build_model(
        config.teacher_arch, NUM_CLASSES, in_channels=config.image_shape[0], width=config.teacher_width
    )
    # The pipeline hands `retrain` a student already on the device, so its enforcer is made there.
    pruned = copy.deepcopy(student).to(device)
    pruned_for_kd = copy.deepcopy(student).to(device)
    runners = {
        "teacher": TrainingStep(copy.deepcopy(teacher), train_config, device, steps_per_epoch),
        "dense": TrainingStep(student, train_config, device, steps_per_epoch),
        "masked": TrainingStep(
            pruned, train_config, device, steps_per_epoch, enforcer=masked_enforcer(pruned, config.sparsity)
        ),
        "kd": TrainingStep(
            pruned_for_kd,
            train_config,
            device,
            steps_per_epoch,
            teacher=teacher,
            enforcer=masked_enforcer(pruned_for_kd, config.sparsity),
        ),
    }
    channels_last = runners["dense"].memory_format == torch.channels_last  # the student's, as fit lays out its data
    batches = {kind: endless_batches(data, config.batch_size, device, channels_last) for kind in runners}

    say(f"warming up ({config.warmup} steps of each kind{', compiling' if config.compile else ''})")
    warmup_seconds = sum(
        timed(partial(run_steps, runner, batches[kind], config.warmup), device) for kind, runner in runners.items()
    )
    seconds = {kind: [] for kind in runners}
    for round_index in range(config.rounds):
        say(f"round {round_index + 1}/{config.rounds}: {config.steps} steps of each kind")
        for kind, runner in runners.items():
            seconds[kind].append(timed(partial(run_steps, runner, batches[kind], config.steps), device))

    images = config.steps * config.batch_size
    enforcer = runners["masked"].enforcer

    def enforce_repeatedly() -> None:
        for _ in range(config.steps):
            enforcer.before_step()
            enforcer.after_step()

    enforcer_seconds = timed(enforce_repeatedly, device)
    return {
        "teacher_img_s": images / statistics.median(seconds["teacher"]),
        "dense_img_s": images / statistics.median(seconds["dense"]),
        "masked_img_s": images / statistics.median(seconds["masked"]),
        # paired by round: both kinds of a round ran under the same conditions
        "masked_overhead_pct": 100 * statistics.median(m / d - 1 for m, d in zip(seconds["masked"], seconds["dense"])),
        "enforcer_ms": 1000 * enforcer_seconds / config.steps,
        "kd_img_s": images / statistics.median(seconds["kd"]),
        "warmup_s": warmup_seconds,
    }


def time_scoring(config: BenchConfig, data: ImageData, device: torch.device) -> dict:
    """Seconds of teacher-guided scoring per 50,000 images, extrapolated from `config.steps` batches.

    Called as the pipeline calls it: fresh networks on the device, default memory format, the
    training split's batches. One batch beforehand warms the same path up.
    """
    student = build_model(config.arch, NUM_CLASSES, in_channels=config.image_shape[0], width=config.width).to(device)
    teacher = (
        build_model(config.teacher_arch, NUM_CLASSES, in_channels=config.image_shape[0], width=config.teacher_width)
        .to(device)
        .eval()
    )

    def score(images: int) -> None:
        batches = first_training_images(data, images).batches("train", config.batch_size, device=device)
        scorer.teacher_guided_scores(student, teacher, batches, epochs=1, precision=config.precision, progress=False)

    score(config.batch_size)
    images = config.steps * config.batch_size
    seconds = timed(lambda: score(images), device)
    return {"score_s_per_50k": seconds / images * EPOCH_IMAGES, "score_images": images}


def time_evaluation(config: BenchConfig, data: ImageData, device: torch.device) -> dict:
    """Images/s of `train.evaluate` on the test split, of a student and a teacher laid out as `train.fit`
    leaves them; a first, untimed pass warms up the same batch shapes."""
    memory_format = memory_format_for(device, config.channels_last, config.precision)
    rates = {}
    for key, arch, width in (
        ("eval_img_s", config.arch, config.width),
        ("teacher_eval_img_s", config.teacher_arch, config.teacher_width),
    ):
        model = build_model(arch, NUM_CLASSES, in_channels=config.image_shape[0], width=width).to(
            device, memory_format=memory_format
        )
        evaluation = partial(evaluate, model, data, "test", device=device, precision=config.precision)
        evaluation()
        rates[key] = config.eval_images / timed(evaluation, device)
    return rates


def flops_per_image(model: nn.Module, image_shape: tuple[int, int, int], *, backward: bool) -> float:
    """Floating-point operations of one image through `model` (forward, and backward too if asked), counted
    on a copy in train mode on the CPU with a batch of two images (BatchNorm needs more than one)."""
    counted = copy.deepcopy(model).cpu().float().train()
    x = torch.zeros(2, *image_shape)
    with FlopCounterMode(display=False) as counter:
        loss = counted(x).float().sum()
        if backward:
            loss.backward()
    return counter.get_total_flops() / 2


def arithmetic(config: BenchConfig, row: dict) -> dict:
    """GFLOP/s of each kind of step: its measured images/s times its operations per image."""
    shape = config.image_shape
    student = build_model(config.arch, NUM_CLASSES, in_channels=shape[0], width=config.width)
    teacher = build_model(config.teacher_arch, NUM_CLASSES, in_channels=shape[0], width=config.teacher_width)
    student_step = flops_per_image(student, shape, backward=True)
    teacher_forward = flops_per_image(teacher, shape, backward=False)
    per_image = {
        "teacher": flops_per_image(teacher, shape, backward=True),
        "dense": student_step,
        "masked": student_step,
        "kd": student_step + teacher_forward,
        "eval": flops_per_image(student, shape, backward=False),
        "teacher_eval": teacher_forward,
    }
    gflop_s = {f"{kind}_gflop_s": row[f"{kind}_img_s"] * flops / 1e9 for kind, flops in per_image.items()}
    scoring_rate = EPOCH_IMAGES / row["score_s_per_50k"]  # the student's step and the teacher's forward
    return gflop_s | {
        "score_gflop_s": scoring_rate * per_image["kd"] / 1e9,
        "student_gflop_per_image": student_step / 1e9,
        "teacher_gflop_per_image": per_image["teacher"] / 1e9,
    }


def run_bench(config: BenchConfig | None = None, *, say: Callable[[str], None] = lambda message: None) -> pd.DataFrame:
    """Measure everything (see the module docstring) and return one row: the settings, then the numbers."""
    config = resolved(config or BenchConfig())
    device = torch.device(config.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
    say(f"making {config.train_images:,} + {config.eval_images:,} synthetic images on {device}")
    data = synthetic_cifar(config.train_images, config.eval_images, image_shape=config.image_shape).to(device)
    student = build_model(config.arch, NUM_CLASSES, in_channels=config.image_shape[0], width=config.width)
    row = {
        "device": device_name(device),
        "torch": torch.__version__,
        "student": f"{config.arch} width {config.width}",
        "teacher": f"{config.teacher_arch} width {config.teacher_width}",
        "batch_size": config.batch_size,
        "autocast": precision_name(device, config.precision),
        "channels_last": on_off(  # the student's layout, as `fit` chooses it
            memory_format_for(device, config.channels_last, config.precision, student) == torch.channels_last
        ),
        "compile": on_off(cuda and config.compile),
        "cudnn_benchmark": on_off(cuda and config.cudnn_benchmark),
        "sparsity": config.sparsity,
        "steps": config.steps,
        "rounds": config.rounds,
    }
    row |= time_training_steps(config, data, device, say)
    say("timing teacher-guided scoring")
    row |= time_scoring(config, data, device)
    say("timing evaluation")
    row |= time_evaluation(config, data, device)
    row |= arithmetic(config, row)
    return pd.DataFrame([row])


def on_off(flag: bool) -> str:
    return "on" if flag else "off"


# The printed report, top to bottom: a label, and a template filled from the row.
REPORT_LINES = (
    ("device", "{device}"),
    ("torch", "{torch}"),
    ("student / teacher", "{student} / {teacher}"),
    ("batch size", "{batch_size}"),
    ("autocast", "{autocast}"),
    ("channels_last", "{channels_last}"),
    ("torch.compile", "{compile}"),
    ("cudnn.benchmark", "{cudnn_benchmark}"),
    ("timed", "{rounds} rounds x {steps} steps of each kind, median round"),
    (
        "FLOP per image",
        "{student_gflop_per_image:10.3f} GFLOP a student's step, the teacher's {teacher_gflop_per_image:.3f}",
    ),
    ("train teacher", "{teacher_img_s:10,.0f} images/s  {teacher_gflop_s:8,.1f} GFLOP/s"),
    ("train dense", "{dense_img_s:10,.0f} images/s  {dense_gflop_s:8,.1f} GFLOP/s"),
    (
        "train masked",
        "{masked_img_s:10,.0f} images/s  {masked_gflop_s:8,.1f} GFLOP/s  ({sparsity:.0%} sparse, MaskEnforcer; dense count)",
    ),
    ("masked overhead", "{masked_overhead_pct:+10.1f} % time per step"),
    ("MaskEnforcer alone", "{enforcer_ms:10.2f} ms per step"),
    ("retrain with KD", "{kd_img_s:10,.0f} images/s  {kd_gflop_s:8,.1f} GFLOP/s  (masked + teacher forward + loss)"),
    (
        "scoring",
        "{score_s_per_50k:10,.1f} s per 50,000 images, {score_gflop_s:,.1f} GFLOP/s (from {score_images:,} measured)",
    ),
    (
        "eval",
        "{eval_img_s:10,.0f} images/s  {eval_gflop_s:8,.1f} GFLOP/s  (teacher: {teacher_eval_img_s:,.0f} images/s, {teacher_eval_gflop_s:,.1f} GFLOP/s)",
    ),
    ("warm-up", "{warmup_s:10.1f} s, untimed above (torch.compile's compilation, if on, is in it)"),
)


def format_report(table: pd.DataFrame) -> str:
    """The first row of `run_bench`'s table as aligned `label  value` lines."""
    row = table.iloc[0].to_dict()
    width = max(len(label) for label, _ in REPORT_LINES)
    return "\n".join(f"{label:<{width}}  {template.format(**row)}" for label, template in REPORT_LINES)
