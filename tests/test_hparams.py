"""`tgkit.hparams`: what the profiles hold (the fast profile's networks, data and runs; COLT's settings
per profile) and the settings a configuration refuses."""

from dataclasses import replace

import pytest

from tgkit import hparams
from tgkit.bench import throughput
from tgkit.hparams import ColtConfig, ModelSpec
from tgkit.study import runcache, sweep
from tgkit.util.errors import InputError


def test_fast_profile_runs_the_papers_networks_on_the_full_training_set():
    fast = hparams.profile("fast")
    assert (fast.teacher.arch, fast.teacher.width, fast.student.arch, fast.student.width) == (
        "resnet50",
        64,
        "resnet18",
        64,
    )
    assert fast.dataset == "cifar10" and fast.train_subset is None and fast.test_subset is None


def test_fast_profile_keeps_every_run_the_issue_names():
    runs = set(sweep.plan(hparams.profile("fast")))
    for level in (0.5046, 0.90, 0.977, 0.9841):
        assert sweep.SweepRun("teacher_guided", level, 3.0, 0) in runs
        assert sweep.SweepRun("teacher_guided", level, None, 0) in runs
    for level in (0.90, 0.9841):
        for criterion in ("magnitude", "snip", "random"):
            assert sweep.SweepRun(criterion, level, 3.0, 0) in runs
    assert sweep.SweepRun("teacher_guided", 0.9841, 5.0, 0) in runs
    assert len(runs) == 4 * 2 + 2 * 3 + 1  # and nothing more: the slot is short
    assert hparams.colt_config("fast").target_sparsity == 0.977


def test_profiles_give_the_students_network_and_documented_defaults():
    smoke, full = hparams.colt_config("smoke"), hparams.colt_config("full", target_sparsity=0.9)
    assert smoke.model == ModelSpec("resnet10", 8) and full.model == ModelSpec("resnet18", 64)
    assert (full.round_training.epochs, full.round_training.lr, full.round_training.batch_size) == (50, 0.1, 256)
    assert (full.partitions, full.prune_rate, full.target_sparsity) == (2, 0.15, 0.9)
    with pytest.raises(ValueError, match="prune_rate"):
        ColtConfig(prune_rate=1.0)


# ---- what a configuration refuses, before any work (issue 23) -----------------------------------


def test_every_profile_and_default_still_constructs():
    for name in hparams.PROFILES:
        hparams.profile(name), hparams.colt_config(name), hparams.lth_config(name)
    hparams.BenchConfig(), hparams.ClusterConfig(), hparams.DeploymentConfig()
    for defaults in throughput.DEVICE_DEFAULTS.values():
        hparams.BenchConfig(**defaults)


@pytest.mark.parametrize(
    "make, message",
    [
        # empty tuples where at least one value is needed
        (lambda: hparams.profile("smoke", sparsities=()), "sparsities is empty; it takes at least one sparsity"),
        (lambda: hparams.profile("smoke", sweep=()), "sweep is empty"),
        (lambda: hparams.profile("smoke", seeds=()), "seeds is empty; it takes at least one retraining seed"),
        (lambda: hparams.profile("smoke", temperatures=()), "temperatures is empty"),
        (lambda: hparams.profile("smoke", sweep=(0.9, 1.0)), r"sweep takes sparsities in \[0, 1\)"),
        (lambda: hparams.DeploymentConfig(batch_sizes=()), "batch_sizes is empty"),
        # non-positive counts
        (lambda: ModelSpec("resnet18", 0), "width takes a whole number >= 1"),
        (lambda: hparams.TrainConfig(epochs=0), "epochs takes a whole number >= 1, got 0"),
        (lambda: hparams.TrainConfig(batch_size=0), "batch_size takes a whole number >= 1"),
        (lambda: hparams.ScoringConfig(epochs=0), "epochs takes a whole number >= 1"),
        # refused only late before: the validation split, the retraining optimizer and schedule
        (lambda: hparams.profile("smoke", val_fraction=0.0), r"val_fraction takes a number in \(0, 1\)"),
        (lambda: hparams.TrainConfig(label_smoothing=1.0), r"label_smoothing takes a number in \[0, 1\), got 1.0"),
        (lambda: hparams.TrainConfig(bn_bias_lr_scale=0), r"bn_bias_lr_scale takes a number in \(0, inf\) \(1: no"),
        (lambda: hparams.TrainConfig(lookahead_every=-1), "lookahead_every takes a whole number >= 0"),
        (lambda: hparams.profile("smoke", val_fraction=1.0), r"val_fraction takes a number in \(0, 1\)"),
        (lambda: hparams.RetrainConfig(optimizer="adamw"), "optimizer takes one of sgd, adam"),
        (lambda: hparams.RetrainConfig(schedule="cosine"), "schedule takes one of onecycle, constant"),
        # the benchmark's flags
        (lambda: hparams.BenchConfig(steps=0), "--steps takes a whole number >= 1, got 0"),
        (lambda: hparams.BenchConfig(rounds=0), "--rounds takes a whole number >= 1, got 0"),
        (lambda: hparams.BenchConfig(batch_size=0), "--batch-size takes a whole number >= 1"),
        (lambda: hparams.BenchConfig(width=0), "--width takes a whole number >= 1"),
        (lambda: hparams.BenchConfig(warmup=-1), "--warmup takes a whole number >= 0"),
        # the sweep's cluster
        (lambda: hparams.ClusterConfig(workers=0), "--workers takes a whole number >= 1"),
        (lambda: hparams.ClusterConfig(workers=-1), "--workers takes a whole number >= 1"),
        (lambda: hparams.ClusterConfig(jobs=-1), "--jobs takes a whole number >= 1"),
    ],
)
def test_a_bad_field_is_refused_by_its_dataclass_in_one_line(make, message):
    with pytest.raises(InputError, match=message) as refused:
        make()
    assert "\n" not in str(refused.value)


def test_the_named_datasets_data_keys_did_not_change_with_the_augmentation_and_content_fields():
    """DataConfig's fields added for issue 23 (augmentation, an image folder's content) enter the run cache's key
    only when set: the smoke profile's data stage keeps the id it had before (computed then), so its cached runs
    stay valid; a set field is another key (the quick profile's 2-pixel translation since issue 19)."""
    assert runcache.stage_identity("data", hparams.profile("smoke").data, [], {})[0] == "data-db23114b320b"
    quick = hparams.profile("quick")
    assert (
        runcache.stage_identity("data", quick.data, [], {})[0]
        != runcache.stage_identity("data", hparams.profile("quick", augment_crop_padding=None).data, [], {})[0]
    )
    flipped = hparams.profile("smoke", augment_flip=False).data
    assert flipped.augment_flip is False and flipped.content is None
    assert runcache.stage_identity("data", flipped, [], {})[0] != "data-db23114b320b"


# ---- teachers of graded strength and notebook 06 (issue 22) -----------------------------------------


def smoke_of_then() -> hparams.RunConfig:
    """The smoke profile as it was when the golden stage ids below were computed: retraining for 8 epochs."""
    smoke = hparams.profile("smoke")
    return replace(smoke, retraining=replace(smoke.retraining, epochs=8))


def test_the_stages_keep_their_keys_when_no_teacher_snapshot_is_named():
    """The fields added for teacher snapshots (NetworkTraining.snapshot_epochs, ScoringStage.teacher_epoch,
    PruningStage.teacher_epoch) enter the run cache's key only when set: unset, each stage keeps the id it had
    before the fields existed (computed then); set, it is another stage."""
    smoke = smoke_of_then()
    teacher = hparams.NetworkTraining(smoke.teacher, smoke.teacher_training, None, 1)
    scores = hparams.ScoringStage("teacher_guided", smoke.scoring, None)
    pruned = hparams.PruningStage(0.9, "all", smoke.retraining, smoke.kd, 0)
    assert runcache.stage_identity("teacher", teacher, ["data-db23114b320b"], {})[0] == "teacher-1c7e0d80c98a"
    assert runcache.stage_identity("scores-teacher_guided", scores, ["student-x", "teacher-y"], {})[0] == (
        "scores-teacher_guided-783b4bbf472d"
    )
    assert runcache.stage_identity("pruned", pruned, ["a"], {})[0] == "pruned-b1a1b4405a50"
    with_snapshots = hparams.NetworkTraining(smoke.teacher, smoke.teacher_training, None, 1, (3, 5))
    assert runcache.stage_identity("teacher", with_snapshots, ["data-db23114b320b"], {})[0] != "teacher-1c7e0d80c98a"
    from_a_snapshot = hparams.PruningStage(0.9, "all", smoke.retraining, smoke.kd, 0, teacher_epoch=3)
    assert runcache.stage_identity("pruned", from_a_snapshot, ["a"], {})[0] != "pruned-b1a1b4405a50"


def test_a_training_stage_keeps_its_key_while_it_draws_whole_epochs():
    """TrainConfig.epoch_fraction enters the run cache's key only below 1: the smoke retraining's stage keeps the
    id it had before the field existed (computed then); a fraction of an epoch is another stage."""
    smoke = smoke_of_then()
    assert (
        runcache.stage_identity("pruned", hparams.PruningStage(0.9, "all", smoke.retraining, smoke.kd, 0), ["a"], {})[0]
        == "pruned-b1a1b4405a50"
    )
    short = replace(smoke.retraining, epochs=1, epoch_fraction=0.5)
    assert runcache.stage_identity("pruned", hparams.PruningStage(0.9, "all", short, smoke.kd, 0), ["a"], {})[0] != (
        "pruned-b1a1b4405a50"
    )


@pytest.mark.parametrize("lengths", [(0.05, 0.1, 0.2), (1, 2, 4), (0.5, 1, 3)])
def test_notebook_06_takes_whole_epochs_or_fractions_of_one(lengths):
    assert hparams.TeacherHelpConfig(retraining_epochs=lengths).retraining_epochs == lengths


@pytest.mark.parametrize("length", [0, 1.5, -0.1, "2"])
def test_notebook_06_refuses_a_length_neither_whole_nor_a_fraction_of_one(length):
    with pytest.raises(ValueError, match="retraining_epochs takes a whole number >= 1 .*or a fraction of one"):
        hparams.TeacherHelpConfig(retraining_epochs=(1, length))


def test_every_profile_keeps_teacher_snapshots_within_its_teachers_training():
    for name in hparams.PROFILES:
        config = hparams.profile(name)
        snapshots = config.teacher_help.snapshot_epochs
        assert len(snapshots) >= 2 and max(snapshots) < config.teacher_training.epochs  # 3 teachers or more
        assert len(config.teacher_help.retraining_epochs) >= 3
        assert config.teacher_help.sparsity in (*config.sweep, 0.9841)  # a level the student is known to reach
    assert hparams.profile("quick").teacher_help.sparsity == hparams.profile("fast").teacher_help.sparsity == 0.9841


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: hparams.TeacherHelpConfig(sparsity=1.0), r"sparsity takes sparsities in \[0, 1\)"),
        (lambda: hparams.TeacherHelpConfig(retraining_epochs=()), "retraining_epochs is empty"),
        (lambda: hparams.TeacherHelpConfig(retraining_epochs=(1, 0)), "retraining_epochs takes a whole number >= 1"),
        (lambda: hparams.TeacherHelpConfig(seeds=()), "seeds is empty"),
        (lambda: hparams.TeacherHelpConfig(snapshot_epochs=(2, 0)), "snapshot_epochs takes a whole number >= 1"),
        (lambda: hparams.TeacherHelpConfig(snapshot_epochs=(2.5,)), "snapshot_epochs takes a whole number"),
    ],
)
def test_a_bad_teacher_help_setting_is_refused_in_one_line(make, message):
    with pytest.raises(InputError, match=message) as refused:
        make()
    assert "\n" not in str(refused.value)


def test_the_quick_teacher_costs_two_to_four_times_the_students_flops():
    """Issue 19: a real capacity gap, as ResNet-50 to ResNet-18, in the CPU recipe's airbench pair."""
    from tgkit import models
    from tgkit.bench.throughput import flops_per_image

    config = hparams.profile("quick")
    teacher, student = (
        flops_per_image(models.build_model(spec.arch, 10, width=spec.width), (3, 32, 32), backward=True)
        for spec in (config.teacher, config.student)
    )
    assert 2 <= teacher / student <= 4
