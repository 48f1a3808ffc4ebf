"""`tgkit.train`: the one training loop (`fit`) and the `MaskEnforcer` that keeps pruned weights at zero:
the optimizers' moments zeroed where the mask prunes, the weights' regrowth without it, resuming from an
epoch checkpoint to the same weights, and the inputs it refuses by name. (bf16 training: test_precision.py.)"""

import pytest
import torch

from conftest import pruned_cnn, pruned_weights
from tgkit import masker, models
from tgkit.hparams import TrainConfig
from tgkit.train import MaskEnforcer, fit
from tgkit.util import checkpoint


def test_without_the_enforcer_pruned_weights_regrow(digits):
    """The retrainer's invariant (test_retrainer.py) is not vacuous: plain training moves zeroed weights."""
    model, masks = pruned_cnn()
    masker.apply_masks(model, masks)
    model, _ = fit(model, digits, TrainConfig(epochs=1, batch_size=64, lr=0.05), device="cpu", progress=False)
    assert torch.count_nonzero(pruned_weights(model, masks)) > 0


def test_enforcer_zeroes_momentum_and_adam_moments(digits):
    model, masks = pruned_cnn()
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


@pytest.mark.parametrize("every_s, checkpoints", [(0.0, [1, 2, 3]), (1e9, [])])
def test_resume_checkpoints_follow_their_interval(digits, tmp_path, every_s, checkpoints):
    """0 s: one checkpoint after every epoch (the CPU's policy); an interval no epoch reaches: none at all
    (a GPU's one-a-minute policy on a run shorter than a minute). Each checkpoint is announced once."""
    resume = tmp_path / "training.ckpt"
    saved_epochs = []

    def after_checkpoint():
        saved_epochs.append(checkpoint.load_checkpoint(resume)["state"]["epoch"])

    fit(
        models.build_model("smallcnn", 10, in_channels=1, width=8),
        digits,
        TrainConfig(epochs=3, batch_size=64, lr=0.05),
        device="cpu",
        resume=resume,
        progress=False,
        after_checkpoint=after_checkpoint,
        checkpoint_every_s=every_s,
    )
    assert saved_epochs == checkpoints
    assert resume.exists() == bool(checkpoints)


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


def test_a_batch_larger_than_the_training_set_is_refused_naming_both_numbers(digits):
    """One step per epoch trains next to nothing (a teacher at 18% instead of 98%): refused before any step."""
    images = len(digits.train_y)
    model = models.build_model("smallcnn", 10, in_channels=1, width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(
        ValueError, match=rf"batch_size {images + 1} is larger .* \({images} images\).* at most {images}"
    ):
        fit(model, digits, TrainConfig(epochs=1, batch_size=images + 1), device="cpu", progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "refused before any step"
    _, history = fit(model, digits, TrainConfig(epochs=1, batch_size=images), device="cpu", progress=False)
    assert len(history) == 1, "a batch of the whole training set is still allowed"
