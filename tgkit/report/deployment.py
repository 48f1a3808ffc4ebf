"""What sparsity buys at deployment (notebook 05): file sizes, latency per backend, the crossover
where the sparse kernel overtakes the dense one, and the speed-up on paper beside the measured one.

    sizes = size_table(models, spec)                  bytes four ways per sparsity and value type
    size_findings(sizes)                              what the sizes show, counted: the sentences of notebook 05
    plot_sizes(sizes)
    latency = inference.network_latency({0.0: dense, **pruned}, ...)   every backend on the unpruned network too
    crossover(latency, batch_size=1)                  the sparsity where sparse becomes faster, or None
    plot_latency(latency)                             ms per image against sparsity, IQR bars, noisy runs flagged
    speedups = speedup_table(latency, macs)           each backend against its own unpruned run, beside the
    plot_speedup(speedups)                            theoretical speed-up (ShrinkBench's count)
    plot_layer_speedup(inference.layer_latency(...))  per convolution: where a layer's crossover lies

Every backend and value type has its colour, marker and line style of `tgkit.report.palette`. A timing
is flagged noisy when its interquartile range over the timed blocks exceeds `NOISY_IQR` of its median
(torch.utils.benchmark warns at the same 10%).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from torch import nn

from tgkit.deploy import export
from tgkit.deploy.inference import BACKENDS
from tgkit.report import palette
from tgkit.util.errors import InputError

SIZE_KINDS = {
    "dense_state_dict": "dense state dict (torch.save)",
    "dense_gzip": "dense, gzipped",
    "sparse_export": "sparse export",
    "sparse_export_gzip": "sparse export, gzipped",
}
NOISY_IQR = 0.1  # a timing whose IQR over the blocks exceeds this fraction of its median is flagged noisy


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


def size_findings(sizes: pd.DataFrame) -> dict:
    """What a `size_table` shows, counted over its float32 rows (one per sparsity): `levels`, at how many
    the dense state dict gzipped is smaller than the plain sparse export (`dense_gzip_beats_sparse`) and
    the sparse export gzipped is the smallest of the four (`sparse_gzip_smallest`), and at the highest
    sparsity the sparse export's share of the dense file (`top_sparsity`, `top_sparse_share`,
    `top_sparse_gzip_share`)."""
    fp32 = sizes[sizes["values"] == "float32"].sort_values("sparsity")
    top = fp32.iloc[-1]
    smallest = fp32[list(SIZE_KINDS)].idxmin(axis=1)
    return {
        "levels": len(fp32),
        "dense_gzip_beats_sparse": int((fp32["dense_gzip"] < fp32["sparse_export"]).sum()),
        "sparse_gzip_smallest": int((smallest == "sparse_export_gzip").sum()),
        "top_sparsity": float(top["sparsity"]),
        "top_sparse_share": float(top["sparse_export"] / top["dense_state_dict"]),
        "top_sparse_gzip_share": float(top["sparse_export_gzip"] / top["dense_state_dict"]),
    }


def _size_styles() -> dict[str, dict]:
    """A style per kind of file: colour by value type (dense: black), line style by container (gzip dotted,
    open markers)."""
    fp32 = palette.style("float32")
    dense = palette.style("dense")
    return {
        "dense_state_dict": dense,
        "dense_gzip": {**dense, "marker": "o", "linestyle": ":", "markerfacecolor": "white"},
        "sparse_export": fp32,
        "sparse_export_gzip": {**fp32, "linestyle": ":", "markerfacecolor": "white"},
    }


def plot_sizes(sizes: pd.DataFrame, *, title: str = "") -> Figure:
    """File size (MB, log scale) against sparsity: the four kinds of file in float32, and the sparse
    export with 16-bit values (each value type its own colour, marker and line style, so that bfloat16
    never hides under float16). The title states `size_findings`."""
    figure, ax = plt.subplots(figsize=(7.5, 4.5))
    fp32 = sizes[sizes["values"] == "float32"]
    for column, style in _size_styles().items():
        ax.plot(fp32["sparsity"], fp32[column] / 1e6, label=SIZE_KINDS[column], **style)
    for order, (value_type, group) in enumerate(sizes[sizes["values"] != "float32"].groupby("values")):
        style = palette.style(value_type)
        if order:  # the 16-bit files differ by bytes: each later one an open, larger ring around the one before
            style |= {"markerfacecolor": "none", "markersize": 6 + 4 * order}
        label = f"sparse export, {value_type} values"
        ax.plot(group["sparsity"], group["sparse_export"] / 1e6, label=label, **style)
    found = size_findings(sizes)
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (all weights)")
    ax.set_ylabel("file size (MB)")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=8)
    ax.set_title(
        f"at {found['top_sparsity']:.1%} the sparse export is {found['top_sparse_share']:.1%} of the dense file "
        f"({found['top_sparse_gzip_share']:.1%} gzipped);\nthe dense file gzipped is smaller than the plain sparse "
        f"export at {found['dense_gzip_beats_sparse']} of {found['levels']} sparsities",
        fontsize="small",
    )
    figure.suptitle(title or "what the file of a pruned network weighs")
    figure.tight_layout()
    return figure


def flag_noisy(latency: pd.DataFrame) -> pd.Series:
    """True where a `network_latency` row's IQR exceeds `NOISY_IQR` of its median: a timing to distrust."""
    return latency["ms_iqr"] > NOISY_IQR * latency["ms_per_batch"]


def _pivot(latency: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """ms per batch of the pruned networks (sparsity > 0) at `batch_size`, a column per backend."""
    rows = latency[(latency["batch_size"] == batch_size) & (latency["backend"] != "dense") & (latency["sparsity"] > 0)]
    return rows.pivot(index="sparsity", columns="backend", values="ms_per_batch").sort_index()


def crossover(latency: pd.DataFrame, *, batch_size: int, backend: str = "sparse") -> float | None:
    """The sparsity at which `backend` becomes as fast as masked dense at `batch_size`, linearly
    interpolated between the measured sparsities of the pruned networks; the first one if it is faster
    there already; None if it never is in the measured range."""
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
    """Per batch size: where sparse overtakes masked dense, sparse / masked dense at the highest sparsity,
    and how many of the masked dense and sparse timings it rests on are noisy (`flag_noisy`): a crossover
    between noisy timings is not one to trust."""
    rows = []
    compared = latency[latency["backend"].isin(["masked dense", "sparse"]) & (latency["sparsity"] > 0)]
    for batch_size in sorted(latency["batch_size"].unique()):
        table = _pivot(latency, batch_size)
        top = table.index.max()
        timings = compared[compared["batch_size"] == batch_size]
        rows.append(
            {
                "batch_size": int(batch_size),
                "crossover_sparsity": crossover(latency, batch_size=batch_size),
                "highest_sparsity": top,
                "sparse_over_masked_dense_at_highest": table.loc[top, "sparse"] / table.loc[top, "masked dense"],
                "noisy_timings": int(flag_noisy(timings).sum()),
                "timings": len(timings),
            }
        )
    return pd.DataFrame(rows)


def _per_image(rows: pd.DataFrame, batch_size: int) -> tuple[pd.Series, list[pd.Series]]:
    """Milliseconds per image (the median), and the distances from it down to the first quartile and up
    to the third of the timed blocks: an error bar spanning the IQR, never below zero."""
    median = rows["ms_per_batch"] / batch_size
    below = (median - rows["ms_q1"] / batch_size).clip(lower=0)
    above = (rows["ms_q3"] / batch_size - median).clip(lower=0)
    return median, [below, above]


def latency_takeaway(latency: pd.DataFrame, batch_size: int) -> str:
    """One panel's title from the numbers: where sparse overtakes masked dense (or that it never does
    here), and how many of the panel's timings are noisy (`flag_noisy`)."""
    rows = latency[latency["batch_size"] == batch_size]
    noisy = int(flag_noisy(rows).sum())
    at = crossover(latency, batch_size=batch_size)
    where = "sparse never faster than masked dense" if at is None else f"sparse faster from {at:.1%}"
    return f"batch of {batch_size}: {where}; {noisy} of {len(rows)} timings noisy"


def plot_latency(latency: pd.DataFrame, *, title: str = "") -> Figure:
    """Milliseconds per image against sparsity, one panel per batch size, one line per backend in its
    palette style (dense: the unpruned network, a level line), each point with an error bar from the first
    to the third quartile of its timed blocks;
    a noisy timing (`flag_noisy`) is ringed. The crossover of sparse and masked dense is marked where it
    exists; each panel's title says where it is and how many timings were noisy."""
    batch_sizes = sorted(latency["batch_size"].unique())
    figure, axes = plt.subplots(1, len(batch_sizes), figsize=(6 * len(batch_sizes), 4.6), squeeze=False)
    noisy = latency[flag_noisy(latency)]
    for ax, batch_size in zip(axes[0], batch_sizes):
        rows = latency[latency["batch_size"] == batch_size]
        for backend in BACKENDS:
            line = rows[rows["backend"] == backend].sort_values("sparsity")
            if line.empty:
                continue
            per_image, quartiles = _per_image(line, batch_size)
            style = palette.style(backend)
            if backend == "dense":
                ax.axhline(
                    per_image.iloc[0], color=style["color"], linestyle=style["linestyle"], label="dense (unpruned)"
                )
            else:
                ax.errorbar(line["sparsity"], per_image, yerr=quartiles, capsize=2, label=backend, **style)
        ringed = noisy[noisy["batch_size"] == batch_size]
        if not ringed.empty:
            ax.scatter(
                ringed["sparsity"],
                _per_image(ringed, batch_size)[0],
                s=160,
                facecolors="none",
                edgecolors=palette.GREY,
                linewidths=1.5,
                zorder=3,
                label=f"noisy: IQR > {NOISY_IQR:.0%} of the median",
            )
        if "sparse" in set(rows["backend"]):
            at = crossover(latency, batch_size=batch_size)
            if at is not None:
                ax.axvline(at, color=palette.color("sparse"), alpha=0.5, linestyle=":")
        ax.set_yscale("log")
        ax.set_xlabel("sparsity (all weights)")
        ax.set_ylabel("ms per image (median; bars: IQR)")
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_title(latency_takeaway(latency, batch_size), fontsize="small")
        ax.legend(fontsize=8)
    figure.suptitle(title or "latency on this CPU")
    figure.tight_layout()
    return figure


def speedup_table(latency: pd.DataFrame, theoretical: dict[float, float]) -> pd.DataFrame:
    """One row per (backend, batch size, sparsity) of the pruned networks: the measured speed-up of each
    backend over its own run of the unpruned network (the backend's sparsity-0 row: what the zeros buy
    that backend), beside the theoretical one, `theoretical[sparsity]` (dense over non-zero multiply-adds,
    `sparse_conv.theoretical_speedup`); and `over_eager_dense`, the speed-up over eager torch's dense run
    (what the engine buys: ONNX Runtime's fusion, not sparsity)."""
    unpruned = latency[latency["sparsity"] == 0]
    missing = sorted(set(latency["backend"]) - set(unpruned["backend"]))
    if missing:
        raise InputError(
            f"no run of the unpruned network for {missing}: time it too, "
            "inference.network_latency({0.0: dense, **pruned}, dense, ...)"
        )
    own = unpruned.set_index(["backend", "batch_size"])["ms_per_batch"]
    eager = unpruned[unpruned["backend"] == "dense"].set_index("batch_size")["ms_per_batch"]
    rows = latency[(latency["sparsity"] > 0) & (latency["backend"] != "dense")].copy()
    keys = pd.MultiIndex.from_frame(rows[["backend", "batch_size"]])
    rows["measured_speedup"] = own.reindex(keys).to_numpy() / rows["ms_per_batch"].to_numpy()
    rows["over_eager_dense"] = rows["batch_size"].map(eager) / rows["ms_per_batch"]
    rows["theoretical_speedup"] = rows["sparsity"].map(theoretical)
    columns = ["backend", "batch_size", "sparsity", "theoretical_speedup", "measured_speedup", "over_eager_dense"]
    return rows[columns].reset_index(drop=True)


def plot_speedup(speedups: pd.DataFrame, *, title: str = "") -> Figure:
    """Left: what the zeros buy, each backend against its own run of the unpruned network, beside the
    theoretical speed-up (what the arithmetic promises). Right: what the engine buys, each backend
    against eager torch's unpruned network, without the theory line (ONNX Runtime's lead there comes
    from fusion, not from the zeros). Batch sizes: the smallest solid with filled markers, the others
    dashed with open ones. Log scales."""
    figure, (zeros, engine) = plt.subplots(1, 2, figsize=(13, 4.6), sharey=False)
    theory = speedups.drop_duplicates("sparsity").sort_values("sparsity")
    zeros.plot(
        theory["sparsity"],
        theory["theoretical_speedup"],
        color=palette.BLACK,
        linewidth=2,
        label="theoretical (non-zero multiply-adds)",
    )
    smallest = speedups["batch_size"].min()
    for (backend, batch_size), line in speedups.groupby(["backend", "batch_size"]):
        style = {**palette.style(backend), "linestyle": "-" if batch_size == smallest else "--"}
        if batch_size != smallest:
            style["markerfacecolor"] = "white"
        label = f"{backend}, batch {batch_size}"
        zeros.plot(line["sparsity"], line["measured_speedup"], label=label, **style)
        engine.plot(line["sparsity"], line["over_eager_dense"], label=label, **style)
    candidates = speedups[speedups["backend"] == "sparse"] if "sparse" in set(speedups["backend"]) else speedups
    best = candidates.loc[candidates["measured_speedup"].idxmax()]
    zeros.set_title(
        f"each backend against its own unpruned run: {best['backend']} at most {best['measured_speedup']:.2f}x "
        f"(batch {best['batch_size']}, {best['sparsity']:.0%}), theory {theory['theoretical_speedup'].max():.1f}x",
        fontsize="small",
    )
    fastest = speedups.loc[speedups["over_eager_dense"].idxmax()]
    engine.set_title(
        f"against eager torch's unpruned network: {fastest['backend']} up to {fastest['over_eager_dense']:.1f}x, "
        "from the engine, not the zeros",
        fontsize="small",
    )
    for ax, ylabel in ((zeros, "speed-up from sparsity"), (engine, "speed-up over eager torch, dense")):
        ax.axhline(1, color=palette.GREY, lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("sparsity (all weights)")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.legend(fontsize=7, ncol=2)
    figure.suptitle(title or "the speed-up on paper and on this CPU")
    figure.tight_layout()
    return figure


def plot_layer_speedup(layers: pd.DataFrame, *, title: str = "") -> Figure:
    """Per convolution: dense over sparse time against the layer's own sparsity, in the sparse kernel's
    palette colour (the smallest batch filled, larger ones open), the marker growing with the layer's
    input resolution (im2col copies more of a larger one). The title counts the measurements where the
    sparse kernel wins."""
    figure, ax = plt.subplots(figsize=(7.5, 4.4))
    color = palette.color("sparse")
    smallest = layers["batch_size"].min()
    for batch_size, rows in layers.groupby("batch_size"):
        face = color if batch_size == smallest else "white"
        ax.scatter(
            rows["layer_sparsity"],
            rows["speedup"],
            s=6 * rows["input_size"],
            facecolors=face,
            edgecolors=color,
            alpha=0.8,
            label=f"batch {batch_size}",
        )
    ax.axhline(1, color=palette.GREY, lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("the layer's sparsity (marker size: the layer's input resolution)")
    ax.set_ylabel("dense time / sparse time  (> 1: sparse faster)")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=8)
    wins = int((layers["speedup"] > 1).sum())
    ax.set_title(f"the sparse kernel is faster in {wins} of {len(layers)} layer measurements", fontsize="small")
    figure.suptitle(title or "per convolution: where the sparse kernel pays")
    figure.tight_layout()
    return figure


def export_accuracy_table(rows: list[dict]) -> pd.DataFrame:
    """The accuracy of the exported values: one row per (sparsity, value type) with the pruned model's
    test accuracy, the reloaded export's, and the difference in points."""
    table = pd.DataFrame(rows)
    table["difference_points"] = 100 * (table["export_accuracy"] - table["pruned_accuracy"])
    return table
