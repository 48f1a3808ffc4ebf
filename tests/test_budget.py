"""`tgkit.bench.budget`: the plan arithmetic on known rates (every stage is images over its rate), and the
fast profile within its seven minutes at its planning rates. (What the profiles hold: test_hparams.py.)"""

import math
from dataclasses import replace

import pytest

from tgkit import hparams
from tgkit.bench import budget

# Rates of one kind of step each, in images/s, chosen so that every stage's seconds are easy to check.
RATES = {
    "teacher_img_s": 1000.0,
    "kd_img_s": 2000.0,
    "masked_img_s": 4000.0,
    "eval_img_s": 10_000.0,
    "teacher_eval_img_s": 5000.0,
    "score_s_per_50k": 25.0,
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
}


def test_fast_profile_fits_its_seven_minutes_at_its_planning_rates():
    plan = budget.stage_plan(hparams.profile("fast"), FAST_PLANNING_RATES)
    assert plan["seconds"].sum() <= 7 * 60


def test_split_sizes_follow_subset_and_validation_fraction():
    assert budget.split_sizes(hparams.profile("fast")) == (45_000, 5_000, 10_000)
    assert budget.split_sizes(hparams.profile("quick")) == (18_000, 2_000, 10_000)
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
    assert (plan.loc["overhead (assumed)", "seconds"] == budget.NOTEBOOK_OVERHEAD_S).all()
    assert not any("again" in stage for stage in plan.index)


def test_a_scratch_latency_notebook_plans_the_one_shot_stages_twice():
    config = replace(hparams.profile("fast"), latency_from_scratch=True)
    plan = budget.stage_plan(config, RATES)
    again = plan[plan["stage"].str.contains("again")]
    assert set(again["notebook"]) == {"04"}
    assert "teacher (again, for the clock)" in set(again["stage"])
    totals = budget.per_notebook(plan)
    assert totals["total"] == pytest.approx(plan["seconds"].sum())
