"""`tgkit.sensitivity`: each layer pruned alone, without retraining, on a tiny ResNet whose answers are known:
exact counts of pruned weights per level, nothing changed at level 0, the batched measurement equal to pruning
a copy by hand, and the trap: a residual branch whose pruning changes nothing must be flagged, never ranked
the most robust layer."""

import copy

import pandas as pd
import pytest
import torch
from torch import nn

from conftest import ranked_scores, tiny_resnet
from tgkit import masker, models, scorer, sensitivity
from tgkit.util.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")
LEVELS = (0.0, 0.25, 0.5, 0.9, 1.0)


def trap_network() -> nn.Module:
    """tiny_resnet in eval mode with every residual branch alive (its last BatchNorm's gamma away from 0, where
    the network's initialisation puts it) except layer1.0's: pruning layer1.0.conv1 or conv2 changes nothing.
    A head without bias and with large weights makes its predictions vary from image to image."""
    torch.manual_seed(0)
    model = tiny_resnet().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_var.uniform_(0.5, 1.5)
        model.layer1[0].bn2.weight.zero_()
        model.fc.bias.zero_()
        model.fc.weight.normal_(0, 3)
    return model


def batches_labelled_by(model: nn.Module, count: int = 3, size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Random images labelled with the model's own predictions: the dense accuracy is 1 by construction."""
    generator = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(count):
        images = torch.randn(size, 1, 8, 8, generator=generator)
        with torch.no_grad():
            batches.append((images, model(images).argmax(1)))
    return batches


@pytest.fixture(scope="module")
def measured():
    model = trap_network()
    scores = scorer.magnitude_scores(model)
    batches = batches_labelled_by(model)
    return model, scores, batches, sensitivity.layer_sensitivity(model, scores, LEVELS, batches)


def test_every_layer_and_level_is_measured_with_exact_counts(measured):
    model, scores, _, table = measured
    assert list(table.columns) == list(sensitivity.COLUMNS)
    assert len(table) == 12 * len(LEVELS)
    for name, param in masker.prunable_parameters(model).items():
        rows = table[table["layer"] == name]
        assert rows["level"].tolist() == list(LEVELS)
        assert rows["pruned"].tolist() == [round(level * param.numel()) for level in LEVELS]
        assert (rows["weights"] == param.numel()).all()
    assert (table["pruned_nonzero"] == table["pruned"]).all()  # random weights: none is zero already
    assert (table["dense_accuracy"] == 1.0).all()


def test_pruning_nothing_changes_nothing(measured):
    _, _, _, table = measured
    untouched = table[table["level"] == 0]
    assert (untouched["accuracy"] == 1.0).all() and (untouched["output_change"] == 0).all()
    assert not untouched["effective"].any()


def test_the_batched_measurement_equals_pruning_a_copy_by_hand(measured):
    model, scores, batches, table = measured
    for name, level in (("conv1.weight", 0.5), ("layer3.0.conv2.weight", 0.9), ("layer4.0.downsample.0.weight", 1.0)):
        pruned = copy.deepcopy(model)
        masker.apply_masks(pruned, {name: sensitivity.layer_mask(scores[name], level)})
        with torch.no_grad():
            outputs = [(pruned(x), model(x), y) for x, y in batches]
        correct = sum(int((z.argmax(1) == y).sum()) for z, _, y in outputs)
        change = max(float((z - dense).abs().max()) for z, dense, _ in outputs)
        row = table[(table["layer"] == name) & (table["level"] == level)].iloc[0]
        assert row["accuracy"] == correct / 96
        assert row["output_change"] == pytest.approx(change, rel=1e-4, abs=1e-6)


def test_the_model_is_given_back_as_it_was():
    model = trap_network()
    batches = batches_labelled_by(model, 1)
    model.train()
    before = copy.deepcopy(model.state_dict())
    structure = [type(module) for module in model.modules()]
    sensitivity.layer_sensitivity(model, scorer.magnitude_scores(model), (0.5,), batches)
    assert model.training and [type(module) for module in model.modules()] == structure
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_already_zero_weights_are_counted_apart():
    model = trap_network()
    name = "layer2.0.conv1.weight"
    scores = ranked_scores(model)  # rising in flat order: the layer's first weights go first
    with torch.no_grad():
        dict(model.named_parameters())[name].view(-1)[:10] = 0
    table = sensitivity.layer_sensitivity(
        model, scores, (0.0, 10 / 72, 0.5), batches_labelled_by(model, 1), layers=[name]
    )
    assert table["pruned"].tolist() == [0, 10, 36]
    assert table["pruned_nonzero"].tolist() == [0, 0, 26]
    assert not table.loc[1, "effective"]  # ten weights that were zero: nothing was pruned


def test_emptying_a_layer_is_described_by_the_networks_structure(measured):
    _, _, _, table = measured
    fates = table.drop_duplicates("layer").set_index("layer")
    assert fates.loc["conv1.weight", "when_emptied"] == "cuts the network"
    assert tuple(fates.loc["layer1.0.conv2.weight", ["when_emptied", "shares_fate_with"]]) == (
        "bypassed by the shortcut",
        "identity",
    )
    assert tuple(fates.loc["layer2.0.conv1.weight", ["when_emptied", "shares_fate_with"]]) == (
        "bypassed by the shortcut",
        "layer2.0.downsample.0.weight",
    )
    assert tuple(fates.loc["layer2.0.downsample.0.weight", ["when_emptied", "shares_fate_with"]]) == (
        "bypassed by the branch",
        "layer2.0.conv1.weight; layer2.0.conv2.weight",
    )
    cnn = models.build_model("smallcnn", 10, in_channels=1, width=2)
    layers = masker.prunable_parameters(cnn)
    assert set(sensitivity.emptied_fates(cnn, layers).values()) == {("cuts the network", "")}


def test_the_trap_a_layer_whose_pruning_changes_nothing_is_flagged_not_ranked_most_robust(measured):
    """layer1.0's branch ends in a BatchNorm of gamma 0: pruning its convolutions, even emptying them, changes
    no output, so its accuracy never moves. Ranked by accuracy drop alone it would be the most robust layer."""
    _, _, _, table = measured
    trap = {"layer1.0.conv1.weight", "layer1.0.conv2.weight"}
    inert = table[table["layer"].isin(trap)]
    assert (inert["accuracy"] == 1.0).all() and not inert["effective"].any()
    assert (inert.loc[inert["level"] > 0, "pruned_nonzero"] > 0).all()  # weights were removed, to no effect
    naive = table[table["level"] > 0].groupby("layer")["accuracy_drop"].mean().sort_values(kind="stable")
    assert set(naive.index[:2]) == trap  # the trap is real: a naive ranking puts these two first

    ranking = sensitivity.rank_layers(table, tolerance=0.01).set_index("layer")
    assert (ranking.loc[sorted(trap), "status"] == "not ranked: pruning it changed no output").all()
    assert ranking.loc[sorted(trap), "rank"].isna().all()
    first = ranking[ranking["rank"] == 1]
    assert len(first) == 1 and first.index[0] not in trap
    assert ranking["rank"].dropna().tolist() == list(range(1, 11))  # the ten other layers, in order
    effective_below_1 = table[table["effective"] & (table["level"] < 1)]
    assert (
        ranking["effective_levels"] == effective_below_1.groupby("layer").size().reindex(ranking.index, fill_value=0)
    ).all()


def test_rank_layers_known_answers():
    """Three layers: A safe up to 0.9, B up to 0.5, C not safe at any level, D never effective."""
    rows = []
    drops = {"A": (0.0, 0.0, 0.005, 0.5), "B": (0.0, 0.002, 0.2, 0.5), "C": (0.0, 0.3, 0.4, 0.6), "D": (0.0,) * 4}
    for layer, layer_drops in drops.items():
        for level, drop in zip((0.0, 0.5, 0.9, 1.0), layer_drops):
            rows.append(
                {
                    "layer": layer,
                    "level": level,
                    "accuracy_drop": drop,
                    "effective": layer != "D" and level > 0,
                    "when_emptied": "cuts the network",
                    "shares_fate_with": "",
                }
            )
    ranking = sensitivity.rank_layers(pd.DataFrame(rows), tolerance=0.01).set_index("layer")
    assert ranking["rank"].tolist()[:3] == [1, 2, 3] and list(ranking.index) == ["A", "B", "C", "D"]
    assert ranking["safe_level"].tolist()[:2] == [0.9, 0.5]
    assert ranking.loc["C", "status"].startswith("ranked: every effective level costs more")
    assert ranking.loc["D", "status"] == "not ranked: pruning it changed no output"


@pytest.mark.parametrize(
    "levels, layers, message",
    [((), None, "levels takes fractions"), ((0.5, 1.5), None, r"\[0, 1\]"), ((0.5,), ["fc.weight"], "no scores")],
)
def test_bad_requests_are_refused_in_one_line(levels, layers, message):
    model = trap_network()
    with pytest.raises(InputError, match=message):
        sensitivity.layer_sensitivity(
            model, scorer.magnitude_scores(model), levels, batches_labelled_by(model, 1), layers=layers
        )
