"""`tgkit.retrainer`: sparsity-aware retraining: pruned weights stay exactly zero through any optimizer
while the kept ones train; a teacher of other classes and a loss that turns NaN fail clearly. (The
training loop and the MaskEnforcer it runs on: test_train.py.)"""

import pytest
import torch

from conftest import pruned_cnn, pruned_weights
from tgkit import masker, models
from tgkit.hparams import RetrainConfig
from tgkit.retrainer import retrain


@pytest.mark.parametrize("optimizer, weight_decay", [("sgd", 5e-4), ("sgd", 0.0), ("adam", 1e-2)])
def test_pruned_weights_stay_zero_through_retraining(digits, optimizer, weight_decay):
    model, masks = pruned_cnn()
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


def test_retrain_with_teacher_of_other_classes_fails_clearly(digits):
    student, masks = pruned_cnn()
    teacher = models.build_model("smallcnn", 5, in_channels=1, width=8)
    with pytest.raises(ValueError, match="same dataset"):
        retrain(student, masks, digits, teacher=teacher, config=RetrainConfig(epochs=1), device="cpu")


def test_nan_loss_stops_with_a_clear_error(digits, tmp_path):
    model, masks = pruned_cnn()
    with torch.no_grad():
        model[-1].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        retrain(model, masks, digits, config=RetrainConfig(epochs=1), device="cpu", progress=False)
