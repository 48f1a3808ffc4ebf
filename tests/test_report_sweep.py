"""`tgkit.report.sweep`: the sweep's tables and figures (the mean and spread over seeds, the curves of
the two figures, our numbers beside the paper's at its nearest level, the caveats, accuracy against
sparsity on a logit axis in the palette's colours, the zoom without random, the takeaway titles), on the table of a sweep whose `pruned_result` returns known numbers
(`conftest.known_accuracy`): nothing here trains."""

import math

import matplotlib
import numpy as np
import pytest

from conftest import sweep_experiment
from tgkit import hparams
from tgkit.report import palette
from tgkit.report import sweep as sweep_report
from tgkit.study import sweep

matplotlib.use("Agg")  # no display needed


def test_the_summary_averages_over_seeds(tmp_path, pruned_result_calls):
    summary = sweep_report.summarise(sweep.run_sweep(sweep_experiment(tmp_path), progress=False))
    assert len(summary) == 12 and (summary["seeds"] == 2).all()
    no_kd = summary[(summary["retraining"] == "CE") & (summary["sparsity_target"] == 0.5)].iloc[0]
    assert math.isnan(no_kd["temperature"])
    assert no_kd["test_accuracy"] == pytest.approx(0.90 - 0.05 + 0.01)  # seeds 0 and 1 differ by 0.02
    assert no_kd["test_accuracy_std"] == pytest.approx(0.02 / math.sqrt(2))  # sample std of two values
    one_seed = sweep_report.summarise(sweep.run_sweep(sweep_experiment(tmp_path, seeds=(0,)), progress=False))
    assert one_seed["test_accuracy_std"].isna().all() and (one_seed["seeds"] == 1).all()


def test_curves_for_the_two_figures(tmp_path, pruned_result_calls):
    table = sweep.run_sweep(sweep_experiment(tmp_path), progress=False)
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


def test_ours_beside_the_paper_at_its_nearest_level(tmp_path, pruned_result_calls):
    run = sweep_experiment(tmp_path, "cifar10", sweep=(0.5, 0.95, 0.975))
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


def test_no_paper_reference_for_digits(tmp_path, pruned_result_calls):
    run = sweep_experiment(tmp_path, "digits", seeds=(0,))
    assert sweep_report.beside_paper(sweep_report.summarise(sweep.run_sweep(run, progress=False)), run.config) is None


def test_caveats_name_what_differs_from_the_paper():
    tiny = sweep_report.caveats(hparams.profile("quick", "tinyimagenet"))
    assert any("32 px" in note and "224" in note for note in tiny)
    assert any("'quick'" in note and "10 teacher epochs" in note for note in tiny)
    assert not any("'full'" in note for note in sweep_report.caveats(hparams.profile("full", "cifar10")))


def test_the_plot_draws_a_line_per_curve_on_a_logit_axis(tmp_path, pruned_result_calls):
    table = sweep_report.main_curves(sweep.run_sweep(sweep_experiment(tmp_path), progress=False), 3.0)
    axes = sweep_report.plot_accuracy(table, title="digits")
    assert axes.get_xscale() == "logit"
    assert len(axes.get_legend().get_texts()) == 5
    assert "2 seeds" in axes.get_title()
    assert [round(tick, 3) for tick in axes.get_xticks()] == [0.5, 0.9]


def test_the_takeaway_names_the_highest_and_lowest_curve_at_the_highest_level(tmp_path, pruned_result_calls):
    table = sweep.run_sweep(sweep_experiment(tmp_path), progress=False)
    assert sweep_report.takeaway(sweep_report.main_curves(table, 3.0)) == (
        "at 90.0%: teacher-guided, KD T=3 highest (85.0%), random, KD T=3 lowest (45.0%), 40.0 points below"
    )
    assert sweep_report.takeaway(sweep_report.temperature_ablation(table)) == (
        "at 90.0%: teacher-guided, KD T=5 highest (87.0%), teacher-guided, no KD lowest (82.0%), 5.0 points below"
    )


def test_the_sweep_figure_zooms_on_the_methods_random_would_squeeze(tmp_path, pruned_result_calls):
    table = sweep_report.main_curves(sweep.run_sweep(sweep_experiment(tmp_path), progress=False), 3.0)
    references = {"dense student": 0.95, "teacher": 0.97}
    whole, zoom = sweep_report.plot_sweep(table, references=references).axes
    assert "random" in " ".join(line.get_label() for line in whole.get_lines())
    assert "random" not in " ".join(line.get_label() for line in zoom.get_lines())
    # the zoom spans the other curves' mean +- one std (1.41 points) and the references, with 8% to spare
    low, high = 75.0 - 2**0.5, 97.0
    margin = 0.08 * (high - low)
    assert zoom.get_ylim() == pytest.approx((low - margin, high + margin))
    assert (
        zoom.get_title()
        .replace("\n", " ")
        .startswith("zoom without random: at 90.0%: teacher-guided, KD T=3 highest (85.0%)")
    )
    lines = {line.get_label(): line for line in whole.get_lines()}
    assert lines["teacher-guided, no KD"].get_color() == palette.color("teacher-guided")
    assert lines["teacher-guided, no KD"].get_linestyle() == "--"
    assert lines["random, KD T=3"].get_color() == palette.color("random")
    assert lines["dense student (95.0%)"].get_color() == palette.color("dense")
    assert lines["teacher (97.0%)"].get_linestyle() == "-."


def test_the_temperature_ablation_colours_each_setting(tmp_path, pruned_result_calls):
    table = sweep_report.temperature_ablation(sweep.run_sweep(sweep_experiment(tmp_path), progress=False))
    lines = {line.get_label(): line for line in sweep_report.plot_accuracy(table).get_lines()}
    assert lines["teacher-guided, KD T=5"].get_color() == palette.color("KD T=5")
    # the curves the method comparison draws too look the same in both figures
    assert lines["teacher-guided, KD T=3"].get_color() == palette.color("teacher-guided")
    assert lines["teacher-guided, no KD"].get_color() == palette.color("teacher-guided")
