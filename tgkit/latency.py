"""Latency of the one-shot method against COLT (method.md section 8), as tidy tables and ratios.

Protocol: wall-clock seconds per stage, GPU-synchronised, one-off data decoding excluded, everything
measured in one process on one device:

    one-shot   teacher training, dense student, scoring, pruning, retraining   (`pipeline.Experiment`)
    COLT       every round's training, pruning and merge, and the ticket's      (`colt.run_colt`)
               training on the full data

`latency_table` puts both in one tidy table, one row per stage (per round for COLT) with what the
number includes and where it comes from: "measured now", or "run cache" when it was read from a
cached result, i.e. measured by an earlier process, perhaps on another device (the `device` column
says which). `latency_summary` gives the ratio COLT / one-shot with and without the teacher's training
(COLT needs no teacher) and says whether the comparison is honest: all measured now, on one device.

The paper's own minutes (`paper_latency`) are a separate reference table, never mixed into these.
"""
from __future__ import annotations

import warnings

import pandas as pd

from tgkit import paper

MEASURED_NOW = "measured now"
FROM_CACHE = "run cache (measured by an earlier process)"
ONE_SHOT = "one-shot"
TEACHER_STAGE = "teacher training"

COLUMNS = ("method", "stage", "round", "seconds", "includes", "source", "device")

INCLUDES = {
    TEACHER_STAGE: "training epochs with a validation pass each and a checkpoint each, test evaluation",
    "dense student": "training epochs (KD from the teacher if configured) with a validation pass and a "
                     "checkpoint each, test evaluation",
    "scoring": "loading teacher and student from the run cache, E_acc epochs of forward/backward passes "
               "accumulating the importance scores",
    "pruning": "one global threshold over the scores (masker.global_masks)",
    "retraining": "sparsity-aware retraining with a validation pass and a checkpoint each epoch, saving and "
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
    return {"method": method, "stage": stage, "round": round_index, "seconds": float(seconds),
            "includes": INCLUDES[stage], "source": FROM_CACHE if cached else MEASURED_NOW, "device": device}


# --------------------------------------------------------------------------------------------------
# stage rows of each method


def one_shot_stages(timings: list[dict], pruned: dict, *, criterion: str = "teacher_guided",
                    method: str = ONE_SHOT) -> list[dict]:
    """The one-shot method's five stages from `Experiment.timings` and the `pruned_result` they led to.

    `timings` has a row per stage use ({"stage", "seconds", "cached", "device"}); a stage used twice
    has two rows with the same seconds, and counts as measured now if any of them was computed.
    `pruned["seconds"]` covers pruning and retraining; `pruned["pruning_seconds"]` the pruning alone.
    """
    teacher = _stage_use(timings, "teacher")
    student = _stage_use(timings, "student")
    scoring = _stage_use(timings, f"scores-{criterion}")
    # several sparsities may have been pruned: the seconds, stored with the result, pick its row
    pruned_use = _stage_use(timings, "pruned", seconds=pruned["seconds"])
    retraining_seconds = pruned["seconds"] - pruned["pruning_seconds"]
    return [
        _row(method, TEACHER_STAGE, teacher["seconds"], teacher["cached"], teacher["device"]),
        _row(method, "dense student", student["seconds"], student["cached"], student["device"]),
        _row(method, "scoring", scoring["seconds"], scoring["cached"], scoring["device"]),
        _row(method, "pruning", pruned["pruning_seconds"], pruned_use["cached"], pruned_use["device"]),
        _row(method, "retraining", retraining_seconds, pruned_use["cached"], pruned_use["device"]),
    ]


def _stage_use(timings: list[dict], stage: str, seconds: float | None = None) -> dict:
    """The one computation of `stage` behind the rows of `timings`: its seconds, device, and whether
    every row read it from the cache."""
    rows = [row for row in timings if row["stage"] == stage and (seconds is None or row["seconds"] == seconds)]
    if not rows:
        raise ValueError(f"no {stage!r} stage among the experiment's timings {sorted({r['stage'] for r in timings})}: "
                         f"compute the pruned result with this Experiment before building the latency table.")
    if len({(row["seconds"], row["device"]) for row in rows}) > 1:
        raise ValueError(f"the experiment's timings hold several {stage!r} computations (different settings); "
                         f"use an Experiment that ran one configuration for the latency comparison.")
    return {"seconds": rows[0]["seconds"], "device": rows[0]["device"], "cached": all(row["cached"] for row in rows)}


def colt_stages(result: dict) -> list[dict]:
    """A `colt.run_colt` result's stages: training, pruning and merge of every round, then the ticket.
    Stages a round did not run (round 0 prunes nothing, the last round trains nothing) are left out."""
    method = result["method"]
    rows = []
    for record in result["rounds"]:
        for stage, key in (("round training", "training_seconds"), ("round pruning", "pruning_seconds"),
                           ("round merge", "merge_seconds")):
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
    method / baseline excluding and including the teacher's training.

    Also says whether the numbers are a fair comparison: `all_measured_now` (no number from the run
    cache) and `devices` (one, ideally). Warns when the methods ran on different devices.
    """
    for name in (method, baseline):
        if name not in set(table["method"]):
            raise ValueError(f"no {name!r} rows in the latency table (methods: {sorted(set(table['method']))})")
    rows = table[table["method"].isin([method, baseline])]
    seconds = rows.groupby("method")["seconds"].sum()
    teacher = rows.loc[(rows["method"] == baseline) & (rows["stage"] == TEACHER_STAGE), "seconds"].sum()
    with_teacher = float(seconds[baseline])
    without_teacher = with_teacher - float(teacher)
    devices = sorted(set(rows["device"]))
    if len(devices) > 1:
        warnings.warn(f"the stages ran on several devices {devices}: their ratio is not a latency comparison; "
                      f"recompute the cached stages on one device (a fresh run folder).", stacklevel=2)
    return {
        "method": method,
        "baseline": baseline,
        "method_seconds": float(seconds[method]),
        "baseline_seconds_excluding_teacher": without_teacher,
        "baseline_seconds_including_teacher": with_teacher,
        "ratio_excluding_teacher": float(seconds[method]) / without_teacher,
        "ratio_including_teacher": float(seconds[method]) / with_teacher,
        "all_measured_now": bool((rows["source"] == MEASURED_NOW).all()),
        "devices": devices,
    }


def accuracy_table(pruned: dict, *iterative: dict, baseline: str = ONE_SHOT) -> pd.DataFrame:
    """Test accuracy and sparsity of the one-shot `pruned` result and of each `colt.run_colt` result:
    the accuracy side of the comparison, at (as close as the methods land to) the same sparsity."""
    rows = [{"method": baseline, "sparsity_all": pruned["sparsity_all"],
             "sparsity_prunable": pruned["sparsity_prunable"], "test_accuracy": pruned["test_accuracy"]}]
    for result in iterative:
        ticket = result["ticket"]
        rows.append({"method": result["method"], "sparsity_all": ticket["sparsity_all"],
                     "sparsity_prunable": ticket["sparsity_prunable"], "test_accuracy": ticket["test_accuracy"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# the paper's numbers: a reference, not a measurement


def paper_latency() -> pd.DataFrame:
    """The paper's reported minutes, one-shot against COLT, with their ratio (`paper.latency`);
    `attrs["source"]` names the source. A reference for the shape of the result, not comparable with our seconds."""
    return paper.latency()
