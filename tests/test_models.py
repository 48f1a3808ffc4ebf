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
