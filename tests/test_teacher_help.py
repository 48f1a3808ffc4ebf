"""`tgkit.study.teacher_help`, notebook 06's study: the plan of runs (every one once, the ablation's variants, the
snapshots within the teacher's training), what the plan costs before anything runs, and the grid's table, with
the expensive part (pruning and retraining) replaced by known accuracies. The real runs: test_pipeline.py
(snapshots, a pruned run naming one) and the notebook in test_batch.py and nbval."""

from dataclasses import replace
from types import SimpleNamespace

import pandas as pd
import pytest

from tgkit import hparams
from tgkit.distillation import KD_VARIANTS
from tgkit.hparams import KDConfig
from tgkit.study import teacher_help
from tgkit.study.pipeline import Experiment
from tgkit.study.teacher_help import HelpRun

SMOKE = hparams.profile("smoke")  # snapshots (3, 5) of 12 epochs, lengths (1, 2, 4), seeds (0, 1); retraining 4


def test_the_plan_holds_every_run_of_the_grid_and_the_ablation_once():
    runs = teacher_help.plan(SMOKE)
    assert len(runs) == len(set(runs))
    grid = [run for run in runs if run.part == "grid"]
    assert len(grid) == 2 * 3 * (1 + 3 * 2)  # seeds x lengths x (magnitude CE + three teachers with CE and KD)
    for seed in (0, 1):
        for epochs in (1, 2, 4):
            assert HelpRun("grid", "magnitude", None, "CE", epochs, seed) in grid
            for teacher in (3, 5, None):
                for retraining in ("CE", "KD"):
                    assert HelpRun("grid", "teacher_guided", teacher, retraining, epochs, seed) in grid
    ablation = [run for run in runs if run.part == "ablation"]
    # CE and KD at the profile's 4 epochs are in the grid already: the ablation adds the five variants only
    assert [run.retraining for run in ablation] == list(KD_VARIANTS)
    assert {(run.teacher_epoch, run.epochs, run.seed) for run in ablation} == {(None, 4, 0)}


def test_the_ablation_retrains_for_the_grids_longest_length_whose_ce_and_kd_runs_it_shares():
    config = replace(SMOKE, teacher_help=replace(SMOKE.teacher_help, retraining_epochs=(0.05, 0.2, 0.1)))
    runs = teacher_help.plan(config)
    ablation = [run for run in runs if run.part == "ablation"]
    assert [run.retraining for run in ablation] == list(KD_VARIANTS)
    assert {(run.teacher_epoch, run.epochs, run.seed) for run in ablation} == {(None, 0.2, 0)}
    for retraining in ("CE", "KD"):
        assert HelpRun("grid", "teacher_guided", None, retraining, 0.2, 0) in runs


def test_a_variant_equal_to_the_configured_loss_is_left_out():
    config = replace(SMOKE, kd=KDConfig(temperature=5.0))
    variants = [run.retraining for run in teacher_help.plan(config) if run.part == "ablation"]
    assert "T=5" not in variants and "T=1" in variants


def test_snapshots_past_the_teachers_training_are_left_out():
    short = hparams.profile("smoke", teacher_training=hparams.TrainConfig(epochs=4, batch_size=64, lr=0.05))
    assert teacher_help.snapshot_epochs(short) == [3]
    assert {run.teacher_epoch for run in teacher_help.plan(short) if run.criterion == "teacher_guided"} == {3, None}


def test_each_run_names_its_teacher_length_seed_and_loss():
    ce = HelpRun("grid", "teacher_guided", 3, "CE", 4, 1).options(SMOKE)
    assert ce == dict(kd=False, seed=1, teacher_epoch=3, retraining_epochs=4, kd_settings=None)
    assert HelpRun("grid", "teacher_guided", None, "KD", 2, 0).options(SMOKE)["kd_settings"] == SMOKE.kd
    hinton = HelpRun("ablation", "teacher_guided", None, "Hinton (no normalisation)", 4, 0).kd_settings(SMOKE)
    assert (hinton.order, hinton.beta, hinton.alpha, hinton.temperature) == ("plain", 0.0, SMOKE.kd.alpha, 3.0)
    assert HelpRun("ablation", "teacher_guided", None, "alpha=0.3", 4, 0).kd_settings(SMOKE).alpha == 0.3


class PlannedExperiment:
    """What `plan_table` reads of an Experiment: the dense student's seconds per epoch (6 s, of which 1.2 s its
    validation) and which stages are in the run cache (the runs of seed 0, and the trained teacher's scores)."""

    def __init__(self, config):
        self.config = config

    def student_result(self):
        return {"history": [{"seconds": 5.0}, {"seconds": 6.0}, {"seconds": 9.0}]}

    def pruned_stage(self, criterion, sparsity, *, seed, **options):
        assert sparsity == self.config.teacher_help.sparsity
        return SimpleNamespace(done=seed == 0)

    def scores_stage(self, criterion, *, teacher_epoch=None):
        return SimpleNamespace(done=teacher_epoch is None)


@pytest.fixture
def timed_evaluations(monkeypatch):
    """One evaluation of the dense student: 1.2 s on the validation split, 2.4 s on the test split."""
    monkeypatch.setattr(teacher_help, "evaluation_seconds", lambda experiment: (1.2, 2.4))


def test_the_plan_table_estimates_what_is_not_cached_at_the_students_seconds_per_epoch(timed_evaluations):
    runs = teacher_help.plan(SMOKE)
    table = teacher_help.plan_table(PlannedExperiment(SMOKE), runs)
    assert len(table) == len(runs) and list(table["cached"]) == [run.seed == 0 for run in runs]
    # whole epochs: 4.8 s of training and 1.2 s of validation each (the student's 6 s), then 2.4 s of test
    uncached = [run for run in runs if run.seed != 0]
    assert table["estimated_minutes"].sum() == pytest.approx(sum(6 * run.epochs + 2.4 for run in uncached) / 60)
    assert table.attrs["scoring_minutes"] == pytest.approx(2 * SMOKE.scoring.epochs * 0.1)  # two snapshots to score
    assert table.attrs["estimated_minutes"] == pytest.approx(
        table["estimated_minutes"].sum() + table.attrs["scoring_minutes"]
    )


def test_a_fraction_of_an_epoch_costs_its_share_of_the_training_and_a_whole_validation(timed_evaluations):
    config = replace(SMOKE, teacher_help=replace(SMOKE.teacher_help, retraining_epochs=(0.25,), seeds=(1,)))
    table = teacher_help.plan_table(PlannedExperiment(config), teacher_help.plan(config))
    assert table["estimated_minutes"].tolist() == pytest.approx([(0.25 * 4.8 + 1.2 + 2.4) / 60] * len(table))


def test_run_grid_makes_one_row_per_run_with_its_teacher(monkeypatch):
    teachers = pd.DataFrame(
        {"teacher": ["epoch 3", "epoch 5", "trained"], "teacher_epoch": [3, 5, None], "test_accuracy": [0.6, 0.9, 0.97]}
    )
    monkeypatch.setattr(teacher_help, "teachers", lambda experiment: teachers)
    calls = []

    def pruned_result(self, criterion, sparsity, **options):
        calls.append((criterion, sparsity, options))
        accuracy = 0.5 + 0.01 * options["retraining_epochs"] + (0.1 if options["kd"] else 0.0)
        return {"test_accuracy": accuracy, "sparsity_all": sparsity, "seconds": 30.0, "cached": False}

    monkeypatch.setattr(Experiment, "pruned_result", pruned_result)
    experiment = Experiment.__new__(Experiment)
    experiment.config = SMOKE
    runs = teacher_help.plan(SMOKE)
    grid = teacher_help.run_grid(experiment, runs, progress=False)
    assert list(grid.columns) == list(teacher_help.COLUMNS) and len(grid) == len(runs) == len(calls)
    assert [call[2] for call in calls] == [run.options(SMOKE) for run in runs]
    assert set(grid.loc[grid["method"] == "magnitude", "teacher"]) == {"none"}
    assert grid.loc[grid["method"] == "magnitude", "teacher_accuracy"].isna().all()
    guided = grid[grid["method"] == "teacher-guided"].drop_duplicates("teacher").set_index("teacher")
    assert guided["teacher_accuracy"].to_dict() == {"epoch 3": 0.6, "epoch 5": 0.9, "trained": 0.97}
    first = grid.iloc[0]
    assert (first["epochs"], first["test_accuracy"], first["minutes"]) == (1, 0.51, 0.5)
