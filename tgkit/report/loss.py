"""The teacher-guided loss on small tensors (notebook 01, part 2): what the temperature does to CA-KLD
in either order of normalising the logits and dividing them by T.

    ca_kld_by_temperature(student_logits, teacher_logits, temperatures)   one row per order and T
    plot_ca_kld_by_temperature(table)                                    CA-KLD and T^2 * CA-KLD against T
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor

from tgkit import losses
from tgkit.report import palette


def ca_kld_by_temperature(
    student_logits: Tensor, teacher_logits: Tensor, temperatures: Iterable[float], *, beta: float = 0.5
) -> pd.DataFrame:
    """CA-KLD of the same logits at each temperature, in both orders (`losses.ORDERS`).

    Columns: order, temperature, ca_kld, scaled_ca_kld (T^2 * CA-KLD, the distillation term of the
    total loss up to alpha), scaled_gradient_norm (the norm of the gradient of T^2 * CA-KLD with
    respect to the student's logits: how hard the term pushes the student).
    """
    rows = []
    for order in losses.ORDERS:
        for temperature in temperatures:
            logits = student_logits.detach().clone().requires_grad_(True)
            kd = losses.ca_kld(logits, teacher_logits.detach(), temperature, beta, order)
            (gradient,) = torch.autograd.grad(temperature**2 * kd, logits)
            rows.append(
                {
                    "order": order,
                    "temperature": float(temperature),
                    "ca_kld": kd.item(),
                    "scaled_ca_kld": temperature**2 * kd.item(),
                    "scaled_gradient_norm": gradient.norm().item(),
                }
            )
    return pd.DataFrame(rows)


def plot_ca_kld_by_temperature(table: pd.DataFrame) -> Figure:
    """CA-KLD (left, log scale) and T^2 * CA-KLD (right) against T, one line per order, each in its
    `palette` style. The titles say what the two orders show on any logits (`ca_kld_by_temperature`'s
    test checks it): T cancels in the authors' order, T^2 undoes the 1/T^2 in the paper's."""
    figure, (raw_axes, scaled_axes) = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = {"paper": "paper: softmax(norm(z) / T)", "authors": "authors' code: softmax(norm(z / T))"}
    for order, rows in table.groupby("order", sort=False):
        raw_axes.plot(rows["temperature"], rows["ca_kld"], **palette.style(order), label=labels[order])
        scaled_axes.plot(rows["temperature"], rows["scaled_ca_kld"], **palette.style(order), label=labels[order])
    raw_axes.set(
        xlabel="temperature T", ylabel="CA-KLD", yscale="log", title="CA-KLD: falls with T (paper), flat (authors')"
    )
    scaled_axes.set(
        xlabel="temperature T",
        ylabel="T² · CA-KLD",
        title="T² · CA-KLD: flat (paper), grows as T² (authors')",
    )
    for axes in (raw_axes, scaled_axes):
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure
