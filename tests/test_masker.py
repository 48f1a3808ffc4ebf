"""`tgkit.masker`: which weights are prunable, global masks (exact counts, deterministic ties, agreement
with torch's own global pruning), sparsity over two denominators, the mask algebra of COLT (intersection,
removal order), and masks that survive save and load. `tiny_net`'s weights are counted by hand (conftest)."""

import copy
import warnings

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.utils import prune

from conftest import tiny_net
from tgkit.masker import (
    LayerCollapseWarning,
    MaskMismatchError,
    apply_masks,
    count_pruned,
    describe_prunable,
    global_masks,
    global_sparsity,
    highest_target,
    intersect_masks,
    load_pruned,
    masks_removing_first,
    prunable_parameters,
    save_pruned,
    sparsity_for_target,
    sparsity_report,
    weight_parameters,
)
from tgkit.models import build_model
from tgkit.scorer import magnitude_scores, random_scores
from tgkit.util.checkpoint import CheckpointError, load_checkpoint, save_atomic


def pruned_count(masks):
    return sum(int((~mask).sum()) for mask in masks.values())


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10)


# --------------------------------------------------------------------------------------------------
# which tensors


def test_resnet18_prunes_exactly_its_20_convolutions(resnet18):
    prunable = prunable_parameters(resnet18)
    convs = [name + ".weight" for name, module in resnet18.named_modules() if isinstance(module, nn.Conv2d)]
    assert len(prunable) == 20
    assert list(prunable) == convs
    assert "conv1.weight" in prunable and "layer2.0.downsample.0.weight" in prunable
    assert "fc.weight" not in prunable
    assert all(param.dim() == 4 for param in prunable.values())


def test_weight_parameters_counts_conv_linear_and_bn_gamma_only():
    net = tiny_net()
    assert list(weight_parameters(net)) == ["0.weight", "1.weight", "3.weight", "4.weight", "8.weight"]
    assert sum(param.numel() for param in weight_parameters(net).values()) == 272
    assert sum(param.numel() for param in prunable_parameters(net).values()) == 252


def test_layer_types_make_the_prunable_set_configurable():
    net = tiny_net()
    assert list(prunable_parameters(net, layer_types=(nn.Conv2d, nn.Linear))) == ["0.weight", "3.weight", "8.weight"]


def test_describe_prunable(resnet18):
    table = describe_prunable(resnet18)
    assert list(table.columns) == ["layer", "kind", "shape", "weights", "prunable"]
    assert table["prunable"].sum() == 20
    assert set(table.loc[~table["prunable"], "kind"]) == {"bn", "linear"}
    assert table.loc[table["layer"] == "conv1.weight", "shape"].item() == (64, 3, 7, 7)


# --------------------------------------------------------------------------------------------------
# global masks


@pytest.mark.filterwarnings("ignore::tgkit.masker.LayerCollapseWarning")  # 0.999 keeps a single weight
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.75, 0.9, 0.985, 0.999])
def test_exactly_k_lowest_are_pruned(sparsity):
    generator = torch.Generator().manual_seed(0)
    scores = {"a": torch.rand(200, generator=generator), "b": torch.rand(40, 20, generator=generator)}
    masks = global_masks(scores, sparsity)
    assert pruned_count(masks) == round(sparsity * 1000)
    assert all(mask.dtype == torch.bool and mask.shape == scores[name].shape for name, mask in masks.items())
    if sparsity > 0:
        # one threshold: every pruned score lies below every kept one
        flat_scores = torch.cat([scores[name].reshape(-1) for name in scores])
        flat_keep = torch.cat([masks[name].reshape(-1) for name in scores])
        assert flat_scores[~flat_keep].max() < flat_scores[flat_keep].min()


def test_k_rounds_to_the_nearest_count():
    scores = {"a": torch.arange(7.0), "b": torch.arange(7.0, 10.0)}  # N = 10
    assert pruned_count(global_masks(scores, 0.34)) == 3
    assert pruned_count(global_masks(scores, 0.36)) == 4


def test_ties_prune_the_earlier_tensor_and_index_first():
    scores = {"a": torch.ones(10), "b": torch.ones(10)}
    masks = global_masks(scores, 0.3)
    assert masks["a"].tolist() == [False] * 6 + [True] * 4
    assert masks["b"].all()
    with pytest.warns(LayerCollapseWarning, match="'a'"):
        later = global_masks(scores, 0.7)  # 14: all of "a", then the first 4 of "b"
    assert later["b"].tolist() == [False] * 4 + [True] * 6


def test_masks_are_deterministic():
    scores = {"a": torch.randint(0, 3, (50,)).float(), "b": torch.randint(0, 3, (5, 10)).float()}
    first, second = global_masks(scores, 0.5), global_masks(scores, 0.5)
    assert all(torch.equal(first[name], second[name]) for name in scores)


def test_magnitude_masks_equal_torch_global_l1_pruning():
    net = tiny_net()
    sparsity = 0.6
    masks = global_masks(magnitude_scores(net), sparsity)
    reference = copy.deepcopy(net)
    convs = [(name, module) for name, module in reference.named_modules() if isinstance(module, nn.Conv2d)]
    prune.global_unstructured(
        [(module, "weight") for _, module in convs],
        pruning_method=prune.L1Unstructured,
        amount=round(sparsity * 252),
    )
    assert list(masks) == [name + ".weight" for name, _ in convs]
    for name, module in convs:
        assert torch.equal(masks[name + ".weight"], module.weight_mask.bool())


def test_a_layer_pruned_to_nothing_is_named_in_a_warning():
    scores = {"low": torch.zeros(3), "high": torch.arange(1.0, 11.0)}
    with pytest.warns(LayerCollapseWarning, match="'low'"):
        masks = global_masks(scores, 0.3)  # 13 weights, 4 pruned: all of "low" and one of "high"
    assert not masks["low"].any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        global_masks(scores, 0.1)  # 1 pruned: a third of "low"


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_sparsity_outside_the_unit_interval_is_rejected(sparsity):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        global_masks({"a": torch.rand(10)}, sparsity)


def test_nan_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        global_masks({"a": torch.tensor([0.1, float("nan")])}, 0.5)


def sorted_masks(scores, sparsity):
    """The rule `global_masks` keeps, written as a sort: prune the first k = round(sparsity * N) weights of a
    stable argsort of the concatenated scores (what `global_masks` did before it selected with kthvalue)."""
    flat = torch.cat([score.reshape(-1) for score in scores.values()])
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[torch.argsort(flat, stable=True)[: round(sparsity * flat.numel())]] = False
    pieces = keep.split([score.numel() for score in scores.values()])
    return {name: piece.reshape(score.shape) for (name, score), piece in zip(scores.items(), pieces)}


def tied_scores(generator):
    """One to five tensors of random sizes and shapes, integer scores 0..9 (ties everywhere), some -1 (pruned)."""
    scores = {}
    for index in range(int(torch.randint(1, 6, (), generator=generator))):
        rows, columns = torch.randint(1, 40, (2,), generator=generator).tolist()
        scores[f"t{index}"] = torch.randint(-1, 10, (rows, columns), generator=generator).float()
    return scores


def sparsities_of(count, generator):
    """0, the ratios that prune exactly 1, N - 1 and N weights (1.0 itself is refused), and three at random."""
    return [0.0, 1 / count, (count - 1) / count, 1 - 0.4 / count] + torch.rand(3, generator=generator).tolist()


def assert_same_masks(actual, expected):
    assert list(actual) == list(expected)
    assert all(torch.equal(actual[name], expected[name]) for name in expected)


@pytest.mark.filterwarnings("ignore::tgkit.masker.LayerCollapseWarning")
def test_selection_gives_the_stable_sorts_masks_with_ties_everywhere():
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        scores = tied_scores(generator)
        count = sum(score.numel() for score in scores.values())
        for sparsity in sparsities_of(count, generator):
            masks = global_masks(scores, sparsity)
            assert_same_masks(masks, sorted_masks(scores, sparsity))
            assert pruned_count(masks) == round(sparsity * count)


def test_selection_gives_the_stable_sorts_masks_on_a_networks_magnitudes():
    """A ResNet-18 of width 16 (0.7 M conv weights), its magnitudes dense and with a third of them zeroed, as a
    pruned network's are: ties at zero."""
    torch.manual_seed(0)
    scores = magnitude_scores(build_model("resnet18", 10, width=16))
    half_pruned = {name: score * (torch.rand(score.shape) > 1 / 3) for name, score in scores.items()}
    for sparsity in (0.3, 0.5, 0.9, 0.9841):
        assert_same_masks(global_masks(scores, sparsity), sorted_masks(scores, sparsity))
        assert_same_masks(global_masks(half_pruned, sparsity), sorted_masks(half_pruned, sparsity))


def test_pruning_all_n_warns_for_every_tensor():
    scores = {"a": torch.ones(3), "b": torch.zeros(2)}
    with pytest.warns(LayerCollapseWarning, match=r"\['a', 'b'\]"):
        masks = global_masks(scores, 0.95)  # round(4.75) = 5 = N
    assert not any(mask.any() for mask in masks.values())


# --------------------------------------------------------------------------------------------------
# applying masks and measuring sparsity


def test_apply_masks_zeroes_exactly_the_pruned_weights():
    net = tiny_net()
    before = {name: param.detach().clone() for name, param in net.named_parameters()}
    masks = global_masks(random_scores(net, seed=1), 0.5)
    assert apply_masks(net, masks) is net
    for name, param in net.named_parameters():
        if name in masks:
            assert (param[~masks[name]] == 0).all()
            assert torch.equal(param[masks[name]], before[name][masks[name]])
        else:
            assert torch.equal(param, before[name])


def test_apply_masks_rejects_masks_that_do_not_fit():
    net = tiny_net()
    with pytest.raises(MaskMismatchError, match="'fc.weight'"):
        apply_masks(net, {"fc.weight": torch.ones(10, 512, dtype=torch.bool)})
    with pytest.raises(KeyError):
        apply_masks(net, {"fc.weight": torch.ones(10, 512, dtype=torch.bool)})
    with pytest.raises(MaskMismatchError, match="shape"):
        apply_masks(net, {"0.weight": torch.ones(4, 3, 1, 1, dtype=torch.bool)})
    with pytest.raises(TypeError, match="bool"):
        apply_masks(net, magnitude_scores(net))


def test_sparsity_report_rows_and_global_counts():
    net = tiny_net()
    masks = global_masks(magnitude_scores(net), 0.5)  # 126 of 252 conv weights
    report = sparsity_report(net, masks)
    assert list(report.columns) == ["layer", "kind", "prunable", "weights", "zeros", "sparsity"]
    assert list(report["layer"]) == [
        "0.weight",
        "1.weight",
        "3.weight",
        "4.weight",
        "8.weight",
        "global (prunable)",
        "global (all weights)",
    ]
    assert list(report["kind"][:5]) == ["conv", "bn", "conv", "bn", "linear"]
    prunable_row = report.set_index("layer").loc["global (prunable)"]
    all_row = report.set_index("layer").loc["global (all weights)"]
    assert (prunable_row["weights"], prunable_row["zeros"]) == (252, 126)
    assert (all_row["weights"], all_row["zeros"]) == (272, 126)
    assert all_row["sparsity"] == pytest.approx(126 / 272)
    assert global_sparsity(net, masks, over="prunable") == 0.5
    assert global_sparsity(net, masks) == pytest.approx(126 / 272)
    # without masks the zeros are read from the weights: the same numbers once the masks are applied
    assert global_sparsity(net) == 0.0
    apply_masks(net, masks)
    assert sparsity_report(net)["zeros"].tolist() == report["zeros"].tolist()


def test_with_masks_only_masked_weights_count_as_pruned():
    # a fresh CIFAR ResNet zero-initialises the last BatchNorm gamma of every residual branch
    net = build_model("resnet10", 10, width=8)
    zero_gammas = sum(int((p == 0).sum()) for name, p in weight_parameters(net).items() if "bn2" in name)
    assert zero_gammas == 8 + 16 + 32 + 64
    keep_all = {name: torch.ones_like(param, dtype=torch.bool) for name, param in prunable_parameters(net).items()}
    assert global_sparsity(net, keep_all) == 0.0
    assert global_sparsity(net) == pytest.approx(zero_gammas / sum(p.numel() for p in weight_parameters(net).values()))


def test_sparsity_for_target_round_trip():
    net = tiny_net()
    for target in (0.0, 0.3, 0.5, 0.8):
        ratio = sparsity_for_target(net, target)
        masks = global_masks(magnitude_scores(net), ratio)
        assert global_sparsity(net, masks, over="all") == pytest.approx(target, abs=0.5 / 272)
    assert sparsity_for_target(net, 0.5, over="prunable") == 0.5


def test_sparsity_for_target_on_resnet18_reaches_the_papers_98_41(resnet18):
    ratio = sparsity_for_target(resnet18, 0.9841)
    assert 0.984 < ratio < 0.986  # the paper needed a conv-only ratio of 0.985
    masks = global_masks(magnitude_scores(resnet18), ratio)
    all_count = sum(param.numel() for param in weight_parameters(resnet18).values())
    assert global_sparsity(resnet18, masks) == pytest.approx(0.9841, abs=0.5 / all_count)


def test_an_unreachable_target_says_the_maximum():
    with pytest.raises(ValueError, match=r"below 92\.6471%"):  # 252 / 272
        sparsity_for_target(tiny_net(), 0.95)
    with pytest.raises(ValueError, match="over must be one of"):
        sparsity_for_target(tiny_net(), 0.5, over="conv")


# --------------------------------------------------------------------------------------------------
# mask algebra (COLT merges the masks of its networks)


def test_removal_order_puts_every_and_mask_first():
    """The AND of the networks' masks at any rate is a prefix of the landing order."""
    generator = torch.Generator().manual_seed(0)
    scores = [{"a": torch.rand(40, generator=generator), "b": torch.rand(3, 5, generator=generator)} for _ in range(3)]
    for removed in (1, 7, 20):
        merged = intersect_masks([global_masks(s, removed / 55) for s in scores])
        prefix = masks_removing_first(scores, count_pruned(merged))
        assert all(torch.equal(merged[name], prefix[name]) for name in merged)


# --------------------------------------------------------------------------------------------------
# save and load


def test_save_and_load_round_trip(tmp_path):
    net = tiny_net()
    masks = global_masks(magnitude_scores(net), 0.7)
    apply_masks(net, masks)
    path = save_pruned(tmp_path / "pruned.pt", net, masks, sparsity=0.7, scorer="magnitude")
    fresh, loaded_masks, meta = load_pruned(path, tiny_net(seed=5))
    assert meta == {"sparsity": 0.7, "scorer": "magnitude"}
    assert list(loaded_masks) == list(masks)
    assert all(torch.equal(loaded_masks[name], masks[name]) for name in masks)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), net.state_dict().values()))
    assert global_sparsity(fresh, loaded_masks) == global_sparsity(net, masks)
    assert pruned_count(loaded_masks) == round(0.7 * 252)


def test_saving_unapplied_masks_is_refused(tmp_path):
    net = tiny_net()
    with pytest.raises(ValueError, match="apply_masks"):
        save_pruned(tmp_path / "pruned.pt", net, global_masks(magnitude_scores(net), 0.5))


def test_a_corrupt_file_raises_checkpoint_error(tmp_path):
    path = tmp_path / "pruned.pt"
    path.write_bytes(b"\x00garbage, not a checkpoint\xff" * 10)
    with pytest.raises(CheckpointError, match="delete it"):
        load_pruned(path, tiny_net())


def test_a_file_for_another_model_raises_checkpoint_error(tmp_path):
    net = tiny_net()
    masks = global_masks(magnitude_scores(net), 0.5)
    path = save_pruned(tmp_path / "pruned.pt", apply_masks(net, masks), masks)
    with pytest.raises(CheckpointError, match="architecture"):
        load_pruned(path, nn.Sequential(nn.Conv2d(3, 8, 3)))


def test_a_pruned_weight_that_is_not_zero_raises_checkpoint_error(tmp_path):
    net = tiny_net()
    masks = global_masks(magnitude_scores(net), 0.5)
    path = save_pruned(tmp_path / "pruned.pt", apply_masks(net, masks), masks)
    payload = load_checkpoint(path)
    payload["state_dict"]["0.weight"][~payload["masks"]["0.weight"]] = 1.0
    save_atomic(payload, path)
    with pytest.raises(CheckpointError, match="not zero"):
        load_pruned(path, tiny_net())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_masks_apply_report_and_load_on_cuda(tmp_path):
    net = tiny_net().cuda()
    masks = global_masks(magnitude_scores(net), 0.5)  # scores, hence masks, on the CPU
    apply_masks(net, masks)
    assert global_sparsity(net, over="prunable") == 0.5
    path = save_pruned(tmp_path / "pruned.pt", net, masks)
    loaded, loaded_masks, _ = load_pruned(path, tiny_net(seed=3).cuda())
    assert next(loaded.parameters()).is_cuda
    assert global_sparsity(loaded) == global_sparsity(net, masks)
    cuda_masks = global_masks({name: score.cuda() for name, score in magnitude_scores(net).items()}, 0.5)
    assert all(torch.equal(cuda_masks[name].cpu(), masks[name]) for name in masks)


@pytest.mark.filterwarnings("ignore::tgkit.masker.LayerCollapseWarning")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_masks_equal_the_cpus_with_ties_everywhere():
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        scores = tied_scores(generator)
        on_cuda = {name: score.cuda() for name, score in scores.items()}
        for sparsity in sparsities_of(sum(score.numel() for score in scores.values()), generator):
            masks = global_masks(on_cuda, sparsity)
            assert all(mask.is_cuda for mask in masks.values())
            assert_same_masks({name: mask.cpu() for name, mask in masks.items()}, global_masks(scores, sparsity))
        # COLT's landing round, on the device its networks train on
        networks = [scores, {name: score.flip(-1) for name, score in scores.items()}]
        removed = masks_removing_first([{n: s.cuda() for n, s in one.items()} for one in networks], 7)
        assert_same_masks({name: mask.cpu() for name, mask in removed.items()}, masks_removing_first(networks, 7))


def test_the_highest_target_is_the_prunable_share_of_all_weights():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3))
    # 18 conv weights of 18 + 2 (BatchNorm gamma) + 6 (linear): pruning them all reaches 18 / 26
    assert highest_target(model) == 18 / 26
    sparsity_for_target(model, 0.65, over="all")
    with pytest.raises(ValueError, match="must stay below 69.2308%"):
        sparsity_for_target(model, 18 / 26, over="all")
