"""`tgkit.report.latency`: the one-shot pipeline against COLT, stage by stage, on synthetic timings with
known answers (seconds per stage, where each comes from, the ratios with and without the teacher, the
stacked totals), and on a tiny real COLT run whose stages add up to its seconds."""

import math

import matplotlib
import pytest
import torch

from tgkit import colt, data
from tgkit.hparams import ColtConfig, ModelSpec, TrainConfig
from tgkit.report import latency, palette

matplotlib.use("Agg")

GPU = "NVIDIA H100"


pytestmark = pytest.mark.usefixtures("one_thread")


# As Experiment.timings records them: the teacher was trained now and read back once more from the
# cache; the student and the scores come from an earlier process; two sparsities were pruned now.
TIMINGS = [
    {"stage": "teacher", "seconds": 100.0, "cached": False, "device": GPU},
    {"stage": "student", "seconds": 50.0, "cached": True, "device": GPU},
    {"stage": "teacher", "seconds": 100.0, "cached": True, "device": GPU},
    {"stage": "scores-teacher_guided", "seconds": 10.0, "cached": True, "device": GPU},
    {"stage": "pruned", "seconds": 45.0, "cached": False, "device": GPU},
    {"stage": "pruned", "seconds": 47.5, "cached": False, "device": GPU},
]
PRUNED = {
    "seconds": 45.0,
    "pruning_seconds": 5.0,
    "sparsity_all": 0.9,
    "sparsity_prunable": 0.93,
    "test_accuracy": 0.91,
}


def colt_result(device=GPU) -> dict:
    rounds = [  # round 0 trains; round 1 prunes, merges, trains; round 2 lands and trains nothing
        {"round": 0, "training_seconds": 60.0, "pruning_seconds": 0.0, "merge_seconds": 0.0, "cached": True},
        {"round": 1, "training_seconds": 60.0, "pruning_seconds": 2.0, "merge_seconds": 1.0, "cached": False},
        {"round": 2, "training_seconds": 0.0, "pruning_seconds": 2.0, "merge_seconds": 1.0, "cached": False},
    ]
    for record in rounds:
        record["device"] = device
    ticket = {
        "seconds": 80.0,
        "cached": False,
        "device": GPU,
        "sparsity_all": 0.9,
        "sparsity_prunable": 0.93,
        "test_accuracy": 0.85,
    }
    return {"method": "COLT (P=2)", "rounds": rounds, "ticket": ticket}


@pytest.fixture
def table():
    return latency.latency_table(latency.one_shot_stages(TIMINGS, PRUNED), latency.colt_stages(colt_result()))


def test_one_shot_stages_split_pruning_from_retraining_and_say_where_they_come_from(table):
    one_shot = table[table["method"] == "one-shot"].set_index("stage")
    assert one_shot["seconds"].to_dict() == {
        "teacher training": 100.0,
        "dense student": 50.0,
        "scoring": 10.0,
        "pruning": 5.0,
        "retraining": 40.0,
    }
    assert one_shot.loc["teacher training", "source"] == latency.MEASURED_NOW  # computed once, read back once
    assert one_shot.loc["dense student", "source"] == latency.FROM_CACHE
    assert one_shot.loc["scoring", "source"] == latency.FROM_CACHE
    assert one_shot.loc["retraining", "source"] == latency.MEASURED_NOW
    assert one_shot["includes"].str.len().gt(0).all()


def test_colt_stages_list_every_round_and_the_ticket(table):
    rows = table[table["method"] == "COLT (P=2)"]
    assert list(zip(rows["stage"], rows["round"].fillna(-1))) == [  # -1: not a round
        ("round training", 0),
        ("round training", 1),
        ("round pruning", 1),
        ("round merge", 1),
        ("round pruning", 2),
        ("round merge", 2),
        ("ticket training", -1),
    ]
    assert rows["seconds"].sum() == 206.0
    assert (rows["source"] == latency.FROM_CACHE).tolist() == [True] + [False] * 6
    assert list(table.columns) == ["method", "stage", "round", "seconds", "includes", "source", "device", "minutes"]


def test_ratios_with_and_without_the_teacher(table):
    summary = latency.latency_summary(table, "COLT (P=2)")
    assert summary["method_seconds"] == 206.0
    assert summary["baseline_seconds_including_teacher"] == 205.0
    assert summary["baseline_seconds_excluding_teacher"] == 105.0
    assert summary["ratio_including_teacher"] == pytest.approx(206 / 205)
    assert summary["ratio_excluding_teacher"] == pytest.approx(206 / 105)
    assert summary["baseline_retraining_seconds"] == 40.0  # what the paper's minutes measure
    assert summary["ratio_retraining_only"] == pytest.approx(206 / 40)
    assert summary["all_measured_now"] is False and summary["devices"] == [GPU]


def test_stage_totals_are_a_stacked_bar_chart(table):
    totals = latency.stage_totals(table)
    assert totals.index.tolist() == ["one-shot", "COLT (P=2)"]
    assert totals.columns.tolist() == [
        "teacher training",
        "dense student",
        "scoring",
        "pruning",
        "retraining",
        "round training",
        "round pruning",
        "round merge",
        "ticket training",
    ]
    assert totals.loc["COLT (P=2)"].tolist() == [0, 0, 0, 0, 0, 120.0, 4.0, 2.0, 80.0]
    assert totals.sum(axis=1).tolist() == [205.0, 206.0]


def test_a_comparison_across_devices_warns():
    mixed = latency.latency_table(latency.one_shot_stages(TIMINGS, PRUNED), latency.colt_stages(colt_result("cpu")))
    with pytest.warns(UserWarning, match="several devices"):
        summary = latency.latency_summary(mixed, "COLT (P=2)")
    assert summary["devices"] == [GPU, "cpu"]


def test_ambiguous_or_missing_stages_are_refused():
    two_scorings = TIMINGS + [{"stage": "scores-teacher_guided", "seconds": 12.0, "cached": False, "device": GPU}]
    with pytest.raises(ValueError, match="several 'scores-teacher_guided'"):
        latency.one_shot_stages(two_scorings, PRUNED)
    with pytest.raises(ValueError, match="no 'pruned' stage"):
        latency.one_shot_stages(TIMINGS, {**PRUNED, "seconds": 44.0})
    with pytest.raises(ValueError, match="no 'LTH' rows"):
        latency.latency_summary(latency.latency_table(latency.one_shot_stages(TIMINGS, PRUNED)), "LTH")


def test_accuracy_at_the_same_sparsity():
    table = latency.accuracy_at_target(PRUNED, colt_result())
    assert table.to_dict("records") == [
        {"method": "one-shot", "sparsity_all": 0.9, "sparsity_prunable": 0.93, "test_accuracy": 0.91},
        {"method": "COLT (P=2)", "sparsity_all": 0.9, "sparsity_prunable": 0.93, "test_accuracy": 0.85},
    ]


def test_the_papers_minutes_are_a_separate_sourced_reference():
    paper = latency.paper_latency()
    assert paper["dataset"].tolist() == ["CIFAR-10", "CIFAR-100", "TinyImageNet"]
    assert paper.loc[0, "ratio"] == pytest.approx(276 / 27.82)
    assert "arXiv 2511.16653" in paper.attrs["source"]
    paper.loc[0, "colt_minutes"] = 0.0  # a copy each call: nobody can edit the reference
    assert latency.paper_latency().loc[0, "colt_minutes"] == 276.0


def test_beside_the_paper_its_minutes_stand_under_our_retraining(table):
    summary = latency.latency_summary(table, "COLT (P=2)")
    beside = latency.beside_paper(summary, PRUNED, dataset="digits", profile="smoke", device="cpu")
    assert list(beside.columns) == latency.BESIDE_PAPER_COLUMNS
    theirs = beside.iloc[0]
    assert theirs["who"] == "paper (theirs)" and theirs["retraining_minutes"] == 27.82
    assert theirs["ratio_retraining_only"] == pytest.approx(276 / 27.82)
    assert math.isnan(theirs["pipeline_minutes_excluding_teacher"]) and math.isnan(theirs["ratio_including_teacher"])
    ours = beside.iloc[-1]
    assert ours["who"] == "ours" and ours["dataset"] == "digits (smoke profile)"
    assert ours["retraining_minutes"] == pytest.approx(40 / 60)
    assert ours["ratio_retraining_only"] == pytest.approx(206 / 40)
    assert ours["pipeline_minutes_excluding_teacher"] == pytest.approx(105 / 60)
    assert ours["pipeline_minutes_including_teacher"] == pytest.approx(205 / 60)
    assert "KD retraining alone" in beside.attrs["note"] and "arXiv 2511.16653" in beside.attrs["source"]


def test_the_time_plots_state_the_takeaway_in_each_methods_colour(table):
    summary = latency.latency_summary(table, "COLT (P=2)")
    accuracy = latency.accuracy_at_target(PRUNED, colt_result())
    assert latency.takeaway(summary, accuracy) == (
        "COLT (P=2) took 5.2x one-shot's KD retraining, 2.0x its pipeline without the teacher, "
        "1.0x with it; test accuracy 85.0% against 91.0%"
    )
    assert latency.method_color("one-shot") == palette.color("teacher-guided")
    assert latency.method_color("COLT (P=2)") == palette.color("colt")
    bars = latency.plot_wall_clock(table, accuracy).axes[0]
    assert [text.get_text() for text in bars.texts] == [
        " 3.42 min, 91.0% test accuracy",
        " 3.43 min, 85.0% test accuracy",
    ]
    result = colt_result()
    result["rounds"] = [
        {
            **record,
            "sparsity_all": 0.5 * index,
            "sparsity_prunable": 0.5 * index,
            "remaining_weights": 100,
            "effective_prune_rate": 0.2,
            "trimmed": False,
            "block_val_accuracy": [0.9],
        }
        for index, record in enumerate(result["rounds"])
    ]
    figure = latency.plot_sparsity_vs_time([result], [summary], PRUNED)
    time, accuracy_axes = figure.axes
    assert time.get_lines()[0].get_color() == palette.color("colt")
    one_shot = [c for c in accuracy_axes.collections if c.get_label() == "one-shot: KD retraining alone"]
    assert one_shot[0].get_offsets().tolist() == [[40 / 60, 0.91]]  # accuracy at the retraining's minutes


def test_a_real_colt_run_accounts_for_all_its_seconds(tmp_path):
    torch.manual_seed(0)
    digits = data.load_dataset("digits", progress=False)
    config = ColtConfig(
        model=ModelSpec("smallcnn", 8),
        target_sparsity=0.3,
        round_training=TrainConfig(epochs=1, batch_size=64, lr=0.05),
        final_training=TrainConfig(epochs=1, batch_size=64, lr=0.05),
    )
    result = colt.run_colt(digits, config, folder=tmp_path, device="cpu", progress=False)
    rows = latency.latency_table(latency.colt_stages(result))
    assert rows["seconds"].sum() == pytest.approx(result["seconds"])
    assert (rows["source"] == latency.MEASURED_NOW).all()
    cached = latency.colt_stages(colt.run_colt(digits, config, folder=tmp_path, device="cpu", progress=False))
    assert all(row["source"] == latency.FROM_CACHE for row in cached)
