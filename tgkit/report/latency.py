"""Latency of the one-shot method against COLT (docs/method.md section 8), as tidy tables and ratios.

Protocol: wall-clock seconds per stage, GPU-synchronised, one-off data decoding excluded, everything
measured in one process on one device:

    one-shot   teacher training, dense student, scoring, pruning, retraining   (`pipeline.Experiment`)
    COLT       every round's training, pruning and merge, and the ticket's      (`colt.run_colt`)
               training on the full data

`latency_table` puts both in one tidy table, one row per stage (per round for COLT) with what the
number includes and where it comes from: "measured now", or "run cache" when it was read from a
cached result, i.e. measured by an earlier process, perhaps on another device (the `device` column
says which). `latency_summary` gives the ratio COLT / one-shot three ways: against the one-shot KD
retraining alone (what the paper's minutes measure), and against the whole pipeline without and with
the teacher's training (COLT needs no teacher); it also says whether the comparison is honest: all
measured now, on one device. `training_policy` says what each side trains; the figures draw the
minutes per stage, and sparsity and accuracy against time, each method in its colour of
`tgkit.report.palette`. COLT's rounds have a module of their own, `tgkit.report.rounds`.

The paper's own minutes (`paper_latency`) are a separate reference table, never mixed into these;
`beside_paper` puts the two side by side, labelled, ours split so that its retraining columns are
the ones comparable with the paper's.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from tgkit.hparams import ColtConfig, RunConfig
from tgkit.report import palette, paper
from tgkit.report.rounds import rounds_table
from tgkit.util.errors import InputError

MEASURED_NOW = "measured now"
FROM_CACHE = "run cache (measured by an earlier process)"
ONE_SHOT = "one-shot"
TEACHER_STAGE = "teacher training"
RETRAINING_STAGE = "retraining"
# what the paper's one-shot minutes are: read them against our retraining columns only
PAPER_MINUTES_NOTE = (
    "The paper's one-shot minutes are its KD retraining alone (docs/method.md section 9): compare them with "
    "our retraining_minutes and ratio_retraining_only; the pipeline columns are ours only."
)

COLUMNS = ("method", "stage", "round", "seconds", "includes", "source", "device")

INCLUDES = {
    TEACHER_STAGE: "training epochs with a validation pass each and a checkpoint each, test evaluation",
    "dense student": "training epochs (KD from the teacher if configured) with a validation pass and a "
    "checkpoint each, test evaluation",
    "scoring": "loading teacher and student from the run cache, E_acc epochs of forward/backward passes "
    "accumulating the importance scores",
    "pruning": "one global threshold over the scores (masker.global_masks)",
    RETRAINING_STAGE: "sparsity-aware retraining with a validation pass and a checkpoint each epoch, saving and "
    "testing the pruned network",
    "round training": "training every block network on its classes under the shared mask, a validation pass "
    "each epoch (no checkpoints)",
    "round pruning": "magnitude scores and one global threshold per block network",
    "round merge": "AND of the block masks (trimmed to land on the target in the last round), rewinding every "
    "network to theta0",
    "ticket training": "(mask, theta0) with a fresh C-way head trained on the full data under the mask, test "
    "evaluation",
}


def _row(method: str, stage: str, seconds: float, cached: bool, device: str, round_index: int | None = None) -> dict:
    return {
        "method": method,
        "stage": stage,
        "round": round_index,
        "seconds": float(seconds),
        "includes": INCLUDES[stage],
        "source": FROM_CACHE if cached else MEASURED_NOW,
        "device": device,
    }


# --------------------------------------------------------------------------------------------------
# stage rows of each method


def one_shot_stages(
    timings: list[dict], pruned: dict, *, criterion: str = "teacher_guided", method: str = ONE_SHOT
) -> list[dict]:
    """The one-shot method's five stages from `Experiment.timings` and the `pruned_result` they led to.

    `timings` has a row per stage ({"stage", "id", "seconds", "cached", "device"}); rows of one stage
    used twice (the same seconds) count as measured now if any of them was computed.
    `pruned["seconds"]` covers pruning and retraining; `pruned["pruning_seconds"]` the pruning alone.
    """
    teacher = _stage_use(timings, "teacher")
    student = _stage_use(timings, "student")
    scoring = _stage_use(timings, f"scores-{criterion}")
    # several sparsities may have been pruned: the result's stage id (else its seconds) picks its row
    pruned_use = _stage_use(timings, "pruned", stage_id=pruned.get("stage"), seconds=pruned["seconds"])
    retraining_seconds = pruned["seconds"] - pruned["pruning_seconds"]
    return [
        _row(method, TEACHER_STAGE, teacher["seconds"], teacher["cached"], teacher["device"]),
        _row(method, "dense student", student["seconds"], student["cached"], student["device"]),
        _row(method, "scoring", scoring["seconds"], scoring["cached"], scoring["device"]),
        _row(method, "pruning", pruned["pruning_seconds"], pruned_use["cached"], pruned_use["device"]),
        _row(method, RETRAINING_STAGE, retraining_seconds, pruned_use["cached"], pruned_use["device"]),
    ]


def _stage_use(timings: list[dict], stage: str, *, stage_id: str | None = None, seconds: float | None = None) -> dict:
    """The one computation of `stage` behind the rows of `timings` (the one with `stage_id`, else with
    `seconds`, when given): its seconds, device, and whether every row read it from the cache."""

    def chosen(row: dict) -> bool:
        if stage_id is not None and "id" in row:
            return row["id"] == stage_id
        return seconds is None or row["seconds"] == seconds

    rows = [row for row in timings if row["stage"] == stage and chosen(row)]
    if not rows:
        raise InputError(
            f"no {stage!r} stage among the experiment's timings {sorted({r['stage'] for r in timings})}: "
            f"compute the pruned result with this Experiment before building the latency table."
        )
    if len({(row["seconds"], row["device"]) for row in rows}) > 1:
        raise InputError(
            f"the experiment's timings hold several {stage!r} computations (different settings); "
            f"use an Experiment that ran one configuration for the latency comparison."
        )
    return {"seconds": rows[0]["seconds"], "device": rows[0]["device"], "cached": all(row["cached"] for row in rows)}


def colt_stages(result: dict) -> list[dict]:
    """A `colt.run_colt` result's stages: training, pruning and merge of every round, then the ticket.
    Stages a round did not run (round 0 prunes nothing, the last round trains nothing) are left out."""
    method = result["method"]
    rows = []
    for record in result["rounds"]:
        for stage, key in (
            ("round training", "training_seconds"),
            ("round pruning", "pruning_seconds"),
            ("round merge", "merge_seconds"),
        ):
            if record[key] > 0:
                rows.append(_row(method, stage, record[key], record["cached"], record["device"], record["round"]))
    ticket = result["ticket"]
    rows.append(_row(method, "ticket training", ticket["seconds"], ticket["cached"], ticket["device"]))
    return rows


# --------------------------------------------------------------------------------------------------
# tables


def latency_table(*stage_lists: list[dict]) -> pd.DataFrame:
    """One tidy table of the stage rows of every method (`one_shot_stages`, `colt_stages`), in order."""
    table = pd.DataFrame([row for rows in stage_lists for row in rows], columns=list(COLUMNS))
    table["round"] = table["round"].astype("Int64")
    table["minutes"] = table["seconds"] / 60
    return table


def stage_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Seconds per method (rows) and stage (columns, in the table's order): a stacked bar chart's data,
    e.g. `stage_totals(table).plot.barh(stacked=True)`. A method without a stage has 0 there."""
    stages = list(dict.fromkeys(table["stage"]))
    methods = list(dict.fromkeys(table["method"]))
    totals = table.pivot_table(index="method", columns="stage", values="seconds", aggfunc="sum", fill_value=0.0)
    return totals.reindex(index=methods, columns=stages)


def latency_summary(table: pd.DataFrame, method: str, *, baseline: str = ONE_SHOT) -> dict:
    """Total seconds of `method` (e.g. "COLT (P=2)") and of the `baseline` one-shot method, and the ratios
    method / baseline: against the baseline's retraining alone (what the paper's minutes measure), and
    against its whole pipeline excluding and including the teacher's training.

    Also says whether the numbers are a fair comparison: `all_measured_now` (no number from the run
    cache) and `devices` (one, ideally). Warns when the methods ran on different devices.
    """
    for name in (method, baseline):
        if name not in set(table["method"]):
            raise InputError(f"no {name!r} rows in the latency table (methods: {sorted(set(table['method']))})")
    rows = table[table["method"].isin([method, baseline])]
    seconds = rows.groupby("method")["seconds"].sum()
    teacher = rows.loc[(rows["method"] == baseline) & (rows["stage"] == TEACHER_STAGE), "seconds"].sum()
    retraining = float(rows.loc[(rows["method"] == baseline) & (rows["stage"] == RETRAINING_STAGE), "seconds"].sum())
    with_teacher = float(seconds[baseline])
    without_teacher = with_teacher - float(teacher)
    devices = sorted(set(rows["device"]))
    if len(devices) > 1:
        warnings.warn(
            f"the stages ran on several devices {devices}: their ratio is not a latency comparison; "
            f"recompute the cached stages on one device (a fresh run folder).",
            stacklevel=2,
        )
    return {
        "method": method,
        "baseline": baseline,
        "method_seconds": float(seconds[method]),
        "baseline_retraining_seconds": retraining,
        "baseline_seconds_excluding_teacher": without_teacher,
        "baseline_seconds_including_teacher": with_teacher,
        "ratio_retraining_only": float(seconds[method]) / retraining if retraining else float("nan"),
        "ratio_excluding_teacher": float(seconds[method]) / without_teacher,
        "ratio_including_teacher": float(seconds[method]) / with_teacher,
        "all_measured_now": bool((rows["source"] == MEASURED_NOW).all()),
        "devices": devices,
    }


def accuracy_at_target(pruned: dict, *iterative: dict, baseline: str = ONE_SHOT) -> pd.DataFrame:
    """Test accuracy and sparsity of the one-shot `pruned` result and of each `colt.run_colt` result:
    the accuracy side of the comparison, at (as close as the methods land to) the same sparsity."""
    rows = [
        {
            "method": baseline,
            "sparsity_all": pruned["sparsity_all"],
            "sparsity_prunable": pruned["sparsity_prunable"],
            "test_accuracy": pruned["test_accuracy"],
        }
    ]
    for result in iterative:
        ticket = result["ticket"]
        rows.append(
            {
                "method": result["method"],
                "sparsity_all": ticket["sparsity_all"],
                "sparsity_prunable": ticket["sparsity_prunable"],
                "test_accuracy": ticket["test_accuracy"],
            }
        )
    return pd.DataFrame(rows)


def per_stage(table: pd.DataFrame) -> pd.DataFrame:
    """One row per method and stage of a `latency_table` (COLT's rounds added up): how many rows it sums,
    the seconds, what they include, where they come from and on which device."""
    return (
        table.groupby(["method", "stage"], sort=False)
        .agg(
            rows=("seconds", "size"),
            seconds=("seconds", "sum"),
            includes=("includes", "first"),
            source=("source", lambda s: " + ".join(sorted(set(s)))),
            device=("device", lambda d: " + ".join(sorted(set(d)))),
        )
        .reset_index()
    )


def training_policy(config: RunConfig, iterative: list[ColtConfig], images: int) -> pd.DataFrame:
    """What each side trains, with which budget: one row per stage of the one-shot method and of every
    iterative baseline (epochs, batch size, lr, schedule, a note); a latency comparison means little
    without it. `images`: training images per epoch."""

    def row(method: str, stage: str, training, note: str) -> dict:
        # scoring takes no optimizer step, so it has no learning rate or schedule
        return {
            "method": method,
            "stage": stage,
            "epochs": training.epochs,
            "batch_size": training.batch_size,
            "lr": getattr(training, "lr", "-"),
            "schedule": getattr(training, "schedule", "-"),
            "note": note,
        }

    teacher = f"{config.teacher.arch} w{config.teacher.width}, {images} images/epoch"
    student = f"{config.student.arch} w{config.student.width}, {'KD from the teacher' if config.student_kd else 'CE'}"
    rows = [
        row(ONE_SHOT, TEACHER_STAGE, config.teacher_training, teacher),
        row(ONE_SHOT, "dense student", config.student_training, student),
        row(ONE_SHOT, "scoring", config.scoring, "forward/backward passes only, no optimizer step"),
        row(ONE_SHOT, "retraining", config.retraining, f"KD at T={config.kd.temperature:g}, once"),
    ]
    for settings in iterative:
        rows += [
            row(
                settings.method,
                "round training",
                settings.round_training,
                f"every round; {settings.partitions} network(s), {images} images/epoch together",
            ),
            row(settings.method, "ticket training", settings.final_training, f"once, {images} images/epoch"),
        ]
    return pd.DataFrame(rows)


BESIDE_PAPER_COLUMNS = [
    "who",
    "dataset",
    "sparsity_all",
    "retraining_minutes",
    "colt_minutes",
    "ratio_retraining_only",
    "pipeline_minutes_excluding_teacher",
    "ratio_excluding_teacher",
    "pipeline_minutes_including_teacher",
    "ratio_including_teacher",
    "device",
]


def beside_paper(summary: dict, pruned: dict, *, dataset: str, profile: str, device: str) -> pd.DataFrame:
    """The paper's minutes (`paper_latency`) and ours (a `latency_summary` of COLT against one-shot, and
    the one-shot `pruned` result) in one table, a row each, "who" saying whose (`BESIDE_PAPER_COLUMNS`).

    The paper's one-shot minutes are its KD retraining alone, so they stand under retraining_minutes
    and ratio_retraining_only, beside our retraining; the pipeline columns (without and with the
    teacher's training) are ours only. `attrs["note"]` says so (`PAPER_MINUTES_NOTE`)."""
    theirs = paper_latency()
    theirs = theirs.assign(
        who="paper (theirs)",
        device="the authors' hardware",
        retraining_minutes=theirs["one_shot_minutes"],
        ratio_retraining_only=theirs["ratio"],
    )
    ours = {
        "who": "ours",
        "dataset": f"{dataset} ({profile} profile)",
        "sparsity_all": pruned["sparsity_all"],
        "retraining_minutes": summary["baseline_retraining_seconds"] / 60,
        "colt_minutes": summary["method_seconds"] / 60,
        "ratio_retraining_only": summary["ratio_retraining_only"],
        "pipeline_minutes_excluding_teacher": summary["baseline_seconds_excluding_teacher"] / 60,
        "ratio_excluding_teacher": summary["ratio_excluding_teacher"],
        "pipeline_minutes_including_teacher": summary["baseline_seconds_including_teacher"] / 60,
        "ratio_including_teacher": summary["ratio_including_teacher"],
        "device": device,
    }
    table = pd.concat([theirs, pd.DataFrame([ours])], ignore_index=True).reindex(columns=BESIDE_PAPER_COLUMNS)
    table.attrs["source"] = paper.LATENCY_SOURCE
    table.attrs["note"] = PAPER_MINUTES_NOTE
    return table


# --------------------------------------------------------------------------------------------------
# figures: each method in its palette colour (one-shot is teacher-guided pruning)


# the colour of a method of these tables: "one-shot" is teacher-guided pruning's, "COLT (P=2)" COLT's
method_color = palette.color


def _shades(color: str, count: int) -> list[tuple[float, float, float]]:
    """`count` shades of `color`, from light (mixed with white) to the colour itself: one per stage."""
    rgb = np.array(to_rgb(color))
    return [tuple(1 - (1 - rgb) * share) for share in np.linspace(0.3, 1.0, count)]


def takeaway(summary: dict, accuracy: pd.DataFrame) -> str:
    """The time plot's title, from the numbers: e.g. "COLT (P=2) took 3.1x one-shot's KD retraining,
    1.6x its pipeline without the teacher, 0.8x with it; test accuracy 48.6% against 53.6%"."""
    by_method = accuracy.set_index("method")["test_accuracy"]
    return (
        f"{summary['method']} took {summary['ratio_retraining_only']:.1f}x one-shot's KD retraining, "
        f"{summary['ratio_excluding_teacher']:.1f}x its pipeline without the teacher, "
        f"{summary['ratio_including_teacher']:.1f}x with it; test accuracy "
        f"{by_method[summary['method']]:.1%} against {by_method[summary['baseline']]:.1%}"
    )


def plot_wall_clock(table: pd.DataFrame, accuracy: pd.DataFrame | None = None, *, title: str = "") -> Figure:
    """One bar per method, one segment per stage (`stage_totals`), in minutes; the segments in shades of
    the method's palette colour, light to dark in the order of the stages. With `accuracy` (an
    `accuracy_at_target` table) each bar ends with its total minutes and test accuracy."""
    totals = stage_totals(table) / 60
    figure, axes = plt.subplots(figsize=(9, 1.4 + 0.9 * len(totals)))
    handles = []
    for row, (method, minutes) in enumerate(totals.iterrows()):
        stages = minutes[minutes > 0]
        left = 0.0
        for stage, width, shade in zip(stages.index, stages, _shades(method_color(method), len(stages))):
            axes.barh(row, width, left=left, height=0.6, color=shade, edgecolor="white")
            handles.append(Patch(facecolor=shade, label=f"{method}: {stage}"))
            left += width
        label = f" {left:.2f} min"
        if accuracy is not None and method in set(accuracy["method"]):
            label += f", {accuracy.set_index('method').loc[method, 'test_accuracy']:.1%} test accuracy"
        axes.text(left, row, label, va="center", fontsize="small")
    axes.set_yticks(range(len(totals)), totals.index)
    axes.invert_yaxis()
    axes.set_xlim(0, totals.sum(axis=1).max() * 1.45)  # room for the labels at the ends of the bars
    axes.set(xlabel="wall-clock (minutes)", ylabel="", title=title)
    axes.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    axes.grid(alpha=0.3, axis="x")
    return figure


def plot_sparsity_vs_time(iterative: list[dict], summaries: list[dict], pruned: dict, *, title: str = "") -> Figure:
    """Left: each iterative run's sparsity after every round against the cumulative minutes (its ticket's
    training the dashed last segment), and the one-shot method as three points: its KD retraining alone
    (what the paper's minutes measure), its pipeline without and with the teacher's training (from the
    first of `summaries`, the `latency_summary` of each run). Right: test accuracy against the same
    minutes, so that time is never read without accuracy."""
    figure, (axes, right) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=(3, 2))
    for result, summary in zip(iterative, summaries):
        color = method_color(result["method"])
        steps = rounds_table(result)
        minutes = [0.0, *(steps["cumulative_seconds"] / 60)]
        sparsity = [0.0, *steps["sparsity_all"]]
        axes.plot(minutes, sparsity, marker="o", markersize=4, color=color, label=f"{result['method']}: rounds")
        total = summary["method_seconds"] / 60
        axes.plot(
            [minutes[-1], total], [sparsity[-1]] * 2, "--s", color=color, label=f"{result['method']}: ticket training"
        )
        right.scatter(
            [total], [result["ticket"]["test_accuracy"]], color=color, marker="s", s=60, label=result["method"]
        )
    one_shot = summaries[0]
    color = method_color(ONE_SHOT)
    points = (
        ("one-shot: KD retraining alone", one_shot["baseline_retraining_seconds"], "D", "none"),
        ("one-shot: without the teacher's training", one_shot["baseline_seconds_excluding_teacher"], "*", color),
        ("one-shot: with the teacher's training", one_shot["baseline_seconds_including_teacher"], "*", "none"),
    )
    for label, seconds, marker, face in points:
        style = {"marker": marker, "s": 160 if marker == "*" else 60, "facecolors": face, "edgecolors": color}
        for target, y in ((axes, pruned["sparsity_all"]), (right, pruned["test_accuracy"])):
            target.scatter([seconds / 60], [y], zorder=3, label=label, **style)
    axes.set(xlabel="cumulative wall-clock (minutes)", ylabel="sparsity over all weights", ylim=(0, 1.02), title=title)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="lower right")
    right.set(xlabel="wall-clock (minutes)", ylabel="test accuracy", title="accuracy at that sparsity")
    right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    right.grid(alpha=0.3)
    right.legend(fontsize="x-small", loc="best")
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------------------------------
# the paper's numbers: a reference, not a measurement


def paper_latency() -> pd.DataFrame:
    """The paper's reported minutes, one-shot against COLT, with their ratio (`paper.latency`);
    `attrs["source"]` names the source. A reference for the shape of the result, not comparable with our seconds."""
    return paper.latency()
