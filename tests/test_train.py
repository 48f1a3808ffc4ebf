"""`tgkit.train`: the one training loop (`fit`) and the `MaskEnforcer` that keeps pruned weights at zero:
the optimizers' moments zeroed where the mask prunes, the weights' regrowth without it, resuming from an
epoch checkpoint to the same weights, and the inputs it refuses by name. (bf16 training: test_precision.py.)"""

import pytest
import torch

from conftest import pruned_cnn, pruned_weights
from tgkit import masker, models, scorer, train
from tgkit.hparams import TrainConfig
from tgkit.lookahead import Lookahead
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


def training_passes(model) -> list[int]:
    """The batch sizes of the forward passes `model` makes in training mode (its steps), as a list that fills."""
    sizes = []
    model.register_forward_hook(
        lambda module, inputs, output: sizes.append(len(inputs[0])) if module.training else None
    )
    return sizes


@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_an_epoch_fraction_trains_that_share_of_an_epochs_steps(digits, fraction):
    """digits' training split at batch 64 is 20 steps (the last incomplete batch dropped); a quarter of an epoch is
    5 of them, a half 10, the whole 20, in each epoch: a fresh draw of that many batches."""
    model = models.build_model("smallcnn", 10, in_channels=1, width=4)
    steps = training_passes(model)
    config = TrainConfig(epochs=2, batch_size=64, epoch_fraction=fraction)
    _, history = fit(model, digits, config, device="cpu", progress=False)
    whole = len(digits.train_y) // 64
    assert whole == 20 and len(history) == 2
    assert steps == [64] * 2 * {0.25: 5, 0.5: 10, 1.0: 20}[fraction]


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_an_epoch_fraction_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(ValueError, match=r"epoch_fraction takes a number in \(0, 1\]"):
        TrainConfig(epoch_fraction=fraction)


# --------------------------------------------------------------------------------------------------
# the CPU recipe's tricks: lookahead, the BatchNorm shifts' learning rate


def random_images(n: int = 64, size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Eight batches of random 16 px images with random labels: airbench takes no 8 px digit."""
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, size, size, generator=generator), torch.randint(0, 10, (n,), generator=generator)
    return [(x[i : i + 8], y[i : i + 8]) for i in range(0, n, 8)]


def test_lookahead_moves_the_weights_to_the_slow_average_on_its_schedule():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    lookahead = Lookahead(model, every=2, total_steps=4)  # slow = 0
    model.weight.data.fill_(1.0)
    lookahead.step()  # step 1 of every 2: nothing
    assert model.weight.item() == 1.0
    lookahead.step()  # step 2: decay d = 0.95^2 (2/4)^3, slow = d * 0 + (1 - d) * 1, and the weight = slow
    assert model.weight.item() == pytest.approx(1 - 0.95**2 * 0.125)
    assert lookahead.slow["weight"].item() == pytest.approx(1 - 0.95**2 * 0.125)


def test_lookahead_never_revives_a_pruned_weight():
    from tgkit.data import Loaders

    batches = random_images()
    config = TrainConfig(epochs=3, batch_size=8, lr=0.05, weight_decay=5e-3, lookahead_every=2, bn_bias_lr_scale=64)
    trained = {}
    for every in (2, 0):
        torch.manual_seed(0)
        model = models.build_model("airbench", 10, width=8)
        masks = masker.global_masks(scorer.random_scores(model, seed=0), 0.5)
        masker.apply_masks(model, masks)
        config.lookahead_every = every
        trained[every], history = fit(
            model, Loaders(batches, val=batches), config, masks=masks, device="cpu", progress=False
        )
        assert history[-1]["loss"] < history[0]["loss"]  # it learns: the weights that are kept do move
        assert torch.count_nonzero(pruned_weights(trained[every], masks)) == 0
    assert not torch.equal(trained[2].fc.weight, trained[0].fc.weight)  # the averaging did act


def test_the_batchnorm_shifts_get_their_own_learning_rate_and_weight_decay():
    model = models.build_model("airbench", 10, width=4)
    optimizer = train._make_optimizer(model, TrainConfig(lr=0.5, weight_decay=1e-3, bn_bias_lr_scale=64))
    rest, shifts = optimizer.param_groups
    bn_shifts = [m.bias for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert [id(p) for p in shifts["params"]] == [id(p) for p in bn_shifts]
    assert shifts["lr"] == 32 and shifts["weight_decay"] == pytest.approx(1e-3 / 64) and rest["lr"] == 0.5
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(rest["params"]) + len(shifts["params"]) == len(trainable)  # the frozen BatchNorm scales in neither
    assert len(train._make_optimizer(model, TrainConfig()).param_groups) == 1


def test_resuming_restores_the_lookahead_too(tmp_path, monkeypatch):
    """Killed after its first epoch and resumed, a training with lookahead ends on the uninterrupted weights."""
    from tgkit import train as train_module
    from tgkit.data import Loaders

    data = Loaders(random_images(), val=random_images())
    config = TrainConfig(epochs=2, batch_size=8, lr=0.3, lookahead_every=3)

    def run(resume=None):
        torch.manual_seed(0)
        return fit(
            models.build_model("airbench", 10, width=4), data, config, device="cpu", progress=False, resume=resume
        )

    uninterrupted, _ = run()
    real_evaluate, calls = train_module.evaluate, []

    def evaluate_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", evaluate_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "training.ckpt")
    monkeypatch.setattr(train_module, "evaluate", real_evaluate)
    resumed, _ = run(tmp_path / "training.ckpt")
    for a, b in zip(uninterrupted.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)
