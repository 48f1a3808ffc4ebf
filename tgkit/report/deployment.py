"""What sparsity buys at deployment (notebook 05): file sizes, latency per backend, the crossover
where the sparse kernel overtakes the dense one, and the speed-up on paper beside the measured one.

    sizes = size_table(models, spec)                  bytes four ways per sparsity and value type
    plot_sizes(sizes)
    latency = inference.network_latency(...)          (tgkit.deploy.inference)
    crossover(latency, batch_size=1)                  the sparsity where sparse becomes faster, or None
    plot_latency(latency)                             ms per image against sparsity, crossover marked
    speedups = speedup_table(latency, macs)           measured against theoretical (ShrinkBench's count)
    plot_speedup(speedups)
    plot_layer_speedup(inference.layer_latency(...))  per convolution: where a layer's crossover lies
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from torch import nn

from tgkit.deploy import export

SIZE_KINDS = {
    "dense_state_dict": "dense state dict (torch.save)",
    "dense_gzip": "dense, gzipped",
    "sparse_export": "sparse export",
    "sparse_export_gzip": "sparse export, gzipped",
}
BACKEND_STYLES = {"dense": "k:", "masked dense": "C0o-", "sparse": "C3s-", "onnxruntime": "C2^-"}


def size_table(models: dict[float, nn.Module], spec: dict, *, values: tuple[str, ...] = ("float32",)) -> pd.DataFrame:
    """One row per (sparsity, value type): the bytes of each kind of file (`export.size_row`) and the
    sparse export's share of the dense state dict. `models` maps a sparsity to its pruned model."""
    rows = []
    for sparsity, model in sorted(models.items()):
        for value_type in values:
            sizes = export.size_row(model, spec, values=value_type)
            rows.append(
                {
                    "sparsity": sparsity,
                    "values": value_type,
                    **sizes,
                    "sparse_share": sizes["sparse_export"] / sizes["dense_state_dict"],
                }
            )
    return pd.DataFrame(rows)


def plot_sizes(sizes: pd.DataFrame, *, title: str = "") -> Figure:
    """File size (MB, log scale) against sparsity: the four kinds of file in float32, and the sparse
    export with 16-bit values dashed."""
    figure, ax = plt.subplots(figsize=(7, 4.2))
    fp32 = sizes[sizes["values"] == "float32"]
    for column, label in SIZE_KINDS.items():
        ax.plot(fp32["sparsity"], fp32[column] / 1e6, "o-", label=label)
    for value_type, group in sizes[sizes["values"] != "float32"].groupby("values"):
        ax.plot(group["sparsity"], group["sparse_export"] / 1e6, "--", label=f"sparse export, {value_type} values")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (all weights)")
    ax.set_ylabel("file size (MB)")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=8)
    ax.set_title(title or "what the file of a pruned network weighs")
    figure.tight_layout()
    return figure


def _pivot(latency: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    rows = latency[(latency["batch_size"] == batch_size) & (latency["backend"] != "dense")]
    return rows.pivot(index="sparsity", columns="backend", values="ms_per_batch").sort_index()


def crossover(latency: pd.DataFrame, *, batch_size: int, backend: str = "sparse") -> float | None:
    """The sparsity at which `backend` becomes as fast as masked dense at `batch_size`, linearly
    interpolated between the measured sparsities; the first measured one if it is faster there already;
    None if it never is in the measured range."""
    table = _pivot(latency, batch_size)
    ratio = (table["masked dense"] / table[backend]).to_numpy()  # > 1: backend faster
    levels = table.index.to_numpy()
    faster = np.flatnonzero(ratio >= 1)
    if not len(faster):
        return None
    first = faster[0]
    if first == 0:
        return float(levels[0])
    (x0, x1), (y0, y1) = levels[first - 1 : first + 1], ratio[first - 1 : first + 1]
    return float(x0 + (1 - y0) * (x1 - x0) / (y1 - y0))


def crossover_table(latency: pd.DataFrame) -> pd.DataFrame:
    """Per batch size: where sparse overtakes masked dense, and sparse / masked dense at the highest sparsity."""
    rows = []
    for batch_size in sorted(latency["batch_size"].unique()):
        table = _pivot(latency, batch_size)
        top = table.index.max()
        rows.append(
            {
                "batch_size": int(batch_size),
                "crossover_sparsity": crossover(latency, batch_size=batch_size),
                "highest_sparsity": top,
                "sparse_over_masked_dense_at_highest": table.loc[top, "sparse"] / table.loc[top, "masked dense"],
            }
        )
    return pd.DataFrame(rows)


def plot_latency(latency: pd.DataFrame, *, title: str = "") -> Figure:
    """Milliseconds per image against sparsity, one panel per batch size, one line per backend (dense:
    the unpruned network, a level line); the crossover of sparse and masked dense marked where it exists."""
    batch_sizes = sorted(latency["batch_size"].unique())
    figure, axes = plt.subplots(1, len(batch_sizes), figsize=(5.5 * len(batch_sizes), 4.2), squeeze=False)
    for ax, batch_size in zip(axes[0], batch_sizes):
        rows = latency[latency["batch_size"] == batch_size]
        for backend, style in BACKEND_STYLES.items():
            line = rows[rows["backend"] == backend]
            if line.empty:
                continue
            per_image = line["ms_per_batch"] / batch_size
            if backend == "dense":
                ax.axhline(per_image.iloc[0], color="k", linestyle=":", label="dense (unpruned)")
            else:
                ax.plot(line["sparsity"], per_image, style, label=backend)
        if "sparse" in set(rows["backend"]):
            at = crossover(latency, batch_size=batch_size)
            if at is None:
                ax.text(
                    0.02, 0.95, "sparse never faster here", transform=ax.transAxes, fontsize=8, color="C3", va="top"
                )
            else:
                ax.axvline(at, color="C3", alpha=0.5)
                ax.annotate(f"crossover {at:.1%}", (at, ax.get_ylim()[1]), fontsize=8, color="C3", va="top", ha="right")
        ax.set_yscale("log")
        ax.set_xlabel("sparsity (all weights)")
        ax.set_ylabel("ms per image")
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_title(f"batch of {batch_size}")
        ax.legend(fontsize=8)
    figure.suptitle(title or "latency on this CPU")
    figure.tight_layout()
    return figure


def speedup_table(latency: pd.DataFrame, theoretical: dict[float, float]) -> pd.DataFrame:
    """One row per (backend, batch size, sparsity): measured speed-up over the dense network (its ms
    over the backend's) beside the theoretical one, `theoretical[sparsity]` (dense over non-zero
    multiply-adds, `sparse_conv.theoretical_speedup`)."""
    dense = latency[latency["backend"] == "dense"].set_index("batch_size")["ms_per_batch"]
    rows = latency[latency["backend"] != "dense"].copy()
    rows["measured_speedup"] = rows["batch_size"].map(dense) / rows["ms_per_batch"]
    rows["theoretical_speedup"] = rows["sparsity"].map(theoretical)
    return rows[["backend", "batch_size", "sparsity", "theoretical_speedup", "measured_speedup"]].reset_index(drop=True)


def plot_speedup(speedups: pd.DataFrame, *, title: str = "") -> Figure:
    """Speed-up over the dense network against sparsity: the theoretical one (what the arithmetic
    promises) and the measured one of each backend and batch size, on a log scale."""
    figure, ax = plt.subplots(figsize=(7, 4.2))
    theory = speedups.drop_duplicates("sparsity").sort_values("sparsity")
    ax.plot(theory["sparsity"], theory["theoretical_speedup"], "k-", lw=2, label="theoretical (non-zero multiply-adds)")
    for (backend, batch_size), line in speedups.groupby(["backend", "batch_size"]):
        style = BACKEND_STYLES[backend] + ("" if batch_size == speedups["batch_size"].min() else "-")
        ax.plot(line["sparsity"], line["measured_speedup"], style, label=f"{backend}, batch {batch_size}", alpha=0.8)
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (all weights)")
    ax.set_ylabel("speed-up over the dense network")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title or "the speed-up on paper and on this CPU")
    figure.tight_layout()
    return figure


def plot_layer_speedup(layers: pd.DataFrame, *, title: str = "") -> Figure:
    """Per convolution: dense over sparse time against the layer's own sparsity, one colour per batch
    size, the marker size growing with the layer's input resolution (im2col copies more of a larger one)."""
    figure, ax = plt.subplots(figsize=(7, 4.2))
    sns.scatterplot(layers, x="layer_sparsity", y="speedup", hue="batch_size", size="input_size", palette="deep", ax=ax)
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("the layer's sparsity")
    ax.set_ylabel("dense time / sparse time  (> 1: sparse faster)")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(title or "per convolution: where the sparse kernel pays")
    figure.tight_layout()
    return figure


def export_accuracy_table(rows: list[dict]) -> pd.DataFrame:
    """The accuracy of the exported values: one row per (sparsity, value type) with the pruned model's
    test accuracy, the reloaded export's, and the difference in points."""
    table = pd.DataFrame(rows)
    table["difference_points"] = 100 * (table["export_accuracy"] - table["pruned_accuracy"])
    return table
