"""End to end: the cached pipeline on digits (smoke profile) and on real CIFAR-10, and the CLI."""
from dataclasses import replace

import pytest
import torch

from conftest import require_dataset
from tgkit import checkpoint, cli, profiles
from tgkit.pipeline import Experiment
from tgkit.profiles import ModelSpec, ScoringConfig
from tgkit.retrainer import RetrainConfig
from tgkit.train import TrainConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def smoke(runs_dir):
    return Experiment(profiles.profile("smoke"), runs_dir=runs_dir, device="cpu", progress=False)


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
    again = Experiment(profiles.profile("smoke"), runs_dir=runs_dir, device="cpu", progress=False)
    first = again.pruned_result("teacher_guided", 0.9, kd=True)
    assert again.timings and all(t["cached"] for t in again.timings)
    assert first["test_accuracy"] == smoke.pruned_result("teacher_guided", 0.9, kd=True)["test_accuracy"]


def test_changed_configuration_recomputes_only_what_it_affects(smoke, runs_dir):
    smoke.pruned_result("teacher_guided", 0.9, kd=True)
    config = profiles.profile("smoke")
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
            Experiment(profiles.profile("smoke"), runs_dir=runs_dir, device="cpu", progress=False).teacher_result()
        assert result_file.read_bytes() == b"\x00garbage"
    finally:
        result_file.write_bytes(saved)


def test_cli_prints_the_summary_table(runs_dir, capsys, tmp_path):
    output = tmp_path / "table.csv"
    assert cli.main(["run", "--profile", "smoke", "--sparsity", "0.9", "--runs-dir", str(runs_dir),
                     "--device", "cpu", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    for method in ("teacher", "dense student", "teacher-guided", "magnitude", "random"):
        assert method in printed
    assert output.read_text().startswith("method,")


@pytest.mark.parametrize("argv, message", [
    (["--sparsity", "1.5"], "outside [0, 1)"),
    (["--sparsity", "-0.1"], "outside [0, 1)"),
])
def test_cli_rejects_bad_sparsity(argv, message):
    with pytest.raises(SystemExit, match=message.replace("[", r"\[").replace(")", r"\)")):
        cli.main(["run", "--profile", "smoke", *argv])


def test_cli_unknown_dataset_fails_clearly(capsys, tmp_path):
    assert cli.main(["run", "--dataset", "mnist", "--runs-dir", str(tmp_path)]) == 2
    assert "digits" in capsys.readouterr().err


@pytest.mark.data
def test_cifar10_teacher_guided_beats_random_at_90_percent(tmp_path):
    """Real data, short training: the teacher-guided mask keeps what matters, a random one does not."""
    require_dataset("cifar10")
    fast = TrainConfig(epochs=4, batch_size=128, lr=0.1)
    config = replace(
        profiles.profile("quick"), train_subset=5000, teacher=ModelSpec("resnet10", 16),
        student=ModelSpec("resnet10", 16), teacher_training=fast, student_training=fast,
        retraining=RetrainConfig(epochs=1, batch_size=128, lr=0.02), scoring=ScoringConfig(epochs=1))
    experiment = Experiment(config, runs_dir=tmp_path, device="cpu", progress=False)
    guided = experiment.pruned_result("teacher_guided", 0.9, kd=True)["test_accuracy"]
    random = experiment.pruned_result("random", 0.9, kd=True)["test_accuracy"]
    print(f"dense student {experiment.student_result()['test_accuracy']:.3f}, "
          f"teacher-guided {guided:.3f}, random {random:.3f}")
    assert guided >= random + 0.10
