"""What a device command costs: every step of `scripts/gpu_run.sh` and of the notebooks it runs, and the
seconds that makes at a given throughput. A plan, not a measurement.

    rates = throughput.run_bench(...).iloc[0]          images/s measured on this device (`bench.throughput`)
    plan = stage_plan(hparams.profile("fast"), rates, device_type="cuda")
    per_notebook(plan)                                 seconds of the command's steps, of each notebook, in all

Three kinds of row, in the command's order:

    fixed    the command around the notebooks: describing the node, installing the bundle, extracting
             the data, a short benchmark, packing each notebook's archive
    device   the notebooks' training, scoring and evaluation: images / the benchmark's images/s for that
             kind of step, measured on the profile's networks and image size
    host     what stays on the CPU and the disk however fast the GPU is: a kernel's start and imports,
             decoding the data, the masks (a kthvalue over every score), resume checkpoints, figures

A device row is arithmetic on measured rates; a fixed or host row is a cost measured once on a CPU and
written below with the machine it was measured on, or an assumption, and says which in its `source`.
`python -m tgkit.bench --plan fast` prints the plan beside the benchmark; with `--scale-to-dense-img-s N`
every measured rate is multiplied by N / (measured dense rate), which turns a CPU benchmark into a
labelled plan for a faster device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import torch

from tgkit import masker, models
from tgkit.bench.throughput import DEVICE_DEFAULTS
from tgkit.hparams import ModelSpec, RunConfig
from tgkit.study import sweep
from tgkit.study.pipeline import CHECKPOINT_EVERY_S
from tgkit.study.snapshots import kept_epochs
from tgkit.util.errors import InputError

# Official (train, test) sizes and the image shape (C, H, W) of the copies the kit uses (TinyImageNet at
# 32 px): the benchmark needs no data, so the plan reads them from here.
DATASET_SHAPES = {
    "cifar10": (50_000, 10_000, (3, 32, 32), 10),
    "cifar100": (50_000, 10_000, (3, 32, 32), 100),
    "tinyimagenet": (100_000, 10_000, (3, 32, 32), 200),
    "digits": (1_438, 359, (1, 8, 8), 10),
}
MEASURED = "measured on a 2-core Xeon (AMX), 2026-12-02"
# The command around the notebooks (scripts/gpu_run.sh), seconds. The install and the extract were
# measured by `make gpu-dry-run` (a 35 MiB bundle, CIFAR-10's 19 MB archive); the node's description
# (nvidia-smi, torch's import) and the benchmark's start (CUDA context, cuDNN) are assumptions.
COMMAND_S = {"node description": (5.0, "assumed"), "bundle install": (5.0, MEASURED), "data extract": (1.0, MEASURED)}
BENCH_START_S = 10.0
BENCH_ROUNDS = 3  # BenchConfig's default: warm-up, then three timed rounds of each kind of step
PACK_S = 2.0  # one notebook's archive (figures, tables, executed copy): assumed, a few MB of gzip
# Host costs per unit, measured once (MEASURED) unless marked assumed.
KERNEL_START_S = 6.0  # a kernel's start (about 2 s, assumed) and its first cell's imports (3.8 s, measured)
BATCH_START_S = 3.3  # the `python -m tgkit batch` process that gpu_run.sh starts for each notebook (imports)
FIGURE_S = 0.3  # report.save_figure of a two-panel figure, PNG and PDF
DECODE_IMAGES_PER_S = 5_000.0  # JPEG decoding into the uint8 cache: 60,000 CIFAR-10 images in 12 s on 2 cores
CACHE_READ_S = 1.0  # a later notebook reading the decoded cache
CHECKPOINT_BYTES_PER_S = 1.0e9  # torch.save + fsync of a resume checkpoint: 134 MB in 0.13 s
MASK_S_PER_MILLION = 0.02  # masker.global_masks (kthvalue) on the CPU: 11.2 M scores in 0.21 s, 2 threads
# Figures each notebook saves (tests/test_batch.py lists them).
FIGURES = {"01": 2, "02": 6, "03": 2, "04": 3}
# Notebook 02's extra work: exercise 1 scores one epoch at a chosen EMA momentum (uncached); the explorer
# scores teacher-guided at EXPLORER_SCORINGS loss settings (alpha 0 and 1, beta 0 and 1: its VARIANTS); the
# layer sensitivity evaluates the validation split once per prunable layer and level of its LEVELS, an upper
# bound (it shares each batch's forward pass up to the pruned layer). tests/test_budget.py reads both counts
# from the notebook.
EXPLORER_SCORINGS = 4
SENSITIVITY_LEVELS = 6
COLUMNS = ("notebook", "stage", "kind", "images", "rate", "img_s", "seconds", "source")


def _shape(config: RunConfig) -> tuple[int, int, tuple[int, int, int], int]:
    if config.dataset not in DATASET_SHAPES:
        raise InputError(
            f"a plan needs its dataset's size, known for {', '.join(DATASET_SHAPES)} only, not {config.dataset!r}; "
            f"plan one of them (python -m tgkit.bench --plan-dataset)"
        )
    return DATASET_SHAPES[config.dataset]


def image_shape(config: RunConfig) -> tuple[int, int, int]:
    """(C, H, W) of the profile's images: what the benchmark should measure for a plan."""
    return _shape(config)[2]


def split_sizes(config: RunConfig) -> tuple[int, int, int]:
    """(train, val, test) images of the profile's dataset after its subset and validation split."""
    official_train, official_test, _, _ = _shape(config)
    train = config.train_subset or official_train
    test = config.test_subset or official_test
    val = math.floor(config.val_fraction * train + 0.5)
    return train - val, val, test


def colt_rounds_at_most(config) -> int:
    """Rounds to the target if every round removed only `prune_rate` (the networks agree on every
    weight): an upper bound, since disagreement removes more per round. (The target counts all
    weights; ResNets hold almost all of theirs in the pruned convolutions.)"""
    remaining = 1 - config.target_sparsity
    return 1 + math.ceil(math.log(remaining) / math.log(1 - config.prune_rate))


def _meta_network(config: RunConfig, spec: ModelSpec) -> torch.nn.Module:
    """`spec` built for the profile's dataset on the meta device: shapes without memory."""
    _, _, shape, classes = _shape(config)
    with torch.device("meta"):
        return models.build_model(spec.arch, classes, in_channels=shape[0], width=spec.width)


def network_sizes(config: RunConfig, spec: ModelSpec) -> tuple[int, int]:
    """(all parameters, prunable weights) of `spec` for the profile's dataset."""
    model = _meta_network(config, spec)
    prunable = sum(param.numel() for param in masker.prunable_parameters(model).values())
    return sum(param.numel() for param in model.parameters()), prunable


def prunable_layers(config: RunConfig, spec: ModelSpec) -> int:
    """How many prunable weight tensors (layers) `spec` has."""
    return len(masker.prunable_parameters(_meta_network(config, spec)))


def stage_plan(config: RunConfig, rates: Mapping[str, float], *, device_type: str = "cuda") -> pd.DataFrame:
    """One row per step of the device command for notebooks 01-04 (see the module docstring).

    `rates` holds the benchmark's images/s: teacher_img_s (teacher training step), kd_img_s (student
    step with the teacher's forward pass: the dense student's KD training and KD retraining),
    masked_img_s (a masked student step: CE retraining, COLT), eval_img_s and teacher_eval_img_s, and
    score_s_per_50k (teacher-guided scoring); dense_img_s too, for the benchmark's own cost. SNIP is
    planned at the teacher-guided rate, an upper bound (it skips the teacher). `device_type` decides
    how often training writes a resume checkpoint (`pipeline.CHECKPOINT_EVERY_S`).
    """
    train, val, test = split_sizes(config)
    student_params, student_prunable = network_sizes(config, config.student)
    teacher_params, _ = network_sizes(config, config.teacher)
    every_s = CHECKPOINT_EVERY_S.get(device_type, 0.0)
    rows = []

    def add(notebook, stage, kind, seconds, source, images=0, rate="", img_s=math.nan):
        rows.append(dict(zip(COLUMNS, (notebook, stage, kind, int(images), rate, img_s, seconds, source))))

    def steps(notebook, stage, images, rate):
        img_s = 50_000 / rates[rate] if rate == "score_s_per_50k" else rates[rate]
        add(notebook, stage, "device", images / img_s, "benchmark", images, rate, img_s)

    def checkpoints(notebook, stage, count, bytes_each):
        if count:
            add(
                notebook,
                f"{stage}: {count} checkpoint(s)",
                "host",
                count * bytes_each / CHECKPOINT_BYTES_PER_S,
                MEASURED,
            )

    def training(notebook, stage, epochs, rate, eval_rate="eval_img_s", runs=1, params=student_params):
        steps(notebook, stage, runs * epochs * train, rate)
        steps(notebook, f"{stage}: validation and test", runs * (epochs * val + test), eval_rate)
        per_run = epochs if every_s == 0 else math.floor(epochs * train / rates[rate] / every_s)
        # a resume checkpoint holds the network, its optimizer's momentum and the best weights, fp32
        checkpoints(notebook, stage, runs * per_run, 3 * 4 * params)

    def masks(notebook, count):
        add(notebook, f"{count} global masks", "host", count * student_prunable / 1e6 * MASK_S_PER_MILLION, MEASURED)

    for name, (seconds, source) in COMMAND_S.items():
        add("command", name, "fixed", seconds, source)
    bench = DEVICE_DEFAULTS["cuda" if device_type == "cuda" else "cpu"]
    bench_images = (bench["warmup"] + BENCH_ROUNDS * bench["steps"]) * config.student_training.batch_size
    bench_seconds = BENCH_START_S + bench["steps"] * config.student_training.batch_size * rates["score_s_per_50k"] / 5e4
    bench_seconds += sum(
        bench_images / rates[rate] for rate in ("teacher_img_s", "dense_img_s", "masked_img_s", "kd_img_s")
    )
    add("command", "benchmark: its start (assumed) and its steps", "fixed", bench_seconds, "benchmark")

    add("01", "batch process, kernel start, imports", "host", BATCH_START_S + KERNEL_START_S, MEASURED)
    add("01", "decoding the data", "host", sum(_shape(config)[:2]) / DECODE_IMAGES_PER_S, MEASURED)
    student_rate = "kd_img_s" if config.student_kd else "masked_img_s"
    one_shot = [
        ("teacher", config.teacher_training.epochs, "teacher_img_s", "teacher_eval_img_s", teacher_params),
        ("dense student", config.student_training.epochs, student_rate, "eval_img_s", student_params),
    ]
    for stage, epochs, rate, eval_rate, params in one_shot:
        training("01", stage, epochs, rate, eval_rate, params=params)
    snapshots = kept_epochs(config)
    if snapshots:
        steps(
            "01",
            f"teacher snapshots ({len(snapshots)}): validation and test",
            len(snapshots) * (val + test),
            "teacher_eval_img_s",
        )
        checkpoints("01", "teacher snapshots", len(snapshots), 4 * teacher_params)
    for notebook in ("02", "03", "04"):
        start = BATCH_START_S + KERNEL_START_S + CACHE_READ_S
        add(notebook, "batch process, kernel start, imports, the decoded data", "host", start, MEASURED)

    steps("02", "teacher-guided scores", config.scoring.epochs * train, "score_s_per_50k")
    steps("02", "SNIP scores", train, "score_s_per_50k")
    steps("02", "exercise 1: teacher-guided scores, one epoch", train, "score_s_per_50k")
    explorer = EXPLORER_SCORINGS * config.scoring.epochs * train
    steps(
        "02", f"the explorer: teacher-guided scores at {EXPLORER_SCORINGS} loss settings", explorer, "score_s_per_50k"
    )
    levels = SENSITIVITY_LEVELS * prunable_layers(config, config.student)
    steps("02", f"layer sensitivity: {levels} layer-levels, validation", levels * val, "eval_img_s")
    masks("02", 3 + 1 + EXPLORER_SCORINGS)  # each criterion's, exercise 1's, the explorer's

    runs = sweep.plan(config)  # the sweep's own plan: the runs notebook 03 makes
    kd_runs = sum(run.kd for run in runs)
    training("03", f"retraining with KD ({kd_runs} runs)", config.retraining.epochs, "kd_img_s", runs=kd_runs)
    ce_runs = len(runs) - kd_runs
    training("03", f"retraining without KD ({ce_runs} runs)", config.retraining.epochs, "masked_img_s", runs=ce_runs)
    masks("03", len(runs))

    settings = config.colt
    rounds = colt_rounds_at_most(settings)
    # every round but the last trains the block networks; together they see the training split once an epoch
    steps(
        "04", f"COLT rounds (at most {rounds})", (rounds - 1) * settings.round_training.epochs * train, "masked_img_s"
    )
    steps("04", "COLT rounds: validation", (rounds - 1) * settings.round_training.epochs * val, "eval_img_s")
    checkpoints("04", "COLT rounds", rounds, settings.partitions * 4 * student_params)  # a round's networks
    masks("04", 2 * rounds)  # each round: every block network's, and their intersection
    training("04", "COLT ticket", settings.final_training.epochs, "masked_img_s")
    if config.latency_from_scratch:
        for stage, epochs, rate, eval_rate, params in one_shot:
            training("04", f"{stage} (again, for the clock)", epochs, rate, eval_rate, params=params)
        steps("04", "teacher-guided scores (again)", config.scoring.epochs * train, "score_s_per_50k")
        training("04", "retraining with KD (again)", config.retraining.epochs, "kd_img_s")
        masks("04", 1)
    for notebook, count in FIGURES.items():
        add(notebook, f"{count} figures", "host", count * FIGURE_S, MEASURED)
        add(notebook, "packing its archive", "fixed", PACK_S, "assumed")
    order = {"command": 0, "01": 1, "02": 2, "03": 3, "04": 4}
    plan = pd.DataFrame(rows, columns=list(COLUMNS))
    return plan.sort_values("notebook", key=lambda column: column.map(order), kind="stable", ignore_index=True)


def per_notebook(plan: pd.DataFrame) -> pd.Series:
    """Planned seconds of the command's own steps and of each notebook, and the total."""
    seconds = plan.groupby("notebook", sort=False)["seconds"].sum()
    return pd.concat([seconds, pd.Series({"total": seconds.sum()})])


def per_kind(plan: pd.DataFrame) -> pd.Series:
    """Planned seconds of the device's steps, of the host's work and of the fixed steps."""
    return plan.groupby("kind", sort=False)["seconds"].sum()


def format_plan(plan: pd.DataFrame, *, scaled_to: float | None = None) -> str:
    """The plan of `stage_plan` as a table with totals per notebook and per kind, labelled as a plan."""
    how = (
        f"every rate scaled by the same factor so that dense training runs at {scaled_to:,.0f} images/s"
        if scaled_to
        else "the rates measured above"
    )
    lines = [
        f"PLAN (arithmetic, not a measurement): device rows are images / {how}; host and fixed rows are costs "
        f"measured once on a CPU, or assumed, as their source says"
    ]
    shown = plan.assign(minutes=plan["seconds"] / 60)
    lines.append(
        shown.to_string(
            index=False,
            formatters={
                "img_s": "{:,.0f}".format,
                "seconds": "{:.1f}".format,
                "minutes": "{:.2f}".format,
                "images": "{:,}".format,
            },
        )
    )
    totals = per_notebook(plan)
    lines.append("planned seconds: " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in totals.items()))
    lines.append("by kind: " + ", ".join(f"{kind} {seconds:.0f}" for kind, seconds in per_kind(plan).items()))
    return "\n".join(lines)
