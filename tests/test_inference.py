"""Sparse convolutions and the inference backends: the same network, computed four ways; the arithmetic
on paper; the crossover arithmetic of the report."""

import pandas as pd
import pytest
import torch
from torch import nn

from tgkit import masker, models
from tgkit.deploy import inference, sparse_conv
from tgkit.report import deployment

# float32 sums in another order: the sparse product and the dense kernel agree to rounding only
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "bias"),
    [(3, 1, 1, False), (3, 2, 1, False), (1, 2, 0, False), (1, 1, 0, True), (5, 1, 2, True), (3, 1, 0, False)],
)
@pytest.mark.parametrize("sparsity", [0.0, 0.9, 1.0])
def test_a_sparse_convolution_matches_the_dense_one(kernel, stride, padding, bias, sparsity):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 10, kernel, stride=stride, padding=padding, bias=bias)
    with torch.no_grad():
        conv.weight.mul_(torch.rand_like(conv.weight) >= sparsity)
    images = torch.randn(3, 6, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(sparse_conv.SparseConv2d(conv)(images), conv(images), **TOLERANCE)


def test_a_sparse_convolution_reads_a_transposed_input():
    """The (C, N, H, W) output of one SparseConv2d, seen as (N, C, H, W), is the next one's input."""
    torch.manual_seed(0)
    first, second = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 4, 1)
    images = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        sparse = sparse_conv.SparseConv2d(second)(sparse_conv.SparseConv2d(first)(images))
        torch.testing.assert_close(sparse, second(first(images)), **TOLERANCE)


def test_grouped_or_dilated_convolutions_are_refused():
    with pytest.raises(ValueError, match="groups 1, dilation 1"):
        sparse_conv.SparseConv2d(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="groups 1, dilation 1"):
        sparse_conv.SparseConv2d(nn.Conv2d(4, 4, 3, dilation=2))


def pruned_resnet(sparsity: float) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    dense = models.build_model("resnet10", 10, width=8).eval()
    with torch.no_grad():
        for module in dense.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
    scores = {name: p.abs() for name, p in masker.prunable_parameters(dense).items()}
    pruned = models.build_model("resnet10", 10, width=8)
    pruned.load_state_dict(dense.state_dict())
    return dense, masker.apply_masks(pruned.eval(), masker.global_masks(scores, sparsity))


def test_a_whole_pruned_network_runs_sparse():
    _, pruned = pruned_resnet(0.9)
    sparse = sparse_conv.sparsify(pruned)
    assert not any(isinstance(module, nn.Conv2d) for module in sparse.modules())
    assert sum(isinstance(module, sparse_conv.SparseConv2d) for module in sparse.modules()) == 12
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(sparse(images), pruned(images), **TOLERANCE)
    assert any(isinstance(module, nn.Conv2d) for module in pruned.modules()), "sparsify must copy"


def test_multiply_adds_count_output_positions_times_nonzero_weights():
    conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.weight[3, 1, 0, 0] = 2.0
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    table = sparse_conv.multiply_adds(model, torch.randn(2, 2, 5, 5)).set_index("layer")
    assert table.loc["0", "dense_macs"] == 25 * 72 and table.loc["0", "nonzero_macs"] == 25 * 2
    assert table.loc["2", "dense_macs"] == table.loc["2", "nonzero_macs"] == 300
    expected = (25 * 72 + 300) / (25 * 2 + 300)
    assert sparse_conv.theoretical_speedup(model, torch.randn(2, 2, 5, 5)) == pytest.approx(expected)


def test_every_backend_computes_the_same_network():
    dense, pruned = pruned_resnet(0.9)
    images = torch.randn(4, 3, 32, 32)
    table = inference.network_latency(
        {0.9: pruned}, dense, images, batch_sizes=(1, 4), min_run_time=0.01, progress=False
    )
    assert set(table["backend"]) == set(inference.BACKENDS)
    assert len(table) == 2 + 3 * 2
    assert (table["ms_per_batch"] > 0).all()
    assert (table["max_abs_logit_difference"] < 1e-4).all()


def test_unknown_backends_and_too_few_images_are_refused():
    dense, pruned = pruned_resnet(0.5)
    images = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown backend"):
        inference.network_latency({0.5: pruned}, dense, images, batch_sizes=(1,), backends=("tensorrt",))
    with pytest.raises(ValueError, match="a batch of 8 needs that many images"):
        inference.network_latency({0.5: pruned}, dense, images, batch_sizes=(8,))


def test_layer_latency_has_one_row_per_convolution_and_batch_size():
    _, pruned = pruned_resnet(0.9)
    table = inference.layer_latency(
        {0.9: pruned}, torch.randn(2, 3, 32, 32), batch_sizes=(1, 2), min_run_time=0.005, progress=False
    )
    assert len(table) == 12 * 2
    assert table["layer_sparsity"].between(0, 1).all()
    assert table["speedup"].to_numpy() == pytest.approx((table["dense_ms"] / table["sparse_ms"]).to_numpy())


def latency_rows(masked: dict[float, float], sparse: dict[float, float], batch_size: int = 1) -> pd.DataFrame:
    rows = [{"backend": "dense", "batch_size": batch_size, "sparsity": 0.0, "ms_per_batch": 10.0}]
    rows += [
        {"backend": "masked dense", "batch_size": batch_size, "sparsity": s, "ms_per_batch": ms}
        for s, ms in masked.items()
    ]
    rows += [
        {"backend": "sparse", "batch_size": batch_size, "sparsity": s, "ms_per_batch": ms} for s, ms in sparse.items()
    ]
    return pd.DataFrame(rows)


def test_the_crossover_is_interpolated_between_the_measured_sparsities():
    # masked/sparse: 0.5 at 50%, 2.0 at 90%: equal speed (1.0) a third of the way, at 50% + 40% / 3
    table = latency_rows({0.5: 10.0, 0.9: 10.0}, {0.5: 20.0, 0.9: 5.0})
    assert deployment.crossover(table, batch_size=1) == pytest.approx(0.5 + 0.4 / 3)
    assert deployment.crossover(latency_rows({0.5: 10.0}, {0.5: 5.0}), batch_size=1) == 0.5
    assert deployment.crossover(latency_rows({0.5: 10.0, 0.9: 10.0}, {0.5: 30.0, 0.9: 11.0}), batch_size=1) is None
    summary = deployment.crossover_table(table)
    assert summary.loc[0, "sparse_over_masked_dense_at_highest"] == pytest.approx(0.5)


def test_the_speedup_table_sets_measured_beside_theoretical():
    table = latency_rows({0.9: 8.0}, {0.9: 20.0})
    speedups = deployment.speedup_table(table, {0.9: 4.0}).set_index("backend")
    assert speedups.loc["masked dense", "measured_speedup"] == pytest.approx(10 / 8)
    assert speedups.loc["sparse", "measured_speedup"] == pytest.approx(0.5)
    assert (speedups["theoretical_speedup"] == 4.0).all()
