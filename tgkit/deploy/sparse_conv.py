"""Convolutions that skip the pruned weights: a sparse matrix product behind the Conv2d interface,
and the arithmetic it saves on paper.

A convolution is a matrix product. Unfold the input into columns, one per output position, each
holding the C_in * k * k input values that position sees (im2col); then

    out[:, p] = W @ cols[:, p]        W: the kernel as a C_out x (C_in * k * k) matrix

With W stored as CSR (`torch.sparse_csr_tensor`), the product touches only W's non-zero entries, so
its multiply-adds fall with the sparsity. The im2col does not: it copies the input k * k times
whatever the sparsity, which is why a dense convolution (that never builds the columns, or builds
them in cache-sized tiles) stays faster until few weights are left, and why the crossover depends on
the layer's shape and the batch size. `SparseConv2d` computes on a (C, N, H, W) layout, so that the
columns of all images of a batch form one matrix and one product covers the batch.

The saving on paper, as ShrinkBench counts it: a layer's multiply-adds per image are
(output positions) x (non-zero weights) for a convolution, (non-zero weights) for a linear layer;
the theoretical speed-up of a network is its dense multiply-adds over its non-zero ones.
"""

from __future__ import annotations

import copy
import warnings

import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from tgkit.util.errors import InputError


class SparseConv2d(nn.Module):
    """An inference-only `nn.Conv2d` (groups 1, dilation 1, zero padding) whose kernel is a CSR matrix."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise InputError(
                f"SparseConv2d takes a convolution with groups 1, dilation 1 and numeric zero padding; got {conv}"
            )
        self.out_channels, self.in_channels = conv.out_channels, conv.in_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        weight = conv.weight.detach().reshape(conv.out_channels, -1)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
            warnings.simplefilter("ignore", UserWarning)
            self.weight = weight.to_sparse_csr()
        self.bias = None if conv.bias is None else conv.bias.detach().clone()
        self.nnz, self.numel = int(self.weight.values().numel()), weight.numel()

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, density={self.nnz / self.numel:.2%}"
        )

    def forward(self, x: Tensor) -> Tensor:
        images = x.shape[0]
        columns, height, width = im2col(x.transpose(0, 1), self.kernel_size, self.stride, self.padding)
        out = torch.sparse.mm(self.weight, columns)
        if self.bias is not None:
            out += self.bias[:, None]
        # (C_out, N, H, W) seen as (N, C_out, H, W): no copy; the next SparseConv2d reads it as it is
        return out.reshape(self.out_channels, images, height, width).transpose(0, 1)


def im2col(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> tuple:
    """The columns of a convolution of `x`, laid out (C, N, H, W): a (C * kh * kw) x (N * H_out * W_out)
    matrix, with H_out and W_out. One strided view of the padded input, copied once (faster than
    `F.unfold`, which also leaves the images apart)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph))
    channels, images, height, width = x.shape
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    c, n, h, w = x.stride()
    view = x.as_strided((channels, kh, kw, images, out_h, out_w), (c, h, w, n, h * sh, w * sw), x.storage_offset())
    return view.reshape(channels * kh * kw, images * out_h * out_w), out_h, out_w


def sparsify(model: nn.Module) -> nn.Module:
    """A copy of `model` (in eval mode) with every `nn.Conv2d` replaced by a `SparseConv2d`."""
    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, SparseConv2d(child))
    return model


# --------------------------------------------------------------------------------------------------
# the arithmetic on paper


def multiply_adds(model: nn.Module, example: Tensor) -> pd.DataFrame:
    """One row per Conv2d and Linear layer: its weights, non-zero weights, and multiply-adds per image,
    dense and counting only the non-zero weights (ShrinkBench's count), from one forward of `example`."""
    rows, hooks = [], []

    def record(name: str):
        def hook(module: nn.Module, inputs, output: Tensor) -> None:
            positions = output[0, 0].numel() if isinstance(module, nn.Conv2d) else 1
            weights, nonzero = module.weight.numel(), int(torch.count_nonzero(module.weight))
            rows.append(
                {
                    "layer": name,
                    "kind": "conv" if isinstance(module, nn.Conv2d) else "linear",
                    "weights": weights,
                    "nonzero_weights": nonzero,
                    "dense_macs": positions * weights,
                    "nonzero_macs": positions * nonzero,
                }
            )

        return hook

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            hooks.append(module.register_forward_hook(record(name)))
    try:
        with torch.inference_mode():
            model.eval()(example[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return pd.DataFrame(rows)


def theoretical_speedup(model: nn.Module, example: Tensor) -> float:
    """Dense multiply-adds over non-zero ones, for the whole network (conv and linear layers)."""
    table = multiply_adds(model, example)
    return float(table["dense_macs"].sum() / table["nonzero_macs"].sum())
