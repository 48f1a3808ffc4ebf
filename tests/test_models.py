"""`tgkit.models`: the adapter for a network whose forward returns more than its logits. Unwrapped, such a
network is refused by name at its first batch wherever the kit calls it, before any weight moves;
wrapped in `PickLogits`, it trains, scores and predicts like any other."""

import pytest
import torch
from torch import nn

from tgkit import models, scorer
from tgkit.hparams import ScoringConfig, TrainConfig
from tgkit.models import PickLogits, logits_of
from tgkit.train import evaluate, fit
from tgkit.util.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")
CONFIG = TrainConfig(epochs=1, batch_size=64, lr=0.05, precision="fp32")


class WithFeatures(nn.Module):
    """The kit's small CNN, returning (logits, features) or {"logits", "features"}."""

    def __init__(self, as_dict: bool = False):
        super().__init__()
        torch.manual_seed(0)
        network = models.build_model("smallcnn", 10, in_channels=1, width=8)
        self.body, self.head, self.as_dict = nn.Sequential(*list(network)[:-1]), network[-1], as_dict

    def forward(self, x):
        features = self.body(x)
        logits = self.head(features)
        return {"logits": logits, "features": features} if self.as_dict else (logits, features)


def test_logits_of_passes_a_tensor_and_names_the_adapter_otherwise():
    logits = torch.zeros(2, 3)
    assert logits_of(logits) is logits
    with pytest.raises(InputError, match=r"returned a tuple.*PickLogits\(network\)"):
        logits_of((logits, logits))


def test_an_unwrapped_network_is_refused_before_any_weight_moves(digits):
    network = WithFeatures()
    before = {name: value.detach().clone() for name, value in network.named_parameters()}
    with pytest.raises(InputError, match="PickLogits"):
        fit(network, digits, CONFIG, device="cpu", progress=False)
    for name, value in network.named_parameters():  # (one train-mode forward moved BatchNorm's statistics)
        assert torch.equal(before[name], value), name
    with pytest.raises(InputError, match="PickLogits"):
        evaluate(network, digits)
    with pytest.raises(InputError, match="PickLogits"):
        scorer.score("snip", network, batches=list(digits.batches("train", 64))[:2], progress=False)


@pytest.mark.parametrize("as_dict", [False, True], ids=["tuple", "dict"])
def test_the_wrapped_network_gives_the_plain_networks_logits_and_trains(digits, as_dict):
    pick = (lambda out: out["logits"]) if as_dict else None
    wrapped = PickLogits(WithFeatures(as_dict), *([pick] if pick else []))
    torch.manual_seed(0)
    plain = models.build_model("smallcnn", 10, in_channels=1, width=8)  # the same weights, one module
    x, _ = next(iter(digits.batches("test", 16)))
    assert torch.equal(wrapped.eval()(x), plain.eval()(x))
    _, history = fit(wrapped, digits, CONFIG, device="cpu", progress=False)
    assert history[0]["val_accuracy"] > 0.2  # ten classes: a working network leaves chance behind in one epoch


def test_scores_on_the_wrapper_name_the_wrapped_parameters(digits):
    wrapped = PickLogits(WithFeatures())
    batches = list(digits.batches("train", 64))[:2]
    scores = scorer.score("snip", wrapped, batches=batches, settings=ScoringConfig(epochs=1), progress=False)
    assert sorted(scores) == ["network.body.0.weight", "network.body.3.weight", "network.body.7.weight"]


# --------------------------------------------------------------------------------------------------
# airbench: the CPU recipe's network


def smooth_images(n: int = 64, size: int = 16) -> torch.Tensor:
    """Images whose neighbouring pixels and channels correlate, as a photograph's do."""
    torch.manual_seed(0)
    noise = torch.nn.functional.avg_pool2d(torch.randn(n, 3, size + 2, size + 2), 3, stride=1)
    mixing = torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.6, 0.5], [0.0, 0.0, 0.4]])
    return torch.einsum("ck,nkhw->nchw", mixing, noise)


def test_patch_whitening_makes_the_patches_uncorrelated_with_unit_variance():
    images = smooth_images()
    layer = models.PatchWhitening(3, eps=0.0)
    before = layer.weight.clone()
    layer.fit(images)
    whitened = torch.nn.functional.conv2d(images.double(), layer.weight[:12].double())  # the 12 filters, not negated
    flat = whitened.permute(0, 2, 3, 1).reshape(-1, 12)
    torch.testing.assert_close(flat.T @ flat / len(flat), torch.eye(12, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(layer.weight[12:], -layer.weight[:12])
    assert layer.fitted and not torch.equal(layer.weight, before)


def test_fit_whitens_once_and_the_state_dict_carries_it():
    from tgkit.data import Loaders
    from tgkit.train import fit_whitening

    network = models.build_model("airbench", 10, width=4)
    batches = [(smooth_images(32), torch.arange(32) % 10)]
    fit_whitening(network, Loaders(batches, val=batches), torch.device("cpu"))
    fitted = network.whiten.weight.clone()
    other = [(2 * smooth_images(32).flip(1), torch.arange(32) % 10)]
    fit_whitening(network, Loaders(other, val=other), torch.device("cpu"))  # a retraining: left as it is
    assert torch.equal(network.whiten.weight, fitted)
    copy = models.build_model("airbench", 10, width=4)
    copy.load_state_dict(network.state_dict())
    assert copy.whiten.fitted and torch.equal(copy.whiten.weight, fitted)


def test_airbench_prunes_its_convolutions_only_and_counts_no_whitening_weight():
    from tgkit import masker

    network = models.build_model("airbench", 10, width=4)  # widths 4, 16, 16 after 24 whitened channels
    table = masker.describe_prunable(network)
    convs = table[table.kind == "conv"]
    assert convs.prunable.all() and convs.weights.sum() == 9 * (24 * 4 + 4 * 4 + 4 * 16 + 3 * 16 * 16)
    assert not table[table.kind != "conv"].prunable.any()  # frozen BatchNorm scales and the classifier: counted
    assert not any(name.startswith("whiten") for name in table.layer)
    frozen = [name for name, p in network.named_parameters() if not p.requires_grad]
    assert frozen == [name for name in table.layer if table.set_index("layer").kind[name] == "bn"]


def test_airbench_refuses_images_smaller_than_16_px_naming_the_alternative():
    with pytest.raises(InputError, match="at least 16 px.*use a ResNet"):
        models.build_model("airbench", 10, in_channels=1, width=4)(torch.zeros(1, 1, 8, 8))
