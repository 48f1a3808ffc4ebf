"""`tgkit.data.loaders`: your own loaders through the kit's training loop. The golden test: a loader that
yields exactly the batches the kit's `ImageData` would trains to exactly the same weights; and every
loader the loop cannot use is refused by name, before any step."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from conftest import pruned_cnn, pruned_weights
from tgkit import models
from tgkit.data import Loaders
from tgkit.hparams import RetrainConfig, TrainConfig
from tgkit.retrainer import retrain
from tgkit.train import evaluate, fit
from tgkit.util.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")
CONFIG = TrainConfig(epochs=1, batch_size=64, lr=0.05, precision="fp32")


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build_model("smallcnn", 10, in_channels=1, width=8)


def the_kits_batches(digits) -> Loaders:
    """Epoch 0 of the kit's own training batches, and its validation and test batches, as plain lists."""
    return Loaders(
        list(digits.batches("train", CONFIG.batch_size, seed=0, epoch=0)),
        val=list(digits.batches("val", 1024)),
        test=list(digits.batches("test", 1024)),
        num_classes=10,
    )


def test_a_loader_of_the_kits_own_batches_trains_to_the_same_weights(digits):
    from_data, _ = fit(small_cnn(), digits, CONFIG, device="cpu", progress=False)
    from_loaders, history = fit(small_cnn(), the_kits_batches(digits), CONFIG, device="cpu", progress=False)
    for (name, expected), actual in zip(from_data.state_dict().items(), from_loaders.state_dict().values()):
        assert torch.equal(expected, actual), name
    assert history[0]["val_accuracy"] == evaluate(from_data, digits, "val")


def test_a_dataloader_retrains_with_the_pruned_weights_held_at_zero(digits):
    model, masks = pruned_cnn(0.8)
    images = torch.randn(96, 1, 8, 8)
    labels = torch.arange(96) % 10
    loaders = Loaders(
        DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True),
        val=DataLoader(TensorDataset(images[:32], labels[:32]), batch_size=32),
    )
    model, history = retrain(
        model, masks, loaders, config=RetrainConfig(epochs=2, lr=0.1), device="cpu", progress=False
    )
    assert len(history) == 2
    assert torch.count_nonzero(pruned_weights(model, masks)) == 0


def test_a_bare_dataloader_is_refused_naming_the_wrapper(digits):
    loader = DataLoader(TensorDataset(torch.zeros(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)), batch_size=4)
    with pytest.raises(InputError, match=r"Loaders\(train_loader, val=val_loader\)"):
        fit(small_cnn(), loader, CONFIG, device="cpu", progress=False)


def test_a_one_shot_iterator_is_refused():
    batches = [(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(InputError, match="one-shot iterator"):
        Loaders(iter(batches), val=batches)


def test_a_loader_without_a_length_needs_the_constant_schedule(digits):
    class Endless:  # re-iterable, but with no len()
        def __iter__(self):
            yield from digits.batches("train", 64)

    loaders = Loaders(Endless(), val=list(digits.batches("val", 1024)))
    with pytest.raises(InputError, match="schedule='constant'"):
        fit(small_cnn(), loaders, CONFIG, device="cpu", progress=False)
    constant = TrainConfig(epochs=1, batch_size=64, lr=0.05, schedule="constant", precision="fp32")
    _, history = fit(small_cnn(), loaders, constant, device="cpu", progress=False)
    assert len(history) == 1


def test_a_loader_of_other_than_pairs_is_refused(digits):
    triples = [(x, y, y) for x, y in digits.batches("train", 64)]
    with pytest.raises(InputError, match=r"\(inputs, labels\) pairs"):
        fit(small_cnn(), Loaders(triples, val=triples), CONFIG, device="cpu", progress=False)


def test_a_network_for_another_class_count_is_refused_before_training(digits):
    loaders = the_kits_batches(digits)
    loaders.num_classes = 7
    with pytest.raises(InputError, match="predicts 10 classes but your loaders has 7"):
        fit(small_cnn(), loaders, CONFIG, device="cpu", progress=False)


def test_a_missing_split_is_named():
    batches = [(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(InputError, match="no test loader"):
        Loaders(batches, val=batches).batches("test")
