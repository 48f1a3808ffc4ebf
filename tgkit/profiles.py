"""Run configurations: one dataclass, three profiles documented side by side.

    smoke   digits (embedded, offline), tiny ResNet-10s   about a minute on a CPU; the tests' and CI's profile
    quick   CIFAR-10 subset, narrow ResNets, few epochs   about 15 minutes on 2 CPU cores
    full    paper scale: ResNet-50 teacher, ResNet-18     for one GPU
            student, full data

A profile is a starting point: `profile("quick", dataset="tinyimagenet", seed=1)` or
`dataclasses.replace` changes any field. Every stage of a run is cached under a hash of the fields
it depends on (see `pipeline`), so changing a field recomputes exactly what it affects.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from tgkit.retrainer import RetrainConfig
from tgkit.train import KDConfig, TrainConfig

# The paper's sparsity levels, measured over all weights (conv + BN gamma + fc), as in its tables.
PAPER_SPARSITIES = (0.5046, 0.75, 0.80, 0.90, 0.9392, 0.977, 0.9841)


@dataclass
class ModelSpec:
    arch: str  # see models.ARCHS
    width: int = 64  # channels of the first stage


@dataclass
class ScoringConfig:
    """Teacher-guided importance scoring (method.md section 3)."""

    epochs: int = 3  # E_acc
    ema: float = 0.9
    variant: str = "taylor"  # |W * dL/dW|; or "grad_abs", "grad_sq"
    batch_size: int = 256
    kd: KDConfig = field(default_factory=KDConfig)  # alpha 0.7, T 3


@dataclass
class RunConfig:
    profile: str
    dataset: str
    teacher: ModelSpec
    student: ModelSpec
    teacher_training: TrainConfig
    student_training: TrainConfig
    retraining: RetrainConfig
    train_subset: int | None = None  # a class-stratified subset of the training images
    test_subset: int | None = None
    val_fraction: float = 0.1
    student_kd: KDConfig | None = field(default_factory=lambda: KDConfig(alpha=0.5, temperature=5.0))
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    kd: KDConfig = field(default_factory=KDConfig)  # KD retraining: alpha 0.7, T 3
    sparsities: tuple[float, ...] = (0.90, 0.98)  # the CLI's table
    sweep: tuple[float, ...] = PAPER_SPARSITIES  # the sweep notebook
    temperatures: tuple[float, ...] = (3.0, 5.0)  # the temperature ablation
    seeds: tuple[int, ...] = (0,)  # retraining seeds of the sweep
    seed: int = 0


def _smoke(dataset: str) -> RunConfig:
    return RunConfig(
        profile="smoke", dataset=dataset,
        teacher=ModelSpec("resnet10", 16), student=ModelSpec("resnet10", 8),
        teacher_training=TrainConfig(epochs=12, batch_size=64, lr=0.05),
        student_training=TrainConfig(epochs=12, batch_size=64, lr=0.05),
        retraining=RetrainConfig(epochs=8, batch_size=64, lr=0.05),
        scoring=ScoringConfig(epochs=3, batch_size=64),
        sparsities=(0.90, 0.95), sweep=(0.5, 0.9, 0.95), seeds=(0, 1))


def _quick(dataset: str) -> RunConfig:
    return RunConfig(
        profile="quick", dataset=dataset, train_subset=20_000,
        teacher=ModelSpec("resnet18", 16), student=ModelSpec("resnet10", 16),
        teacher_training=TrainConfig(epochs=6, batch_size=128, lr=0.1),
        student_training=TrainConfig(epochs=6, batch_size=128, lr=0.1),
        retraining=RetrainConfig(epochs=2, batch_size=128, lr=0.05),
        scoring=ScoringConfig(epochs=1, batch_size=256),
        sweep=(0.5046, 0.90, 0.977), temperatures=(3.0, 5.0))


def _full(dataset: str) -> RunConfig:
    return RunConfig(
        profile="full", dataset=dataset,
        teacher=ModelSpec("resnet50", 64), student=ModelSpec("resnet18", 64),
        teacher_training=TrainConfig(epochs=40, batch_size=512, lr=0.4),
        student_training=TrainConfig(epochs=40, batch_size=512, lr=0.4),
        retraining=RetrainConfig(epochs=15, batch_size=512, lr=0.2),
        scoring=ScoringConfig(epochs=3, batch_size=512),
        seeds=(0,))


PROFILES = {"smoke": _smoke, "quick": _quick, "full": _full}
DEFAULT_DATASETS = {"smoke": "digits", "quick": "cifar10", "full": "cifar10"}


def profile(name: str, dataset: str | None = None, **overrides) -> RunConfig:
    """The named profile's configuration for `dataset` (its default when None), with field overrides."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    config = PROFILES[name](dataset or DEFAULT_DATASETS[name])
    unknown = set(overrides) - {f.name for f in fields(RunConfig)}
    if unknown:
        raise ValueError(f"RunConfig has no field(s) {sorted(unknown)}")
    return replace(config, **overrides)
