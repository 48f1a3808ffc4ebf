"""What a profile costs: the images every stage of the notebook batch processes, and the seconds that
makes at a given throughput.

    rates = throughput.run_bench(...).iloc[0]      images/s measured on this device (`bench.throughput`)
    plan = stage_plan(hparams.profile("fast"), rates)
    plan["seconds"].sum()                          the batch's planned compute time

A plan is arithmetic, not a measurement: images per stage (epochs x images per epoch, read from the
profile) divided by the benchmark's images/s for that kind of step, measured on the profile's networks
and image size. It leaves out what the benchmark
does not time (kernel start-up, decoding the data, writing figures); `NOTEBOOK_OVERHEAD_S` stands in
for that, an assumption, per notebook. `python -m tgkit.bench --plan fast` prints it beside the
benchmark; with `--scale-to-dense-img-s N` every measured rate is multiplied by N / (measured dense
rate), which turns a CPU benchmark into a labelled plan for a faster device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from tgkit.hparams import ColtConfig, RunConfig
from tgkit.study import sweep
from tgkit.util.errors import InputError

# Official (train, test) sizes and the image shape (C, H, W) of the copies the kit uses (TinyImageNet at
# 32 px): the benchmark needs no data, so the plan reads them from here.
DATASET_SHAPES = {
    "cifar10": (50_000, 10_000, (3, 32, 32)),
    "cifar100": (50_000, 10_000, (3, 32, 32)),
    "tinyimagenet": (100_000, 10_000, (3, 32, 32)),
    "digits": (1_438, 359, (1, 8, 8)),
}
# Kernel start, imports, reading the decoded data, drawing and saving figures: not timed by the
# benchmark. An assumption, stated wherever a plan is printed.
NOTEBOOK_OVERHEAD_S = 10.0
COLUMNS = ("notebook", "stage", "images", "rate", "img_s", "seconds")


def _shape(config: RunConfig) -> tuple[int, int, tuple[int, int, int]]:
    if config.dataset not in DATASET_SHAPES:
        raise InputError(f"no known size for dataset {config.dataset!r}; known: {', '.join(DATASET_SHAPES)}")
    return DATASET_SHAPES[config.dataset]


def image_shape(config: RunConfig) -> tuple[int, int, int]:
    """(C, H, W) of the profile's images: what the benchmark should measure for a plan."""
    return _shape(config)[2]


def split_sizes(config: RunConfig) -> tuple[int, int, int]:
    """(train, val, test) images of the profile's dataset after its subset and validation split."""
    official_train, official_test, _ = _shape(config)
    train = config.train_subset or official_train
    test = config.test_subset or official_test
    val = math.floor(config.val_fraction * train + 0.5)
    return train - val, val, test


def colt_rounds_at_most(config: ColtConfig) -> int:
    """Rounds to the target if every round removed only `prune_rate` (the networks agree on every
    weight): an upper bound, since disagreement removes more per round. (The target counts all
    weights; ResNets hold almost all of theirs in the pruned convolutions.)"""
    remaining = 1 - config.target_sparsity
    return 1 + math.ceil(math.log(remaining) / math.log(1 - config.prune_rate))


def stage_plan(config: RunConfig, rates: Mapping[str, float]) -> pd.DataFrame:
    """One row per stage of notebooks 01-04: images processed, the benchmark rate used, seconds.

    `rates` holds the benchmark's images/s: teacher_img_s (teacher training step), kd_img_s
    (student step with the teacher's forward pass: the dense student's KD training and KD
    retraining), masked_img_s (a masked student step: CE retraining, COLT), eval_img_s and
    teacher_eval_img_s, and score_s_per_50k (teacher-guided scoring). SNIP is planned at the
    teacher-guided rate, an upper bound (it skips the teacher).
    """
    train, val, test = split_sizes(config)
    rows = []

    def add(notebook: str, stage: str, images: float, rate: str, img_s: float) -> None:
        rows.append(
            {
                "notebook": notebook,
                "stage": stage,
                "images": int(images),
                "rate": rate,
                "img_s": img_s,
                "seconds": images / img_s,
            }
        )

    def training(notebook, stage, epochs, step_rate, evaluated_by="eval_img_s", runs=1):
        add(notebook, stage, runs * epochs * train, step_rate, rates[step_rate])
        add(notebook, f"{stage}: validation and test", runs * (epochs * val + test), evaluated_by, rates[evaluated_by])

    score_img_s = 50_000 / rates["score_s_per_50k"]
    one_shot = [
        ("01", "teacher", config.teacher_training.epochs, "teacher_img_s", "teacher_eval_img_s"),
        (
            "01",
            "dense student",
            config.student_training.epochs,
            "kd_img_s" if config.student_kd else "masked_img_s",
            "eval_img_s",
        ),
    ]
    for notebook, stage, epochs, step_rate, eval_rate in one_shot:
        training(notebook, stage, epochs, step_rate, eval_rate)
    add("02", "teacher-guided scores", config.scoring.epochs * train, "score_s_per_50k", score_img_s)
    add("02", "SNIP scores", train, "score_s_per_50k", score_img_s)

    runs = sweep.plan(config)  # the sweep's own plan: the runs notebook 03 makes
    kd_runs = sum(run.kd for run in runs)
    training("03", f"retraining with KD ({kd_runs} runs)", config.retraining.epochs, "kd_img_s", runs=kd_runs)
    training(
        "03",
        f"retraining without KD ({len(runs) - kd_runs} runs)",
        config.retraining.epochs,
        "masked_img_s",
        runs=len(runs) - kd_runs,
    )

    settings = config.colt
    rounds = colt_rounds_at_most(settings)
    # every round but the last trains the block networks; together they see the training split once an epoch
    training("04", f"COLT rounds (at most {rounds})", (rounds - 1) * settings.round_training.epochs, "masked_img_s")
    training("04", "COLT ticket", settings.final_training.epochs, "masked_img_s")
    if config.latency_from_scratch:
        for _, stage, epochs, step_rate, eval_rate in one_shot:
            training("04", f"{stage} (again, for the clock)", epochs, step_rate, eval_rate)
        add("04", "teacher-guided scores (again)", config.scoring.epochs * train, "score_s_per_50k", score_img_s)
        training("04", "retraining with KD (again)", config.retraining.epochs, "kd_img_s")
    for notebook in ("01", "02", "03", "04"):
        rows.append(
            {
                "notebook": notebook,
                "stage": "overhead (assumed)",
                "images": 0,
                "rate": "assumed",
                "img_s": math.nan,
                "seconds": NOTEBOOK_OVERHEAD_S,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def per_notebook(plan: pd.DataFrame) -> pd.Series:
    """Planned seconds per notebook, and the total."""
    seconds = plan.groupby("notebook")["seconds"].sum()
    return pd.concat([seconds, pd.Series({"total": seconds.sum()})])


def format_plan(plan: pd.DataFrame, *, scaled_to: float | None = None) -> str:
    """The plan of `stage_plan` as a table with a total per notebook, labelled as a plan."""
    how = (
        f"every rate scaled by the same factor so that dense training runs at {scaled_to:,.0f} images/s"
        if scaled_to
        else "the rates measured above"
    )
    lines = [
        f"PLAN (arithmetic, not a measurement): images per stage / {how}; "
        f"{NOTEBOOK_OVERHEAD_S:.0f} s per notebook assumed for start-up and figures"
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
    lines.append(
        "planned seconds per notebook: " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in totals.items())
    )
    return "\n".join(lines)
