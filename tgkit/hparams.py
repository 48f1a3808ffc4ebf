"""Every setting of the kit, as dataclasses, and the profiles that fill them in: one table, one module.

    ModelSpec        a network: architecture and width
    TrainConfig      how a network is trained (RetrainConfig: a pruned one)
    KDConfig         the teacher-guided loss: alpha, T, beta, the order of normalising and dividing by T
    ScoringConfig    teacher-guided importance scoring (and SNIP's passes)
    ColtConfig       the iterative baselines COLT and LTH
    DeploymentConfig what notebook 05 exports and times (sizes, CPU latency per backend)
    TeacherHelpConfig notebook 06's grid: teachers of graded strength against retraining lengths
    RunConfig        a whole run: data, both networks, every schedule, the sweep, COLT, deployment
    ClusterConfig    where a sweep's jobs run (local processes, SLURM job arrays)
    BenchConfig      what the throughput benchmark measures

The run cache (`tgkit.study.runcache`) keys every stage by the stage's own dataclass below (`DataConfig`,
`NetworkTraining`, `ScoringStage`, `PruningStage`, or `ColtConfig`): a field added to any of them
enters the key by itself, so no cached result is ever reused for a setting it was not computed with.

Profiles, side by side (`profile(name, dataset, **overrides)`; `dataclasses.replace` changes any field):

    smoke   digits (embedded, offline), tiny ResNet-10s   minutes on a CPU: the tests' and CI's profile
    quick   CIFAR-10, airbench networks and training       a laptop's CPU (the README gives measured minutes)
    fast    the paper's networks (ResNet-50 teacher,      a short GPU slot: `python -m tgkit.bench --plan fast`
            ResNet-18 student, width 64), full data,      prints what it costs, stage by stage, at the rates
            short schedules                               it measures
    full    paper scale: ResNet-50 teacher, ResNet-18     one GPU
            student, full data, 40 + 40 epochs

The flat dataclasses of the command lines (`ClusterConfig`, `BenchConfig`) carry each field's help
beside its default (`setting`): `util.flags` turns them into `--field-name` flags.

This module imports no torch and nothing of the kit but its errors: reading a configuration costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tgkit.util.errors import InputError, check_choice, check_interval, check_some, check_whole


def setting(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field whose command-line help (and `choices`, `metavar`, `default_help`) sits beside
    its default: `util.flags.add_flags` makes its flag from them."""
    return field(default=default, metadata={"help": help, **metadata})


# --------------------------------------------------------------------------------------------------
# The dataclasses check their own fields (`__post_init__`, with `util.errors`' checks): a value refused
# there is refused before any work, in one line naming what the field takes (`--set` adds which setting).


def _levels(name: str, levels: tuple[float, ...] | None, example: str = "") -> None:
    """Sparsity levels, each in [0, 1); at least one where an `example` is given (else empty means none)."""
    if example:
        check_some(name, levels, "sparsity in [0, 1)", example)
    outside = [level for level in levels or () if not 0 <= level < 1]
    if outside:
        raise InputError(f"{name} takes sparsities in [0, 1) (0.9 prunes 90% of the weights), got {outside[0]!r}")


# The paper's sparsity levels, measured over all weights (conv + BN gamma + fc), as in its tables.
PAPER_SPARSITIES = (0.5046, 0.75, 0.80, 0.90, 0.9392, 0.977, 0.9841)
# How a sparsity is counted: over "all" weights (conv + linear + BatchNorm gamma, the paper's tables) or
# over the "prunable" ones (what the global threshold controls).
OVER = ("all", "prunable")


# --------------------------------------------------------------------------------------------------
# the parts

PRECISIONS = ("auto", "bf16", "fp32")  # of TrainConfig and BenchConfig: see device.autocast_dtype
OPTIMIZERS = ("sgd", "adam")  # of TrainConfig: SGD with momentum, or Adam with decoupled weight decay (AdamW)
SCHEDULES = ("onecycle", "constant")  # of TrainConfig: see its docstring


@dataclass
class ModelSpec:
    arch: str  # see models.ARCHS
    width: int = 64  # channels of the first stage

    def __post_init__(self):
        check_whole("width", self.width, note="the channels of the network's first stage, e.g. 16 or 64")


@dataclass
class TrainConfig:
    """How a network is trained. The defaults suit a CIFAR ResNet trained from scratch on a GPU.

    schedule "onecycle": linear warm-up to `lr` over `warmup_epochs`, then cosine decay to ~0
    (faster and better than the authors' constant lr); "constant": the authors' fixed lr, best used
    with `patience` for early stopping.
    """

    epochs: int = 30
    batch_size: int = 512
    optimizer: str = "sgd"  # "sgd" (with momentum) or "adam"
    lr: float = 0.2
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # "onecycle" or "constant"
    warmup_epochs: float = 1.0
    patience: int | None = None  # stop after this many epochs without a better validation accuracy
    # "auto": bf16 autocast where the device has bf16 units (CUDA; a CPU with AMX or AVX-512 BF16), fp32
    # elsewhere; "bf16" or "fp32" force it (device.autocast_dtype)
    precision: str = "auto"
    channels_last: bool = True  # NHWC tensors (on a CPU with bf16 units: only with bf16 autocast)
    compile: bool = False  # torch.compile, on CUDA only
    # airbench's tricks (the CPU recipe, README), each off by default and keyed in the run cache only when on
    label_smoothing: float = field(default=0.0, metadata={"key": "if set"})  # of the CE without a teacher
    # BatchNorm shifts train at lr * this and weight decay / this (airbench: 64, for its BatchNorms without scale)
    bn_bias_lr_scale: float = field(default=1.0, metadata={"key": "if set"})
    # steps between lookahead averages (train.Lookahead; airbench: 5); 0: none
    lookahead_every: int = field(default=0, metadata={"key": "if set"})
    # the share of the training split each epoch draws, afresh each epoch: training shorter than an epoch
    epoch_fraction: float = field(default=1.0, metadata={"key": "if set"})

    def __post_init__(self):
        check_choice("precision", self.precision, PRECISIONS)
        check_interval("epoch_fraction", self.epoch_fraction, 0, 1, closed="(]", note="1: the whole split")
        check_whole("lookahead_every", self.lookahead_every, least=0, note="steps between averages; 0: none")
        check_interval("label_smoothing", self.label_smoothing, 0, 1, closed="[)")
        check_interval("bn_bias_lr_scale", self.bn_bias_lr_scale, 0, math.inf, note="1: no scaling")
        check_whole("epochs", self.epochs)
        check_whole("batch_size", self.batch_size, note="images per step")
        check_whole("patience", self.patience, note="epochs without a better validation accuracy", optional=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS, ' ("adam" is AdamW)')
        check_choice("schedule", self.schedule, SCHEDULES)


@dataclass
class RetrainConfig(TrainConfig):
    """Retraining a pruned student: shorter than dense training and with a lower peak lr.

    The authors used SGD lr 0.01, momentum 0.9, no weight decay, a constant lr and early stopping
    (`RetrainConfig(lr=0.01, weight_decay=0, nesterov=False, schedule="constant", patience=...)`);
    the kit's default one-cycle schedule reaches higher accuracy in fewer epochs.
    """

    epochs: int = 15
    lr: float = 0.1


@dataclass
class KDConfig:
    """Knowledge-distillation settings of the teacher-guided loss (docs/method.md section 2)."""

    alpha: float = 0.7
    temperature: float = 3.0
    # a number in [0, 1], or "confidence": the teacher's mean true-class probability, measured before
    # scoring (the scoring loss only: retraining refuses it)
    beta: float | str = 0.5
    order: str = "paper"

    def __post_init__(self):
        if isinstance(self.beta, str) and self.beta != "confidence":
            raise InputError(f'beta takes a number in [0, 1] or "confidence", got {self.beta!r}')


@dataclass
class ScoringConfig:
    """Teacher-guided importance scoring (docs/method.md section 3); SNIP shares `ema`, `batch_size` and `precision`."""

    epochs: int = 3  # E_acc
    ema: float = 0.9
    variant: str = "taylor"  # |W * dL/dW|; or "grad_abs", "grad_sq"
    batch_size: int = 256
    kd: KDConfig = field(default_factory=KDConfig)  # the scoring loss: alpha 0.7, T 3 (the scoring temperature)
    snip_epochs: int = 1  # SNIP's passes over the training data
    # the forward passes' autocast, as `TrainConfig.precision` (weights, gradients and their average stay
    # fp32); fp32 by default: "auto" would score in bf16 on a CPU with bf16 units and change its numbers
    precision: str = "fp32"

    def __post_init__(self):
        check_choice("precision", self.precision, PRECISIONS)
        check_whole("epochs", self.epochs, note="passes over the training data")
        check_whole("batch_size", self.batch_size, note="images per step")
        check_whole("snip_epochs", self.snip_epochs, note="SNIP's passes over the training data")


# The paper's COLT round training: 50 epochs of SGD, lr 0.1, momentum 0.9 (plain, not Nesterov),
# weight decay 5e-4, batch 256, one warm-up epoch then step decay. The kit's one-cycle schedule (linear
# warm-up over one epoch, then cosine decay) stands in for warm-up + step decay: the same shape,
# without step milestones to tune.
PAPER_ROUND_TRAINING = TrainConfig(
    epochs=50, batch_size=256, lr=0.1, momentum=0.9, nesterov=False, weight_decay=5e-4, warmup_epochs=1.0
)


@dataclass
class ColtConfig:
    """Settings of a COLT run (an LTH run with partitions=1 and prune_rate=0.2; see `lth_config`).

    model: the network to prune; the one-shot student's spec compares like with like.
    partitions: P, the number of disjoint class blocks, one network each (paper: 2).
    prune_rate: fraction of each network's remaining conv weights it removes per round (paper: 0.15).
    round_training: how each block network is trained in round 0 and after every merge
        (default: the paper's, see `PAPER_ROUND_TRAINING`).
    final_training: how the ticket (mask, theta0, fresh C-way head) is trained on the full data.
    target_sparsity: where to stop, counted `over` "all" weights (the paper's tables) or "prunable".
    seed: theta0, every head, and the batch order.
    """

    model: ModelSpec = field(default_factory=lambda: ModelSpec("resnet18", 64))
    partitions: int = 2
    prune_rate: float = 0.15
    round_training: TrainConfig = field(default_factory=lambda: replace(PAPER_ROUND_TRAINING))
    final_training: TrainConfig = field(default_factory=lambda: replace(PAPER_ROUND_TRAINING))
    target_sparsity: float = 0.977
    over: str = "all"
    seed: int = 0

    def __post_init__(self):
        check_whole("partitions", self.partitions, note="class blocks, each trained by its own network")
        check_interval("prune_rate", self.prune_rate, 0, 1, note="the share of the remaining weights pruned a round")
        _levels("target_sparsity", (self.target_sparsity,))
        check_choice("over", self.over, OVER)

    @property
    def method(self) -> str:
        """ "LTH" for one partition, else "COLT (P=...)": the name tables and plots show."""
        return "LTH" if self.partitions == 1 else f"COLT (P={self.partitions})"


@dataclass(frozen=True)
class DeploymentConfig:
    """What notebook 05 (and `tgkit.bench --inference`) exports and times, on the CPU.

    sparsities: over all weights, teacher-guided masks of the dense student: size and latency depend only
        on where the zeros are, so no retraining (the sweep's retrained students give the accuracy).
    batch_sizes: a single image (latency) and a batch (throughput). min_run_time: seconds of calls behind
        each network measurement (`torch.utils.benchmark`), `layer_min_run_time` behind each layer's.
    """

    sparsities: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.977, 0.99)
    batch_sizes: tuple[int, ...] = (1, 64)
    min_run_time: float = 0.3
    layer_min_run_time: float = 0.05
    values: tuple[str, ...] = ("float32", "float16", "bfloat16")  # the value types of the export

    def __post_init__(self):
        _levels("sparsities", self.sparsities)
        check_some("batch_sizes", self.batch_sizes, "batch size", "(1, 64)")
        for size in self.batch_sizes:
            check_whole("batch_sizes", size, note="images per timed call")


@dataclass(frozen=True)
class TeacherHelpConfig:
    """Teachers of graded strength, and notebook 06, "When does the teacher help?" (`tgkit.study.teacher_help`).

    snapshot_epochs: the epochs of the teacher's training whose weights are kept beside the trained teacher
        (`Experiment.teacher_snapshots`): teachers of graded strength from one training; None keeps none, and
        epochs past `RunConfig.teacher_training.epochs` are left out (a shortened training keeps fewer).
    The grid: at `sparsity` (over all weights) the dense student is pruned by the scores of each teacher (every
    snapshot and the trained teacher) and by magnitude, and retrained for each length of `retraining_epochs`
    (whole epochs, or a fraction of one: one epoch drawing that share of the split), with KD from that teacher
    and with CE alone, once per seed of `seeds`. The ablation of the KD loss retrains for the longest length,
    at the strongest teacher, with the first seed.
    """

    snapshot_epochs: tuple[int, ...] | None = None
    sparsity: float = 0.9841
    retraining_epochs: tuple[float, ...] = (1, 2, 4)
    seeds: tuple[int, ...] = (0, 1)

    def __post_init__(self):
        _levels("sparsity", (self.sparsity,))
        check_some("retraining_epochs", self.retraining_epochs, "retraining length", "(1, 2, 4) or (0.1, 0.2)")
        check_some("seeds", self.seeds, "retraining seed", "(0, 1)")
        for epochs in self.retraining_epochs:
            if not (isinstance(epochs, float) and 0 < epochs < 1):
                check_whole("retraining_epochs", epochs, note="whole epochs of retraining, or a fraction of one")
        for epoch in self.snapshot_epochs or ():
            check_whole("snapshot_epochs", epoch, note="an epoch of the teacher's training, counted from 1")


@dataclass
class RunConfig:
    profile: str
    dataset: str
    teacher: ModelSpec
    student: ModelSpec
    teacher_training: TrainConfig
    student_training: TrainConfig
    retraining: RetrainConfig
    colt: ColtConfig  # the iterative baseline of notebook 04, on the student's architecture
    train_subset: int | None = None  # a class-stratified subset of the training images
    test_subset: int | None = None
    val_fraction: float = 0.1
    augment_flip: bool | None = None  # training augmentation; None: the dataset's (datasets.load_dataset)
    augment_crop_padding: int | None = None
    student_kd: KDConfig | None = field(default_factory=lambda: KDConfig(alpha=0.5, temperature=5.0))
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    kd: KDConfig = field(default_factory=KDConfig)  # KD retraining: alpha 0.7, T 3 (the retraining temperature)
    sparsities: tuple[float, ...] = (0.90, 0.98)  # the CLI's table
    sweep: tuple[float, ...] = PAPER_SPARSITIES  # the sweep notebook: teacher-guided with KD and without
    baseline_sweep: tuple[float, ...] | None = None  # magnitude, SNIP, random (KD); None: every level of `sweep`
    temperatures: tuple[float, ...] = (3.0, 5.0)  # the temperature ablation (of the KD retraining)
    temperature_sweep: tuple[float, ...] | None = None  # the levels of the ablation; None: every level of `sweep`
    seeds: tuple[int, ...] = (0,)  # retraining seeds of the sweep
    seed: int = 0
    # Notebook 04 recomputes every one-shot stage in a scratch run folder, so that each number of its latency
    # table is measured in its own process; False reads them from the shared run cache, where the notebooks
    # before it measured them (on the same device in a batch; the table marks them "run cache").
    latency_from_scratch: bool = True
    deployment: DeploymentConfig = field(default_factory=DeploymentConfig)  # notebook 05
    teacher_help: TeacherHelpConfig = field(default_factory=TeacherHelpConfig)  # the teacher's snapshots, notebook 06

    def __post_init__(self):
        why = "the validation split picks each training's best epoch"
        check_interval("val_fraction", self.val_fraction, 0, 1, note=why)
        _levels("sparsities", self.sparsities, "(0.9,)")
        _levels("sweep", self.sweep, "(0.9, 0.98)")
        _levels("baseline_sweep", self.baseline_sweep)  # empty: no baselines (None: every level of `sweep`)
        _levels("temperature_sweep", self.temperature_sweep)  # empty: no ablation
        check_some("temperatures", self.temperatures, "KD temperature", f"({self.kd.temperature!r},) (no ablation)")
        if any(isinstance(t, bool) or not 0 < t < math.inf for t in self.temperatures):
            raise InputError(f"temperatures takes finite numbers > 0 (the paper uses 3 or 5), got {self.temperatures}")
        check_some("seeds", self.seeds, "retraining seed", "(0,)")
        check_whole("augment_crop_padding", self.augment_crop_padding, least=0, optional=True, note="pixels, e.g. 4")

    @property
    def data(self) -> DataConfig:
        """What this run's data splits depend on."""
        return DataConfig(**{f.name: getattr(self, f.name) for f in fields(DataConfig) if f.name != "content"})


# --------------------------------------------------------------------------------------------------
# what each stage of the run cache is keyed by (besides its upstream stages and the device)


@dataclass(frozen=True)
class DataConfig:
    """The data of a run: `data.load_dataset(dataset, train_subset=..., ...)` makes the same splits. `content`:
    a fingerprint of an image folder's files (`data.content_fingerprint`, filled in by the pipeline), so that
    a changed folder is a new data stage. The fields marked "if set" enter the run cache's key only when not
    at their default, None (`runcache.plain`): the named datasets' keys stayed what they were before these
    fields existed."""

    dataset: str
    train_subset: int | None
    test_subset: int | None
    val_fraction: float
    seed: int
    augment_flip: bool | None = field(default=None, metadata={"key": "if set"})
    augment_crop_padding: int | None = field(default=None, metadata={"key": "if set"})
    content: str | None = field(default=None, metadata={"key": "if set"})


@dataclass(frozen=True)
class NetworkTraining:
    """A dense network's training stage: the teacher (kd None), or the dense student (kd: what it
    learns from the teacher's outputs, or None for labels only). `init_seed` seeds its initial weights.
    `snapshot_epochs`: the epochs whose weights are kept beside the trained network (keyed only when set)."""

    model: ModelSpec
    training: TrainConfig
    kd: KDConfig | None
    init_seed: int
    snapshot_epochs: tuple[int, ...] | None = field(default=None, metadata={"key": "if set"})


@dataclass(frozen=True)
class ScoringStage:
    """One criterion's scores of the dense student. `settings` is None for a criterion that reads no
    scoring setting, `seed` None for one that draws no random numbers (`scorer.CRITERIA` says which).
    `teacher_epoch`: the teacher snapshot that scores (None, unkeyed: the trained teacher, or no teacher)."""

    criterion: str
    settings: ScoringConfig | None
    seed: int | None
    teacher_epoch: int | None = field(default=None, metadata={"key": "if set"})


@dataclass(frozen=True)
class PruningStage:
    """Pruning the dense student by one criterion's scores at `sparsity` (counted `over` all weights or the
    prunable ones) and retraining it: with KD from the teacher (kd set) or with cross-entropy (kd None).
    `teacher_epoch`: the teacher snapshot KD learns from (None, unkeyed: the trained teacher, or no KD)."""

    sparsity: float
    over: str
    retraining: TrainConfig
    kd: KDConfig | None
    seed: int
    teacher_epoch: int | None = field(default=None, metadata={"key": "if set"})


# --------------------------------------------------------------------------------------------------
# the benchmark


@dataclass
class BenchConfig:
    """What `python -m tgkit.bench` measures, and how long; each field is one of its flags. Fields left
    at None take the device's defaults (`bench.throughput.DEVICE_DEFAULTS`, `resolved`).

    train_images: the synthetic training split; as large as CIFAR-10's, so that the per-epoch work of
        `Batches` (shuffling, drawing the augmentation) weighs on a step as much as in real training.
    """

    arch: str = setting("resnet18", "student architecture", default_help="resnet18, or the --plan profile's student")
    width: int | None = setting(None, "student width", default_help="64 on CUDA, 16 on the CPU")
    teacher_arch: str | None = setting(
        None, "teacher architecture", default_help="resnet50 on CUDA, resnet18 on the CPU"
    )
    teacher_width: int | None = setting(None, "teacher width", default_help="64 on CUDA, 16 on the CPU")
    batch_size: int | None = setting(None, "images per step", default_help="512 on CUDA, 128 on the CPU")
    steps: int | None = setting(
        None,
        "timed steps per round of each kind, and batches of the timed scoring pass",
        default_help="30 on CUDA, 3 on the CPU",
    )
    warmup: int | None = setting(None, "untimed steps of each kind first", default_help="10 on CUDA, 1 on the CPU")
    rounds: int = setting(3, "alternating rounds of every kind of step")
    sparsity: float = setting(0.9, "sparsity of the masked and KD steps (global magnitude masks)")
    device: str | None = setting(None, "cuda, cuda:1, cpu, ...", default_help="cuda if available")
    precision: str = setting(
        "auto", "auto: bf16 where the device has bf16 units (a GPU, AMX, AVX-512 BF16), else fp32", choices=PRECISIONS
    )
    channels_last: bool = setting(True, "channels_last where it pays (device.memory_format_for), as fit")
    compile: bool = setting(False, "torch.compile the student (CUDA only, as in fit)")
    cudnn_benchmark: bool = setting(False, "let cuDNN time its algorithms for each shape (not what fit does)")
    train_images: int = setting(50_000, "synthetic training images")
    eval_images: int | None = setting(None, "synthetic test images", default_help="10,000 on CUDA, 1,024 on the CPU")
    image_shape: tuple[int, int, int] = (3, 32, 32)

    def __post_init__(self):
        for name in ("width", "teacher_width", "batch_size", "steps", "eval_images", "rounds", "train_images"):
            flag, optional = f"--{name.replace('_', '-')}", name not in ("rounds", "train_images")
            check_whole(flag, getattr(self, name), optional=optional)
        check_whole("--warmup", self.warmup, least=0, optional=True)


# --------------------------------------------------------------------------------------------------
# where a sweep's jobs run

EXECUTORS = ("local", "slurm", "debug")


@dataclass(frozen=True)
class ClusterConfig:
    """Where the jobs of a sweep run (`python -m tgkit sweep`, `tgkit.study.jobs`); each field is one of
    its flags. "local" runs `workers` processes on this machine, "slurm" submits SLURM job arrays,
    "debug" runs the jobs in this process."""

    executor: str = setting("local", "where the jobs run", choices=EXECUTORS)
    folder: str = setting("sweep-logs", "submitit's job folder: pickles and logs")
    workers: int | None = setting(None, "local processes at once", default_help="one per GPU, else 2")
    jobs: int | None = setting(
        None, "jobs the runs are spread over", default_help="local: one per worker; SLURM: one per run"
    )
    partition: str | None = setting(None, "SLURM partition")
    gpus_per_job: int = setting(1, "SLURM GPUs per job")
    cpus_per_job: int = setting(8, "SLURM CPUs per job")
    time_min: int = setting(240, "time limit of a job, minutes")
    array_parallelism: int = setting(64, "SLURM array tasks at once")
    mem_gb: float | None = setting(None, "SLURM memory per job, GB")

    def __post_init__(self):
        for name, note in (("workers", "local processes at once"), ("jobs", "jobs the runs are spread over")):
            check_whole(f"--{name}", getattr(self, name), note=f"{note}; or leave it out", optional=True)
        for name in ("gpus_per_job", "cpus_per_job", "time_min", "array_parallelism"):
            check_whole(f"--{name.replace('_', '-')}", getattr(self, name), least=0 if name == "gpus_per_job" else 1)


# --------------------------------------------------------------------------------------------------
# the profiles: one function each, the COLT baseline of each included


def _colt(student: ModelSpec, training: TrainConfig, round_epochs: int, target: float) -> ColtConfig:
    """COLT on the profile's student: rounds of `round_epochs` epochs, the ticket trained as the dense student."""
    rounds = replace(training, epochs=round_epochs)
    return ColtConfig(student, round_training=rounds, final_training=replace(training), target_sparsity=target)


def _smoke(dataset: str) -> RunConfig:
    student, training = ModelSpec("resnet10", 8), TrainConfig(epochs=12, batch_size=64, lr=0.05)
    return RunConfig(
        profile="smoke",
        dataset=dataset,
        teacher=ModelSpec("resnet10", 16),
        student=student,
        teacher_training=replace(training),
        student_training=replace(training),
        retraining=RetrainConfig(epochs=4, batch_size=64, lr=0.05),
        scoring=ScoringConfig(epochs=3, batch_size=64),
        sparsities=(0.90, 0.95),
        sweep=(0.5, 0.9, 0.95),
        seeds=(0, 1),
        # teachers of about 60% and 90% beside the trained one (98%) and the dense student (95%)
        teacher_help=TeacherHelpConfig(snapshot_epochs=(3, 5), sparsity=0.95, retraining_epochs=(1, 2, 4)),
        deployment=DeploymentConfig(
            sparsities=(0.5, 0.9, 0.98), batch_sizes=(1, 32), min_run_time=0.02, layer_min_run_time=0.005
        ),
        colt=_colt(student, training, round_epochs=3, target=0.90),  # ~10 rounds to 90%
    )


# The CPU recipe (README, "The CPU recipe"): airbench94's training (Jordan 2024) as `TrainConfig` fields.
# Nesterov SGD at a high learning rate, batch 512: airbench's lr 11.5 and weight decay 0.0153 are per 1,024
# images of a summed loss with momentum 0.85; for the kit's mean loss they are lr 11.5 * 512 / (1024 *
# (1 + 1 / 0.15)) = 0.75 and weight decay 0.0153 / 11.5 = 1.33e-3. The warm-up takes 23% of the steps.
def cpu_recipe(epochs: int, kind: type[TrainConfig] = TrainConfig, **overrides) -> TrainConfig:
    """airbench's training for `epochs` epochs (no label smoothing: a teacher that distils keeps its targets),
    as a `kind` (`RetrainConfig` for a pruned network), with field overrides."""
    recipe = dict(batch_size=512, lr=0.75, momentum=0.85, weight_decay=1.33e-3, bn_bias_lr_scale=64, lookahead_every=5)
    return kind(**(recipe | {"epochs": epochs, "warmup_epochs": round(0.23 * epochs, 2)} | overrides))


def _quick(dataset: str) -> RunConfig:
    # airbench at widths 32 (teacher) and 16 (student): the teacher does 3.3x the student's FLOPs
    student, training = ModelSpec("airbench", 16), cpu_recipe(epochs=10)
    return RunConfig(
        profile="quick",
        dataset=dataset,
        teacher=ModelSpec("airbench", 32),
        student=student,
        teacher_training=replace(training),
        student_training=replace(training),
        retraining=cpu_recipe(epochs=2, kind=RetrainConfig, lr=0.4),
        augment_crop_padding=2,  # airbench's translation by up to 2 pixels
        scoring=ScoringConfig(epochs=1, batch_size=256),
        sweep=(0.5046, 0.90, 0.977, 0.9841),
        baseline_sweep=(0.90, 0.977),
        temperature_sweep=(0.9841,),
        seeds=(0, 1),
        # teachers of graded strength from the one training (epochs 1 and 7: the snapshots between them, around the
        # learning rate's peak, are all of about one strength), two seeds, three retraining lengths in fractions
        # of an epoch (a twentieth to a fifth: 4 to 17 steps), so that notebook 06 fits 20 minutes of a laptop
        teacher_help=TeacherHelpConfig(snapshot_epochs=(1, 7), retraining_epochs=(0.05, 0.1, 0.2)),
        latency_from_scratch=False,
        colt=_colt(student, training, round_epochs=1, target=0.90),  # a block holds 1/P of the images
    )


def _fast(dataset: str) -> RunConfig:
    student, training = ModelSpec("resnet18", 64), TrainConfig(epochs=15, batch_size=512, lr=0.4)
    return RunConfig(
        profile="fast",
        dataset=dataset,
        teacher=ModelSpec("resnet50", 64),
        student=student,
        teacher_training=replace(training),
        student_training=replace(training),
        retraining=RetrainConfig(epochs=4, batch_size=512, lr=0.2),
        # a GPU profile: "auto" scores in bf16 there, as it trains; bf16 forward passes keep the ranking of
        # fp32 scoring (tests/test_scorer.py holds their masks' overlap to a floor; the README gives it)
        scoring=ScoringConfig(epochs=1, batch_size=512, precision="auto"),
        sparsities=(0.90, 0.9841),
        sweep=(0.5046, 0.90, 0.977, 0.9841),
        baseline_sweep=(0.90, 0.9841),
        temperature_sweep=(0.9841,),
        latency_from_scratch=False,
        teacher_help=TeacherHelpConfig(snapshot_epochs=(2, 5, 10), retraining_epochs=(1, 2, 4), seeds=(0, 1, 2)),
        colt=_colt(student, training, round_epochs=1, target=0.977),  # one epoch a round to the paper's 97.7%
    )


def _full(dataset: str) -> RunConfig:
    student = ModelSpec("resnet18", 64)
    return RunConfig(
        profile="full",
        dataset=dataset,
        teacher=ModelSpec("resnet50", 64),
        student=student,
        teacher_training=TrainConfig(epochs=40, batch_size=512, lr=0.4),
        student_training=TrainConfig(epochs=40, batch_size=512, lr=0.4),
        retraining=RetrainConfig(epochs=15, batch_size=512, lr=0.2),
        scoring=ScoringConfig(epochs=3, batch_size=512, precision="auto"),  # bf16 on a GPU, as in `_fast`
        seeds=(0,),
        teacher_help=TeacherHelpConfig(snapshot_epochs=(5, 10, 20), retraining_epochs=(2, 5, 15), seeds=(0, 1, 2)),
        # the paper's recipe, 50 epochs a round and for the ticket: ~15 rounds, some 800 epochs of full-data work
        colt=ColtConfig(model=student, target_sparsity=0.977),
    )


PROFILES = {"smoke": _smoke, "quick": _quick, "fast": _fast, "full": _full}
DEFAULT_DATASETS = {"smoke": "digits", "quick": "cifar10", "fast": "cifar10", "full": "cifar10"}


def profile(name: str, dataset: str | None = None, **overrides) -> RunConfig:
    """The named profile's configuration for `dataset` (its default when None), with field overrides."""
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    config = PROFILES[name](dataset or DEFAULT_DATASETS[name])
    unknown = set(overrides) - {f.name for f in fields(RunConfig)}
    if unknown:
        raise InputError(f"RunConfig has no field(s) {sorted(unknown)}")
    return replace(config, **overrides)


def colt_config(profile_name: str, **overrides) -> ColtConfig:
    """COLT's settings of a profile, with field overrides, e.g. `colt_config("quick", target_sparsity=0.977)`."""
    return replace(profile(profile_name).colt, **overrides)


def lth_config(profile_name: str, **overrides) -> ColtConfig:
    """LTH with rewinding is COLT with one partition (the full data, a C-way head) and 20% per round."""
    return colt_config(profile_name, **({"partitions": 1, "prune_rate": 0.2} | overrides))
