"""`tgkit.bench.budget`: the plan arithmetic on known rates (every device step is images over its rate, every
host cost counted), and the fast profile's whole device command within eight minutes at its planning rates.
(What the profiles hold: test_hparams.py.)"""

import ast
import math
import re
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from tgkit import hparams
from tgkit.bench import budget

REPO = Path(__file__).resolve().parents[1]

# Rates of one kind of step each, in images/s, chosen so that every stage's seconds are easy to check.
RATES = {
    "teacher_img_s": 1000.0,
    "kd_img_s": 2000.0,
    "masked_img_s": 4000.0,
    "eval_img_s": 10_000.0,
    "teacher_eval_img_s": 5000.0,
    "score_s_per_50k": 25.0,
    "dense_img_s": 5000.0,
}
# The fast profile's planning rates (its docstring): dense ResNet-18 training at the 30,000 images/s the
# GPU target asks for, every other rate scaled from the CPU benchmark's ratios to it.
FAST_PLANNING_RATES = {
    "teacher_img_s": 8_104,
    "kd_img_s": 16_656,
    "masked_img_s": 31_205,
    "eval_img_s": 62_817,
    "teacher_eval_img_s": 14_653,
    "score_s_per_50k": 50_000 / 17_389,
    "dense_img_s": 30_000,
}


def test_the_whole_fast_command_is_planned_a_minute_inside_its_deadline():
    """scripts/gpu_run.sh stops starting notebooks at 570 s (the device tool's 600 s limit, less packing); a
    minute of that is left for the plan's error (its rates are CPU ratios scaled to an assumed GPU)."""
    plan = budget.stage_plan(hparams.profile("fast"), FAST_PLANNING_RATES, device_type="cuda")
    assert plan["seconds"].sum() <= 570 - 60
    assert set(plan["kind"]) == {"fixed", "device", "host"}
    assert list(budget.per_notebook(plan).index) == ["command", "01", "02", "03", "04", "total"]


def test_split_sizes_follow_subset_and_validation_fraction():
    assert budget.split_sizes(hparams.profile("fast")) == (45_000, 5_000, 10_000)
    assert budget.split_sizes(hparams.profile("quick")) == (45_000, 5_000, 10_000)
    assert budget.split_sizes(hparams.profile("quick", train_subset=20_000)) == (18_000, 2_000, 10_000)
    with pytest.raises(ValueError, match="imagefolder"):
        budget.split_sizes(hparams.profile("quick", "imagefolder:somewhere"))


def test_colt_rounds_bound_assumes_the_nominal_rate():
    settings = hparams.colt_config("fast")  # 97.7% at 15% a round: 0.85^24 > 0.023 > 0.85^25
    assert budget.colt_rounds_at_most(settings) == 1 + 24
    assert budget.colt_rounds_at_most(replace(settings, target_sparsity=0.5)) == 1 + math.ceil(
        math.log(0.5) / math.log(0.85)
    )


def test_every_stage_is_images_over_its_rate():
    config = replace(hparams.profile("fast"), latency_from_scratch=False)
    plan = budget.stage_plan(config, RATES).set_index("stage")
    train, val, test = 45_000, 5_000, 10_000
    teacher_epochs = config.teacher_training.epochs
    assert plan.loc["teacher", "images"] == teacher_epochs * train
    assert plan.loc["teacher", "seconds"] == pytest.approx(teacher_epochs * train / 1000)
    assert plan.loc["teacher: validation and test", "seconds"] == pytest.approx((teacher_epochs * val + test) / 5000)
    assert plan.loc["teacher-guided scores", "seconds"] == pytest.approx(config.scoring.epochs * train / 2000)
    assert plan.loc["retraining with KD (11 runs)", "images"] == 11 * config.retraining.epochs * train
    assert plan.loc["retraining without KD (4 runs)", "seconds"] == pytest.approx(
        4 * config.retraining.epochs * train / 4000
    )
    assert not any("again" in stage for stage in plan.index)


def test_the_host_work_is_counted_per_notebook():
    """Masks (one per sweep run, two per COLT round), figures, kernel starts and resume checkpoints: each
    a count times a cost measured once, whatever the GPU's speed."""
    config = replace(hparams.profile("fast"), latency_from_scratch=False)
    plan = budget.stage_plan(config, RATES, device_type="cuda").set_index("stage")
    prunable = budget.network_sizes(config, config.student)[1]
    assert prunable == 11_159_232  # every convolution of ResNet-18 width 64: 11.2 M scores a mask
    assert plan.loc["15 global masks", "seconds"] == pytest.approx(15 * prunable / 1e6 * budget.MASK_S_PER_MILLION)
    assert plan.loc["50 global masks", "notebook"] == "04"  # COLT: at most 25 rounds of two masks
    figures = plan[plan.index.str.endswith("figures")]
    assert figures["seconds"].sum() == pytest.approx(sum(budget.FIGURES.values()) * budget.FIGURE_S)
    # at 1,000 images/s the teacher trains 675 s: eleven resume checkpoints at one a minute on a GPU
    teacher_params = budget.network_sizes(config, config.teacher)[0]
    assert plan.loc["teacher: 11 checkpoint(s)", "seconds"] == pytest.approx(
        11 * 12 * teacher_params / budget.CHECKPOINT_BYTES_PER_S
    )
    on_a_cpu = budget.stage_plan(config, RATES, device_type="cpu").set_index("stage")
    assert f"teacher: {config.teacher_training.epochs} checkpoint(s)" in on_a_cpu.index  # one an epoch there


def test_a_scratch_latency_notebook_plans_the_one_shot_stages_twice():
    config = replace(hparams.profile("fast"), latency_from_scratch=True)
    plan = budget.stage_plan(config, RATES)
    again = plan[plan["stage"].str.contains("again")]
    assert set(again["notebook"]) == {"04"}
    assert "teacher (again, for the clock)" in set(again["stage"])
    totals = budget.per_notebook(plan)
    assert totals["total"] == pytest.approx(plan["seconds"].sum())


def test_the_plan_counts_notebook_02s_explorer_and_sensitivity_as_the_notebook_has_them():
    notebook = nbformat.read(REPO / "notebooks" / "02_importance_per_layer.ipynb", as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    variants = re.search(r"^VARIANTS = (\{.*?^\})", source, re.S | re.M).group(1)
    levels = re.search(r"^LEVELS = (\(.*?\))", source, re.M).group(1)
    assert len(ast.literal_eval(variants)) == budget.EXPLORER_SCORINGS
    assert len(ast.literal_eval(levels)) == budget.SENSITIVITY_LEVELS
