"""Run configurations: one dataclass, four profiles documented side by side.

    smoke   digits (embedded, offline), tiny ResNet-10s   about a minute on a CPU; the tests' and CI's profile
    quick   CIFAR-10 subset, narrow ResNets, few epochs   about 15 minutes on 2 CPU cores
    fast    the paper's networks (ResNet-50 teacher,      the notebook batch in at most 7 minutes of one
            ResNet-18 student, width 64), full data,      H100/H200 (a short GPU slot: Colab, a cluster
            short schedules                               queue's debug partition)
    full    paper scale: ResNet-50 teacher, ResNet-18     for one GPU, about half an hour
            student, full data, 40 + 40 epochs

A profile is a starting point: `profile("quick", dataset="tinyimagenet", seed=1)` or
`dataclasses.replace` changes any field. Every stage of a run is cached under a hash of the fields
it depends on (see `pipeline`), so changing a field recomputes exactly what it affects.

What `fast` costs, stage by stage: a PLAN, not a measurement. No GPU has run it yet. The plan is
`python -m tgkit.bench --plan fast`: images per stage over images/s per kind of step. Its rates come
from the CPU benchmark (2 cores, torch 2.14.1, fp32, the fast profile's networks at batch 32,
2026-12-01), every one scaled by the same factor so that dense ResNet-18 training runs at the
30,000 images/s a GPU should reach (the GPU issue's target), i.e. the CPU's ratios between the
kinds of step are kept: teacher step 8,104 images/s, KD step 16,656, masked step 31,205, scoring
17,389, evaluation 62,817 (teacher 14,653). Planned seconds, CIFAR-10 (45,000 training images):

    01  teacher, 15 epochs                       89
        dense student (KD), 15 epochs            42      + 10 assumed per notebook (start-up, figures)
    02  teacher-guided and SNIP scores            5
    03  11 KD retrainings + 4 CE, 4 epochs each  149
    04  COLT, at most 25 rounds of 1 epoch       37
        COLT ticket, 15 epochs                   23      (the one-shot stages come from the run cache)
        total                                   385 s   (6.4 minutes)

On a GPU scoring runs in fp32 while training runs in bf16, so the scaled plan likely understates the
scoring; `scripts/gpu_run.sh preflight` prints the same plan at the rates it measures on the GPU.
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
    sweep: tuple[float, ...] = PAPER_SPARSITIES  # the sweep notebook: teacher-guided with KD and without
    baseline_sweep: tuple[float, ...] | None = None  # magnitude, SNIP, random (KD); None: every level of `sweep`
    temperatures: tuple[float, ...] = (3.0, 5.0)  # the temperature ablation
    temperature_sweep: tuple[float, ...] | None = None  # the levels of the ablation; None: every level of `sweep`
    seeds: tuple[int, ...] = (0,)  # retraining seeds of the sweep
    seed: int = 0
    # Notebook 04 recomputes every one-shot stage in a scratch run folder, so that each number of its latency
    # table is measured in its own process; False reads them from the shared run cache, where the notebooks
    # before it measured them (on the same device in a batch; the table marks them "run cache").
    latency_from_scratch: bool = True


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


def _fast(dataset: str) -> RunConfig:
    return RunConfig(
        profile="fast", dataset=dataset,
        teacher=ModelSpec("resnet50", 64), student=ModelSpec("resnet18", 64),
        teacher_training=TrainConfig(epochs=15, batch_size=512, lr=0.4),
        student_training=TrainConfig(epochs=15, batch_size=512, lr=0.4),
        retraining=RetrainConfig(epochs=4, batch_size=512, lr=0.2),
        scoring=ScoringConfig(epochs=1, batch_size=512),
        sparsities=(0.90, 0.9841), sweep=(0.5046, 0.90, 0.977, 0.9841), baseline_sweep=(0.90, 0.9841),
        temperature_sweep=(0.9841,), latency_from_scratch=False)


def _full(dataset: str) -> RunConfig:
    return RunConfig(
        profile="full", dataset=dataset,
        teacher=ModelSpec("resnet50", 64), student=ModelSpec("resnet18", 64),
        teacher_training=TrainConfig(epochs=40, batch_size=512, lr=0.4),
        student_training=TrainConfig(epochs=40, batch_size=512, lr=0.4),
        retraining=RetrainConfig(epochs=15, batch_size=512, lr=0.2),
        scoring=ScoringConfig(epochs=3, batch_size=512),
        seeds=(0,))


PROFILES = {"smoke": _smoke, "quick": _quick, "fast": _fast, "full": _full}
DEFAULT_DATASETS = {"smoke": "digits", "quick": "cifar10", "fast": "cifar10", "full": "cifar10"}


def profile(name: str, dataset: str | None = None, **overrides) -> RunConfig:
    """The named profile's configuration for `dataset` (its default when None), with field overrides."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    config = PROFILES[name](dataset or DEFAULT_DATASETS[name])
    unknown = set(overrides) - {f.name for f in fields(RunConfig)}
    if unknown:
        raise ValueError(f"RunConfig has no field(s) {sorted(unknown)}")
    return replace(config, **overrides)
