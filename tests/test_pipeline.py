"""`tgkit.study.pipeline`, end to end: the cached pipeline (`Experiment`) on digits (smoke profile) and on
real CIFAR-10, the run cache's edges met through it, and the command line's summary of a whole run (on the
stages the smoke Experiment here has cached). The command line's errors: test_cli.py."""

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import make_tree, require_dataset, save_image, stage_folders
from tgkit import hparams, masker
from tgkit.data import Augment
from tgkit.hparams import KDConfig, RetrainConfig, ScoringConfig, TrainConfig
from tgkit.study import cli, runcache
from tgkit.study.pipeline import Experiment
from tgkit.util import checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def smoke(runs_dir):
    return Experiment(hparams.profile("smoke"), runs_dir=runs_dir, device="cpu", progress=False)


def test_smoke_teacher_is_accurate(smoke):
    assert smoke.teacher_result()["test_accuracy"] >= 0.95


def test_smoke_teacher_guided_90_percent_with_kd(smoke):
    result = smoke.pruned_result("teacher_guided", 0.9, kd=True)
    assert result["sparsity_all"] == pytest.approx(0.9, abs=1e-3)
    assert result["test_accuracy"] >= 0.90
    parameters = dict(result["model"].named_parameters())
    assert all(torch.count_nonzero(parameters[n][~keep]) == 0 for n, keep in result["masks"].items())


def test_same_configuration_reuses_every_stage(smoke, runs_dir):
    smoke.pruned_result("teacher_guided", 0.9, kd=True)
    again = Experiment(hparams.profile("smoke"), runs_dir=runs_dir, device="cpu", progress=False)
    first = again.pruned_result("teacher_guided", 0.9, kd=True)
    assert again.timings and all(t["cached"] for t in again.timings)
    assert first["test_accuracy"] == smoke.pruned_result("teacher_guided", 0.9, kd=True)["test_accuracy"]


def test_changed_configuration_recomputes_only_what_it_affects(smoke, runs_dir):
    smoke.pruned_result("teacher_guided", 0.9, kd=True)
    config = hparams.profile("smoke")
    config = replace(config, retraining=replace(config.retraining, epochs=1))
    changed = Experiment(config, runs_dir=runs_dir, device="cpu", progress=False)
    changed.pruned_result("teacher_guided", 0.9, kd=True)
    cached = {t["stage"]: t["cached"] for t in changed.timings}
    assert cached == {"teacher": True, "student": True, "scores-teacher_guided": True, "pruned": False}


def test_corrupt_stage_result_is_reported_not_destroyed(runs_dir, smoke):
    smoke.teacher_result()
    result_file = next(runs_dir.glob("teacher-*/result.pt"))
    saved = result_file.read_bytes()
    try:
        result_file.write_bytes(b"\x00garbage")
        with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
            Experiment(hparams.profile("smoke"), runs_dir=runs_dir, device="cpu", progress=False).teacher_result()
        assert result_file.read_bytes() == b"\x00garbage"
    finally:
        result_file.write_bytes(saved)


def test_cli_prints_the_summary_table(runs_dir, capsys, tmp_path):
    output = tmp_path / "table.csv"
    assert (
        cli.main(
            [
                "run",
                "--profile",
                "smoke",
                "--sparsity",
                "0.9",
                "--runs-dir",
                str(runs_dir),
                "--device",
                "cpu",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    for method in ("teacher", "dense student", "teacher-guided", "magnitude", "random"):
        assert method in printed
    assert output.read_text().startswith("method,")


@pytest.mark.data
def test_cifar10_teacher_guided_beats_random_at_90_percent(tmp_path):
    """Real data, the quick profile's networks and recipe on a tenth of the images for a few epochs: the
    teacher-guided mask keeps what matters, a random one does not."""
    require_dataset("cifar10")
    short = hparams.cpu_recipe(epochs=4, batch_size=128)
    config = replace(
        hparams.profile("quick"),
        train_subset=5000,
        test_subset=2000,
        teacher_training=short,
        student_training=short,
        retraining=hparams.cpu_recipe(epochs=1, kind=RetrainConfig, batch_size=128, lr=0.4),
        scoring=ScoringConfig(epochs=1),
    )
    experiment = Experiment(config, runs_dir=tmp_path, device="cpu", progress=False)
    guided = experiment.pruned_result("teacher_guided", 0.9, kd=True)["test_accuracy"]
    random = experiment.pruned_result("random", 0.9, kd=True)["test_accuracy"]
    print(
        f"dense student {experiment.student_result()['test_accuracy']:.3f}, "
        f"teacher-guided {guided:.3f}, random {random:.3f}"
    )
    assert guided >= random + 0.10


# ---- the run cache's edges, met through the Experiment --------------------------------------------


def tiny_config():
    """The smoke profile trained for a moment: a stage costs about a second."""
    config = hparams.profile("smoke")
    quick = replace(config.teacher_training, epochs=2)
    return replace(
        config,
        teacher_training=quick,
        student_training=quick,
        student_kd=None,
        retraining=replace(config.retraining, epochs=1),
        scoring=replace(config.scoring, epochs=1),
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda e: e.scores("teacher_guided", scoring_temperature=0),
            "scoring_temperature must be a finite number > 0",
        ),
        (lambda e: e.scores("teacher_guided", scoring_temperature=-3.0), "scoring_temperature"),
        (lambda e: e.pruned_result("teacher_guided", 0.9, retraining_temperature=0), "retraining_temperature must be"),
        (lambda e: e.pruned_result("teacher_guided", 0.9, kd=False, retraining_temperature=3.0), "pass kd=True"),
        (lambda e: e.pruned_result("teacher_guided", 0.9999), "unreachable"),
        (lambda e: e.pruned_result("no_such_criterion", 0.9), "unknown criterion"),
        (lambda e: e.pruned_result("teacher_guided", 0.9, teacher_epoch=7), r"teacher_epoch 7: .* epochs \(\)"),
        (lambda e: e.pruned_result("teacher_guided", 0.9, kd=False, kd_settings=KDConfig()), "pass kd=True"),
        (lambda e: e.pruned_result("teacher_guided", 0.9, kd_settings=KDConfig(order="x")), "order must be"),
        (lambda e: e.pruned_result("teacher_guided", 0.9, retraining_epochs=0), "epochs takes a whole number"),
        (lambda e: e.pruned_result("teacher_guided", 0.9, retraining_epochs=1.5), "epochs takes a whole number"),
        (lambda e: e.scores("teacher_guided", teacher_epoch=1), "teacher_epoch 1"),
    ],
)
def test_bad_requests_fail_before_any_stage_folder_exists(tmp_path, call, message):
    experiment = Experiment(tiny_config(), runs_dir=tmp_path / "runs", device="cpu", progress=False)
    with pytest.raises(ValueError, match=message):
        call(experiment)
    assert stage_folders(tmp_path / "runs") == []


def test_none_means_the_profiles_temperature(tmp_path):
    experiment = Experiment(tiny_config(), runs_dir=tmp_path, device="cpu", progress=False)
    default = experiment.scores_stage("teacher_guided").id
    assert experiment.scores_stage("teacher_guided", scoring_temperature=3.0).id == default  # the profile's own T
    assert experiment.scores_stage("teacher_guided", scoring_temperature=5.0).id != default


def test_loading_a_cached_network_leaves_torchs_global_generator_as_it_was(tmp_path):
    """Building a network draws its initial weights from `init_seed`; loading a cached one builds it too,
    and must not reseed the caller's random numbers on the way."""
    experiment = Experiment(tiny_config(), runs_dir=tmp_path, device="cpu", progress=False)
    trained = experiment.teacher()  # computed now, then loaded from the stage's file
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    loaded = Experiment(tiny_config(), runs_dir=tmp_path, device="cpu", progress=False).teacher()
    assert torch.equal(torch.rand(4), expected)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()))


@pytest.mark.parametrize("stage, product", [("teacher", "model.pt"), ("scores-magnitude", "scores.pt")])
def test_a_truncated_product_names_its_folder_and_a_rerun_after_deleting_it_recomputes(tmp_path, stage, product):
    def run() -> float:
        experiment = Experiment(tiny_config(), runs_dir=tmp_path, device="cpu", progress=False)
        experiment.scores("magnitude")
        return experiment.teacher_result()["test_accuracy"]

    first = run()
    (folder,) = tmp_path.glob(f"{stage}-*")
    damaged = folder / product
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(checkpoint.CheckpointError, match=f"Delete that folder \\(rm -r {folder}\\)"):
        run()
    assert len(damaged.read_bytes()) == 100  # reported, not destroyed
    shutil.rmtree(folder)
    assert run() == first


def kill_the_teacher_after_two_epochs(config, runs_dir, monkeypatch) -> None:
    """Train the teacher of `config` until its second epoch's checkpoint, then kill it (KeyboardInterrupt)."""
    real, calls = runcache.Stage.checkpointed, []

    def killed_after_two_epochs(stage):
        real(stage)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(runcache.Stage, "checkpointed", killed_after_two_epochs)
        with pytest.raises(KeyboardInterrupt):
            Experiment(config, runs_dir=runs_dir, device="cpu", progress=False).teacher_result()


def test_a_killed_stage_resumes_and_counts_the_time_of_both_attempts(tmp_path, monkeypatch):
    config = replace(tiny_config(), teacher_training=replace(tiny_config().teacher_training, epochs=3))
    kill_the_teacher_after_two_epochs(config, tmp_path, monkeypatch)
    resumed = Experiment(config, runs_dir=tmp_path, device="cpu", progress=False).teacher_result()
    epochs = resumed["history"]
    assert [epoch["epoch"] for epoch in epochs] == [1, 2, 3]
    # every epoch's time is in the stage's, the two killed-and-kept ones included
    assert resumed["seconds"] >= sum(epoch["seconds"] for epoch in epochs)


def test_each_stage_has_one_timing_row(smoke):
    smoke.pruned_result("teacher_guided", 0.9, kd=True)
    smoke.pruned_result("teacher_guided", 0.9, kd=True)
    ids = [row["id"] for row in smoke.timings]
    assert len(ids) == len(set(ids))


def test_colt_runs_in_the_run_cache_beside_the_one_shot_stages(tmp_path):
    config = tiny_config()
    settings = replace(
        config.colt,
        target_sparsity=0.5,
        round_training=replace(config.colt.round_training, epochs=1),
        final_training=replace(config.colt.final_training, epochs=1),
    )
    first = Experiment(config, runs_dir=tmp_path, device="cpu", progress=False).colt_result(settings)
    again = Experiment(config, runs_dir=tmp_path, device="cpu", progress=False).colt_result(settings)
    assert not first["cached"] and again["cached"]
    assert all(record["cached"] for record in again["rounds"]) and again["ticket"]["cached"]
    assert again["ticket"]["test_accuracy"] == first["ticket"]["test_accuracy"]
    assert masker.global_sparsity(again["model"], again["mask"]) == pytest.approx(0.5, abs=1e-3)
    assert len(list(tmp_path.glob("colt-*"))) == 1


def test_a_batch_larger_than_the_training_set_fails_before_any_stage(tmp_path):
    """Digits' smoke splits hold 1,293 training images: a teacher batch of 2,000 is refused while loading the
    data, naming the setting, both numbers and the fix, and no stage folder is made."""
    config = hparams.profile("smoke", teacher_training=TrainConfig(epochs=1, batch_size=2000))
    experiment = Experiment(config, runs_dir=tmp_path, device="cpu", progress=False)
    with pytest.raises(
        ValueError, match=r"teacher_training.batch_size 2000 is larger .* \(1293 images\).*at most 1293"
    ):
        experiment.teacher_result()
    assert not any(tmp_path.iterdir())


def test_the_data_stage_is_keyed_by_an_image_folders_content(tmp_path):
    """Moving an image to another class folder (a label fix) or adding one makes a new data stage, so every
    stage on top of it is computed again; the folder unchanged keeps it."""
    make_tree(tmp_path / "tree")
    config = hparams.profile("smoke", dataset=f"imagefolder:{tmp_path / 'tree'}")

    def data_id():
        return Experiment(config, runs_dir=tmp_path / "runs", device="cpu", progress=False).data_id

    first = data_id()
    assert data_id() == first
    (tmp_path / "tree" / "train" / "cat" / "0.png").rename(tmp_path / "tree" / "train" / "ant" / "9.png")
    moved = data_id()
    save_image(tmp_path / "tree" / "test" / "bee" / "7.png", np.zeros((6, 6, 3), dtype=np.uint8))
    assert len({first, moved, data_id()}) == 3


def test_the_augmentation_keys_the_data_stage_and_reaches_the_data(tmp_path):
    """Digits' default (pad 1, no flip) stays the smoke profile's, under the key it had before the setting
    existed (test_hparams.py); a set augmentation is another data stage, and the batches use it."""
    ids, augments = set(), []
    for overrides in ({}, {"augment_flip": True}, {"augment_crop_padding": 0}):
        experiment = Experiment(hparams.profile("smoke", **overrides), runs_dir=tmp_path, device="cpu", progress=False)
        ids.add(experiment.data_id)
        augments.append(experiment.data.augment)
    assert len(ids) == 3
    assert augments == [Augment(1, False), Augment(1, True), Augment(0, False)]


# ---- teachers of graded strength: snapshots of the one teacher training (issue 22) ----------------


def with_snapshots(config, *epochs):
    return replace(config, teacher_help=replace(config.teacher_help, snapshot_epochs=epochs))


def test_teacher_snapshots_are_states_of_the_one_training_and_change_nothing_else(tmp_path):
    """A snapshot's validation accuracy is the one its epoch recorded in the history (the same weights, evaluated
    the same way); taking snapshots draws no random number, so the trained teacher is the one a training
    without snapshots gives; and the run cache holds one teacher stage, its snapshots inside."""
    experiment = Experiment(with_snapshots(tiny_config(), 1), runs_dir=tmp_path / "a", device="cpu", progress=False)
    (snapshot,) = experiment.teacher_snapshots()
    history = experiment.teacher_result()["history"]
    assert snapshot["epoch"] == 1 and snapshot["val_accuracy"] == history[0]["val_accuracy"]
    assert 0 <= snapshot["test_accuracy"] <= 1 and not snapshot["model"].training
    (folder,) = (tmp_path / "a").glob("teacher-*")
    assert (folder / "snapshot-epoch1.pt").is_file() and not list(folder.glob(".*.tmp"))
    plain = Experiment(tiny_config(), runs_dir=tmp_path / "b", device="cpu", progress=False).teacher()
    with_them = experiment.teacher()
    assert all(torch.equal(value, plain.state_dict()[key]) for key, value in with_them.state_dict().items())
    assert experiment.dense_stages()[0].id != Experiment(tiny_config(), runs_dir=tmp_path).dense_stages()[0].id
    assert Experiment(tiny_config(), runs_dir=tmp_path / "b").teacher_snapshots() == []


def test_teacher_snapshots_survive_a_resume(tmp_path, monkeypatch):
    """Killed after its second epoch's checkpoint, the teacher keeps the snapshot of epoch 1 (written then, not
    again) and writes that of epoch 3 once resumed."""
    config = with_snapshots(
        replace(tiny_config(), teacher_training=replace(tiny_config().teacher_training, epochs=3)), 1, 3
    )
    kill_the_teacher_after_two_epochs(config, tmp_path, monkeypatch)
    (folder,) = tmp_path.glob("teacher-*")
    first = folder / "snapshot-epoch1.pt"
    written = first.stat().st_mtime_ns
    assert not (folder / "snapshot-epoch3.pt").exists()
    resumed = Experiment(config, runs_dir=tmp_path, device="cpu", progress=False)
    snapshots = resumed.teacher_snapshots()
    assert [s["epoch"] for s in snapshots] == [1, 3] and first.stat().st_mtime_ns == written
    history = resumed.teacher_result()["history"]
    assert [s["val_accuracy"] for s in snapshots] == [history[0]["val_accuracy"], history[2]["val_accuracy"]]


def test_a_pruned_run_names_a_teacher_snapshot_its_length_and_its_kd_loss(tmp_path):
    """Each of them is another stage of the run cache (scores of the snapshot, retraining from it, the length, the
    loss); asked again, each is read back; and a magnitude run with CE ignores the teacher's snapshot."""
    config = with_snapshots(tiny_config(), 1)

    def experiment():
        return Experiment(config, runs_dir=tmp_path, device="cpu", progress=False)

    plain = experiment().pruned_stage("teacher_guided", 0.5)
    variants = [
        dict(teacher_epoch=1),
        dict(retraining_epochs=2),
        dict(retraining_epochs=0.5),
        dict(kd_settings=KDConfig(order="plain", beta=0.0)),
        dict(kd=False, teacher_epoch=1),
    ]
    ids = {plain.id} | {experiment().pruned_stage("teacher_guided", 0.5, **v).id for v in variants}
    assert len(ids) == 1 + len(variants)
    half = experiment().pruned_stage("teacher_guided", 0.5, retraining_epochs=0.5).config.retraining
    assert (half.epochs, half.epoch_fraction) == (1, 0.5)  # a fraction of an epoch: one epoch drawing that share
    assert experiment().pruned_stage("magnitude", 0.5, kd=False, teacher_epoch=1).id == (
        experiment().pruned_stage("magnitude", 0.5, kd=False).id
    )
    first = experiment().pruned_result("teacher_guided", 0.5, teacher_epoch=1, retraining_epochs=2)
    assert len(first["history"]) == 2 and not first["cached"]
    snapshot_scores = experiment().scores("teacher_guided", teacher_epoch=1)
    trained_scores = experiment().scores("teacher_guided")
    assert any(not torch.equal(snapshot_scores[name], trained_scores[name]) for name in trained_scores)
    again = experiment()
    assert again.pruned_result("teacher_guided", 0.5, teacher_epoch=1, retraining_epochs=2)["cached"]
    assert (
        again.pruned_result("teacher_guided", 0.5, teacher_epoch=1, retraining_epochs=2)["test_accuracy"]
        == (first["test_accuracy"])
    )
