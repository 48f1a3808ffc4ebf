"""`tgkit.deploy.sparse_conv`: a sparse convolution computes what the dense one does (any kernel, stride,
padding, bias and sparsity; one layer's transposed output read as the next one's input; a whole pruned
ResNet), refuses what it cannot compute, and counts its multiply-adds by hand."""

import pytest
import torch
from torch import nn

from conftest import pruned_resnet10
from tgkit.deploy import sparse_conv

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


def test_a_whole_pruned_network_runs_sparse():
    _, pruned = pruned_resnet10(0.9)
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
