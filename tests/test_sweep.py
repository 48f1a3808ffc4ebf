"""`tgkit.study.sweep`: which runs the sweep plans (each setting once; the baselines and the temperature
ablation only at their own levels) and the tidy table it makes of them, on an Experiment whose
`pruned_result` returns known numbers (`conftest.known_accuracy`): nothing here trains."""

from dataclasses import replace

import matplotlib
import pytest

from conftest import sweep_experiment
from tgkit.report import sweep as sweep_report
from tgkit.study import sweep

matplotlib.use("Agg")  # no display needed


def test_the_plan_runs_each_setting_once(tmp_path):
    config = sweep_experiment(tmp_path).config  # KD at T=3, ablation over (3, 5): T=3 is one run, not two
    runs = sweep.plan(config)
    assert len(runs) == len(set(runs)) == 2 * 2 * (2 + 1 + 3)  # seeds x levels x (TG KD T=3, T=5, TG CE, baselines)
    assert runs[:6] == [
        sweep.SweepRun("teacher_guided", 0.5, 3.0, 0),
        sweep.SweepRun("teacher_guided", 0.5, 5.0, 0),
        sweep.SweepRun("teacher_guided", 0.5, None, 0),
        sweep.SweepRun("magnitude", 0.5, 3.0, 0),
        sweep.SweepRun("snip", 0.5, 3.0, 0),
        sweep.SweepRun("random", 0.5, 3.0, 0),
    ]
    only_t5 = sweep.plan(replace(config, temperatures=(5.0,), seeds=(0,), sweep=(0.5,)))
    assert {run.temperature for run in only_t5 if run.criterion == "teacher_guided"} == {3.0, 5.0, None}


def test_the_table_has_a_row_per_run_with_what_pruned_result_said(tmp_path, pruned_result_calls):
    table = sweep.run_sweep(sweep_experiment(tmp_path), progress=False)
    assert list(table.columns) == [
        "method",
        "retraining",
        "temperature",
        "seed",
        "sparsity_target",
        "sparsity_all",
        "sparsity_prunable",
        "test_accuracy",
        "cached",
    ]
    assert len(table) == len(pruned_result_calls) == 24
    assert all(call["over"] == "all" for call in pruned_result_calls)
    assert all((call["temperature"] is None) == (not call["kd"]) for call in pruned_result_calls)
    row = table[(table["method"] == "SNIP") & (table["sparsity_target"] == 0.9) & (table["seed"] == 1)].iloc[0]
    assert row["retraining"] == "KD" and row["temperature"] == 3.0
    assert row["test_accuracy"] == pytest.approx(0.85 - 0.09 + 0.03 + 0.02)
    assert row["sparsity_prunable"] == pytest.approx(0.91) and not row["cached"]
    no_kd = table[table["retraining"] == "CE"]
    assert set(no_kd["method"]) == {"teacher-guided"} and no_kd["temperature"].isna().all()
    assert set(table["method"]) == {"teacher-guided", "magnitude", "SNIP", "random"}


def test_baselines_and_the_ablation_run_only_at_their_own_levels(tmp_path, pruned_result_calls):
    run = sweep_experiment(
        tmp_path, "cifar10", sweep=(0.5, 0.9, 0.984), baseline_sweep=(0.9,), temperature_sweep=(0.984,), seeds=(0,)
    )
    table = sweep.run_sweep(run, progress=False)
    levels = table.groupby(["method", "temperature"], dropna=False)["sparsity_target"].apply(sorted).to_dict()
    assert levels[("teacher-guided", 3.0)] == [0.5, 0.9, 0.984]
    assert levels[("teacher-guided", 5.0)] == [0.984]
    assert all(levels[(method, 3.0)] == [0.9] for method in ("magnitude", "SNIP", "random"))
    assert sorted(table.loc[table["retraining"] == "CE", "sparsity_target"]) == [0.5, 0.9, 0.984]
    summary = sweep_report.summarise(table)
    beside = sweep_report.beside_paper(summary, run.config).set_index(["setting", "sparsity_ours"])
    assert len(beside) == 3 + 1 + 3  # KD T=3 and no KD at three levels, KD T=5 at one
    assert beside.loc[("KD T=5", 0.984), "sparsity_paper"] == 0.9841
    axes = sweep_report.plot_accuracy(sweep_report.main_curves(table, 3.0))
    assert len(axes.get_legend().get_texts()) == 5
