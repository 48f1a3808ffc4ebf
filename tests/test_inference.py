"""`tgkit.deploy.inference`: the same pruned network computed by every backend (dense, masked dense,
sparse, ONNX Runtime) gives the same logits, timed per network and per convolution; unknown backends
and batches larger than the images given are refused."""

import pytest
import torch

from conftest import pruned_resnet10
from tgkit.deploy import inference


def test_every_backend_computes_the_same_network():
    dense, pruned = pruned_resnet10(0.9)
    images = torch.randn(4, 3, 32, 32)
    table = inference.network_latency(
        {0.9: pruned}, dense, images, batch_sizes=(1, 4), min_run_time=0.01, progress=False
    )
    assert set(table["backend"]) == {"dense", "masked dense", "sparse", "onnxruntime"}
    assert len(table) == 2 + 3 * 2
    assert (table["ms_per_batch"] > 0).all()
    assert (table["max_abs_logit_difference"] < 1e-4).all()


def test_repeats_take_the_median_of_their_medians_and_the_spread_of_all_their_blocks(monkeypatch):
    """Three repeats of every timing, the second one slow (a burst of other work): the median ignores it,
    the interquartile range of the blocks of all three shows it."""
    blocks = iter([[1.0, 1.0, 1.0, 1.0], [10.0, 10.0, 10.0, 10.0], [1.0, 2.0, 2.0, 2.0]] * 2)

    class Timed:
        def __init__(self, times):
            self.times, self.median = times, sorted(times)[len(times) // 2]

    monkeypatch.setattr(inference, "measure", lambda *arguments, min_run_time: Timed(next(blocks)))
    dense, _ = pruned_resnet10(0.5)
    table = inference.network_latency(
        {}, dense, torch.randn(2, 3, 32, 32), batch_sizes=(1,), backends=("dense",), repeats=3, progress=False
    )
    assert table.loc[0, "ms_per_batch"] == 1e3 * 2.0  # the medians 1, 10 and 2
    assert (table.loc[0, "ms_q1"], table.loc[0, "ms_q3"]) == (1e3 * 1.0, 1e3 * 10.0)  # of the 12 blocks
    assert table.loc[0, "ms_iqr"] == 1e3 * (10.0 - 1.0)
    with pytest.raises(ValueError, match="repeats takes a whole number"):
        inference.network_latency({}, dense, torch.randn(2, 3, 32, 32), batch_sizes=(1,), repeats=0)


def test_unknown_backends_and_too_few_images_are_refused():
    dense, pruned = pruned_resnet10(0.5)
    images = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown backend"):
        inference.network_latency({0.5: pruned}, dense, images, batch_sizes=(1,), backends=("tensorrt",))
    with pytest.raises(ValueError, match="a batch of 8 needs that many images"):
        inference.network_latency({0.5: pruned}, dense, images, batch_sizes=(8,))


def test_layer_latency_has_one_row_per_convolution_and_batch_size():
    _, pruned = pruned_resnet10(0.9)
    table = inference.layer_latency(
        {0.9: pruned}, torch.randn(2, 3, 32, 32), batch_sizes=(1, 2), min_run_time=0.005, progress=False
    )
    assert len(table) == 12 * 2
    assert table["layer_sparsity"].between(0, 1).all()
    assert table["speedup"].to_numpy() == pytest.approx((table["dense_ms"] / table["sparse_ms"]).to_numpy())
