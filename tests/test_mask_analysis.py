"""`tgkit.mask_analysis`: what a set of masks does to a network, layer by layer: the Jaccard overlap of
two masks, the layers a global threshold empties and whether a shortcut still bypasses them, and the
per-layer and per-criterion tables of notebook 02, on a tiny ResNet with hand-made scores."""

import pytest
import torch

from conftest import ranked_scores, tiny_resnet
from tgkit import mask_analysis, masker, models, scorer
from tgkit.mask_analysis import mask_overlap

# tiny_resnet's weights: 4794 in its 12 convolutions (the prunable ones), 5044 with the 90 BatchNorm gammas
# and the 16 x 10 head; layer4.0's residual branch holds 1152 + 2304 of them
PRUNABLE_WEIGHTS, ALL_WEIGHTS, BRANCH_WEIGHTS = 4794, 5044, 1152 + 2304


def test_mask_overlap():
    a = torch.tensor([True, True, False, False])
    b = torch.tensor([True, False, True, False])
    assert mask_overlap(a, b) == pytest.approx(1 / 3)
    assert mask_overlap({"x": a, "y": a}, {"x": b, "y": a}) == pytest.approx(3 / 5)
    assert mask_overlap({"x": a}, {"x": a}) == 1.0
    with pytest.raises(ValueError, match="different tensors"):
        mask_overlap({"x": a}, {"y": a})


def test_cut_layers_knows_that_a_shortcut_bypasses_an_emptied_branch():
    model = tiny_resnet()
    params = masker.prunable_parameters(model)
    keep_all = {name: torch.ones_like(param, dtype=torch.bool) for name, param in params.items()}

    def emptied(*names):
        return {**keep_all, **{name: torch.zeros_like(keep_all[name]) for name in names}}

    # layer1.0 has an identity shortcut, layer4.0 a 1x1 convolution
    assert mask_analysis.cut_layers(model, emptied("layer1.0.conv2.weight")) == []
    assert mask_analysis.cut_layers(model, emptied("layer4.0.conv1.weight", "layer4.0.conv2.weight")) == []
    assert mask_analysis.cut_layers(model, emptied("layer4.0.downsample.0.weight")) == []
    both = emptied("layer4.0.conv1.weight", "layer4.0.downsample.0.weight")
    assert mask_analysis.cut_layers(model, both) == ["layer4.0.conv1.weight", "layer4.0.downsample.0.weight"]
    assert mask_analysis.cut_layers(model, emptied("conv1.weight")) == ["conv1.weight"]
    assert mask_analysis.collapsed_layers(both) == ["layer4.0.conv1.weight", "layer4.0.downsample.0.weight"]


def test_cut_layers_on_a_plain_cnn_cuts_at_any_emptied_layer():
    model = models.build_model("smallcnn", 10, in_channels=1, width=2)
    masks = {
        name: torch.ones_like(param, dtype=torch.bool) for name, param in masker.prunable_parameters(model).items()
    }
    masks["3.weight"] = torch.zeros_like(masks["3.weight"])
    assert mask_analysis.cut_layers(model, masks) == ["3.weight"]


def test_layer_and_sparsity_tables():
    model = tiny_resnet()
    branch = {"layer4.0.conv1.weight", "layer4.0.conv2.weight"}
    scores = {
        "teacher_guided": ranked_scores(model, low=branch),
        "random": scorer.random_scores(model),
        "snip": ranked_scores(model, low=branch),
    }
    assert sum(p.numel() for p in masker.prunable_parameters(model).values()) == PRUNABLE_WEIGHTS
    assert sum(p.numel() for p in masker.weight_parameters(model).values()) == ALL_WEIGHTS
    # prune exactly as many weights as the branch holds: the teacher-guided and SNIP masks empty it
    ratio = BRANCH_WEIGHTS / PRUNABLE_WEIGHTS
    masks = mask_analysis.masks_by_criterion(scores, ratio)  # no LayerCollapseWarning: the tables report it
    layers = mask_analysis.layer_table(model, masks)

    assert len(layers) == 3 * 12
    assert (layers.groupby("criterion")["kept"].sum() == PRUNABLE_WEIGHTS - BRANCH_WEIGHTS).all()
    teacher_guided = layers[layers["criterion"] == "teacher_guided"].set_index("layer")
    assert set(teacher_guided.index[teacher_guided["collapsed"]]) == branch
    outside = teacher_guided.drop(index=sorted(branch))
    assert (outside["kept"] == outside["weights"]).all()  # everything else is kept whole
    assert not teacher_guided["cuts_network"].any()  # the 1x1 shortcut of layer4.0 survives
    assert teacher_guided.loc["layer4.0.conv1.weight", "kept_fraction"] == 0.0
    assert (teacher_guided["overlap"] == 1.0).all()  # the reference against itself
    snip = layers[layers["criterion"] == "snip"]
    assert (snip["overlap"] == 1.0).all()  # the same masks
    random = layers[layers["criterion"] == "random"].set_index("layer")
    assert (random["kept_fraction"] > 0).all()
    assert ((layers["kept"] / layers["weights"]) == layers["kept_fraction"]).all()

    target = BRANCH_WEIGHTS / ALL_WEIGHTS  # the sparsity over all weights that pruning the branch reaches
    sparsities = mask_analysis.sparsity_table(model, masks, target).set_index("criterion")
    assert list(sparsities.index) == ["teacher_guided", "random", "snip"]
    assert sparsities["sparsity_all"].tolist() == pytest.approx([target] * 3)
    assert sparsities["sparsity_prunable"].tolist() == pytest.approx([ratio] * 3, abs=1e-6)
    assert sparsities.loc["teacher_guided", "collapsed_layers"] == "layer4.0.conv1.weight; layer4.0.conv2.weight"
    assert sparsities.loc["teacher_guided", "cut_layers"] == ""
    assert sparsities.loc["random", "collapsed_layers"] == ""
    assert 0 <= sparsities.loc["random", "overlap"] < 1
    assert sparsities.loc["snip", "overlap"] == 1
