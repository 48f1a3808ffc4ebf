"""Sparsity-aware retraining: pruned weights stay exactly zero through any optimizer; bad input fails clearly."""

import pytest
import torch

from tgkit import data, masker, models, scorer
from tgkit.hparams import RetrainConfig, TrainConfig
from tgkit.retrainer import retrain
from tgkit.train import MaskEnforcer, fit
from tgkit.util import checkpoint


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits", progress=False)


def pruned_cnn(digits, sparsity=0.8):
    torch.manual_seed(0)
    model = models.build_model("smallcnn", 10, in_channels=1, width=8)
    masks = masker.global_masks(scorer.random_scores(model, seed=0), sparsity)
    return model, masks


def pruned_weights(model, masks):
    parameters = dict(model.named_parameters())
    return torch.cat([parameters[name].detach()[~keep] for name, keep in masks.items()])


@pytest.mark.parametrize("optimizer, weight_decay", [("sgd", 5e-4), ("sgd", 0.0), ("adam", 1e-2)])
def test_pruned_weights_stay_zero_through_retraining(digits, optimizer, weight_decay):
    model, masks = pruned_cnn(digits)
    config = RetrainConfig(epochs=2, batch_size=64, lr=0.05, optimizer=optimizer, weight_decay=weight_decay)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model, history = retrain(model, masks, digits, config=config, device="cpu", progress=False)
    assert len(history) == 2
    assert torch.count_nonzero(pruned_weights(model, masks)) == 0
    kept_changed = any(
        not torch.equal(p[masks[n]], before[n][masks[n]]) for n, p in model.named_parameters() if n in masks
    )
    assert kept_changed, "the surviving weights must have been trained"
    assert masker.global_sparsity(model) == pytest.approx(masker.global_sparsity(model, masks))


def test_without_the_enforcer_pruned_weights_regrow(digits):
    """The invariant above is not vacuous: plain training moves zeroed weights."""
    model, masks = pruned_cnn(digits)
    masker.apply_masks(model, masks)
    model, _ = fit(model, digits, TrainConfig(epochs=1, batch_size=64, lr=0.05), device="cpu", progress=False)
    assert torch.count_nonzero(pruned_weights(model, masks)) > 0


def test_enforcer_zeroes_momentum_and_adam_moments(digits):
    model, masks = pruned_cnn(digits)
    for optimizer in (
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3),
        torch.optim.AdamW(model.parameters(), lr=0.01),
    ):
        enforcer = MaskEnforcer(model, masks)
        enforcer.attach(optimizer)
        x, y = next(iter(digits.batches("train", 32)))
        torch.nn.functional.cross_entropy(model(x), y).backward()
        enforcer.before_step()
        optimizer.step()
        enforcer.after_step()
        parameters = dict(model.named_parameters())
        for name, keep in masks.items():
            for value in optimizer.state[parameters[name]].values():
                if value.shape == keep.shape:
                    assert torch.count_nonzero(value[~keep]) == 0
        model.zero_grad()


def test_retrain_with_teacher_of_other_classes_fails_clearly(digits):
    student, masks = pruned_cnn(digits)
    teacher = models.build_model("smallcnn", 5, in_channels=1, width=8)
    with pytest.raises(ValueError, match="same dataset"):
        retrain(student, masks, digits, teacher=teacher, config=RetrainConfig(epochs=1), device="cpu")


def test_nan_loss_stops_with_a_clear_error(digits, tmp_path):
    model, masks = pruned_cnn(digits)
    with torch.no_grad():
        model[-1].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        retrain(model, masks, digits, config=RetrainConfig(epochs=1), device="cpu", progress=False)


def test_training_resumes_from_its_epoch_checkpoint(digits, tmp_path, monkeypatch):
    config = TrainConfig(epochs=3, batch_size=64, lr=0.05)
    torch.manual_seed(0)
    uninterrupted, history = fit(
        models.build_model("smallcnn", 10, in_channels=1, width=8), digits, config, device="cpu", progress=False
    )

    from tgkit import train

    real_evaluate = train.evaluate
    calls = []

    def evaluate_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during the second epoch's validation
        return real_evaluate(*args, **kwargs)

    resume = tmp_path / "training.ckpt"
    monkeypatch.setattr(train, "evaluate", evaluate_then_die)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(
            models.build_model("smallcnn", 10, in_channels=1, width=8),
            digits,
            config,
            device="cpu",
            resume=resume,
            progress=False,
        )
    assert checkpoint.load_checkpoint(resume)["state"]["epoch"] == 1
    monkeypatch.setattr(train, "evaluate", real_evaluate)
    resumed, resumed_history = fit(
        models.build_model("smallcnn", 10, in_channels=1, width=8),
        digits,
        config,
        device="cpu",
        resume=resume,
        progress=False,
    )
    assert [h["epoch"] for h in resumed_history] == [1, 2, 3]
    assert [h["val_accuracy"] for h in resumed_history] == pytest.approx([h["val_accuracy"] for h in history])
    for a, b in zip(uninterrupted.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_corrupt_resume_checkpoint_fails_clearly(digits, tmp_path):
    resume = tmp_path / "training.ckpt"
    resume.write_bytes(b"not a checkpoint")
    model = models.build_model("smallcnn", 10, in_channels=1, width=8)
    with pytest.raises(checkpoint.CheckpointError, match="delete it"):
        fit(model, digits, TrainConfig(epochs=1), device="cpu", resume=resume, progress=False)
    assert resume.read_bytes() == b"not a checkpoint", "a bad file is reported, never destroyed"


def test_a_network_built_for_fewer_classes_than_the_data_is_refused_by_name(digits):
    five_way = models.build_model("smallcnn", 5, in_channels=1, width=4)
    with pytest.raises(ValueError, match="predicts 5 classes but digits has 10"):
        fit(five_way, digits, TrainConfig(epochs=1, batch_size=64), device="cpu", progress=False)
