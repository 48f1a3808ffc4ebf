"""The sweep (`tgkit.sweep`; its tables and figures, `tgkit.report.sweep`) on an Experiment whose
`pruned_result` returns known numbers: which runs it asks for, the tidy table, the mean and spread
over seeds, and our numbers beside the paper's."""

import math
from dataclasses import replace

import matplotlib
import numpy as np
import pytest

from tgkit import hparams
from tgkit.report import sweep as sweep_report
from tgkit.study import sweep
from tgkit.study.pipeline import Experiment

matplotlib.use("Agg")  # no display needed

BASE_ACCURACY = {"teacher_guided": 0.90, "magnitude": 0.80, "snip": 0.85, "random": 0.50}


def known_accuracy(criterion: str, sparsity: float, temperature: float | None, seed: int) -> float:
    """Lower with sparsity, 0.01 more per KD temperature step, 0.02 more for seed 1."""
    return BASE_ACCURACY[criterion] - sparsity / 10 + (temperature or 0) / 100 + 0.02 * seed


@pytest.fixture
def calls(monkeypatch):
    """Replace the expensive part, pruning and retraining, by `known_accuracy`; record every call."""
    made = []

    def pruned_result(self, criterion, sparsity, *, kd=True, over="all", retraining_temperature=None, seed=None):
        temperature = retraining_temperature
        made.append(
            {
                "criterion": criterion,
                "sparsity": sparsity,
                "kd": kd,
                "over": over,
                "temperature": temperature,
                "seed": seed,
            }
        )
        return {
            "test_accuracy": known_accuracy(criterion, sparsity, temperature if kd else None, seed),
            "sparsity_all": sparsity,
            "sparsity_prunable": sparsity + 0.01,
            "cached": seed == 0,
        }

    monkeypatch.setattr(Experiment, "pruned_result", pruned_result)
    return made


def experiment(tmp_path, dataset="digits", **overrides) -> Experiment:
    config = hparams.profile("smoke", dataset, **({"sweep": (0.5, 0.9), "seeds": (0, 1)} | overrides))
    return Experiment(config, runs_dir=tmp_path, device="cpu", progress=False)


def test_the_plan_runs_each_setting_once(tmp_path):
    config = experiment(tmp_path).config  # KD at T=3, ablation over (3, 5): T=3 is one run, not two
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


def test_the_table_has_a_row_per_run_with_what_pruned_result_said(tmp_path, calls):
    table = sweep.run_sweep(experiment(tmp_path), progress=False)
    assert list(table.columns) == list(sweep.COLUMNS)
    assert len(table) == len(calls) == 24
    assert all(call["over"] == "all" for call in calls)
    assert all((call["temperature"] is None) == (not call["kd"]) for call in calls)
    row = table[(table["method"] == "SNIP") & (table["sparsity_target"] == 0.9) & (table["seed"] == 1)].iloc[0]
    assert row["retraining"] == "KD" and row["temperature"] == 3.0
    assert row["test_accuracy"] == pytest.approx(0.85 - 0.09 + 0.03 + 0.02)
    assert row["sparsity_prunable"] == pytest.approx(0.91) and not row["cached"]
    no_kd = table[table["retraining"] == "CE"]
    assert set(no_kd["method"]) == {"teacher-guided"} and no_kd["temperature"].isna().all()
    assert set(table["method"]) == {"teacher-guided", "magnitude", "SNIP", "random"}


def test_the_summary_averages_over_seeds(tmp_path, calls):
    summary = sweep_report.summarise(sweep.run_sweep(experiment(tmp_path), progress=False))
    assert len(summary) == 12 and (summary["seeds"] == 2).all()
    no_kd = summary[(summary["retraining"] == "CE") & (summary["sparsity_target"] == 0.5)].iloc[0]
    assert math.isnan(no_kd["temperature"])
    assert no_kd["test_accuracy"] == pytest.approx(0.90 - 0.05 + 0.01)  # seeds 0 and 1 differ by 0.02
    assert no_kd["test_accuracy_std"] == pytest.approx(0.02 / math.sqrt(2))  # sample std of two values
    one_seed = sweep_report.summarise(sweep.run_sweep(experiment(tmp_path, seeds=(0,)), progress=False))
    assert one_seed["test_accuracy_std"].isna().all() and (one_seed["seeds"] == 1).all()


def test_curves_for_the_two_figures(tmp_path, calls):
    table = sweep.run_sweep(experiment(tmp_path), progress=False)
    main = sweep_report.main_curves(table, 3.0)
    assert sorted(set(sweep_report.curve_labels(main))) == [
        "SNIP, KD T=3",
        "magnitude, KD T=3",
        "random, KD T=3",
        "teacher-guided, KD T=3",
        "teacher-guided, no KD",
    ]
    ablation = sweep_report.temperature_ablation(table)
    assert sorted(set(sweep_report.curve_labels(ablation))) == [
        "teacher-guided, KD T=3",
        "teacher-guided, KD T=5",
        "teacher-guided, no KD",
    ]


def test_ours_beside_the_paper_at_its_nearest_level(tmp_path, calls):
    run = experiment(tmp_path, "cifar10", sweep=(0.5, 0.95, 0.975))
    summary = sweep_report.summarise(sweep.run_sweep(run, progress=False))
    table = sweep_report.beside_paper(summary, run.config, teacher_accuracy=0.93, student_accuracy=0.91)
    assert list(table.columns) == ["setting", "sparsity_ours", "sparsity_paper", "ours", "ours_std", "seeds", "paper"]
    assert table.iloc[0].to_dict() == {
        "setting": "dense teacher",
        "sparsity_ours": 0.0,
        "sparsity_paper": 0.0,
        "ours": 93.0,
        "ours_std": pytest.approx(np.nan, nan_ok=True),
        "seeds": 1,
        "paper": 95.40,
    }
    assert table.iloc[1]["ours"] == 91.0 and table.iloc[1]["paper"] == 95.92
    pruned = table.iloc[2:].set_index(["setting", "sparsity_ours"])
    assert len(pruned) == 9  # 3 levels x (KD T=3, KD T=5, no KD)
    assert pruned.loc[("KD T=3", 0.5), "sparsity_paper"] == 0.5046
    assert pruned.loc[("KD T=3", 0.5), "paper"] == 96.08
    assert pruned.loc[("KD T=3", 0.5), "ours"] == pytest.approx(100 * (0.90 - 0.05 + 0.03 + 0.01))
    assert pruned.loc[("KD T=3", 0.5), "ours_std"] == pytest.approx(100 * 0.02 / math.sqrt(2))
    assert pruned.loc[("KD T=5", 0.95), "sparsity_paper"] == 0.9392  # 1.08 points away, the nearest
    assert pruned.loc[("KD T=5", 0.95), "paper"] == 94.40
    assert pruned.loc[("no KD", 0.975), "sparsity_paper"] == 0.977
    assert math.isnan(pruned.loc[("no KD", 0.975), "paper"])  # the authors did not run it
    assert "arXiv 2511.16653" in table.attrs["source"]
    assert any("JPEG" in note for note in table.attrs["caveats"])
    assert any("ImageNet-pretrained" in note for note in table.attrs["caveats"])


def test_no_paper_reference_for_digits(tmp_path, calls):
    run = experiment(tmp_path, "digits", seeds=(0,))
    assert sweep_report.beside_paper(sweep_report.summarise(sweep.run_sweep(run, progress=False)), run.config) is None


def test_caveats_name_what_differs_from_the_paper():
    tiny = sweep_report.caveats(hparams.profile("quick", "tinyimagenet"))
    assert any("32 px" in note and "224" in note for note in tiny)
    assert any("'quick'" in note and "20000 training images" in note for note in tiny)
    assert not any("'full'" in note for note in sweep_report.caveats(hparams.profile("full", "cifar10")))


def test_the_plot_draws_a_line_per_curve_on_a_logit_axis(tmp_path, calls):
    table = sweep_report.main_curves(sweep.run_sweep(experiment(tmp_path), progress=False), 3.0)
    axes = sweep_report.plot_accuracy(table, title="digits")
    assert axes.get_xscale() == "logit"
    assert len(axes.get_legend().get_texts()) == 5
    assert "2 seeds" in axes.get_title()
    assert [round(tick, 3) for tick in axes.get_xticks()] == [0.5, 0.9]


def test_baselines_and_the_ablation_run_only_at_their_own_levels(tmp_path, calls):
    run = experiment(
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
