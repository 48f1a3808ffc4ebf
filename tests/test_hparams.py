"""`tgkit.hparams`: what the profiles hold (the fast profile's networks, data and runs; COLT's settings
per profile) and the settings a configuration refuses."""

import pytest

from tgkit import hparams
from tgkit.hparams import ColtConfig, ModelSpec
from tgkit.study import sweep


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
