"""Four ways to run a pruned network on the CPU, and one clock for all of them.

    dense          the dense student, before pruning: the baseline every deployment starts from
    masked dense   the pruned student as trained: zeros in dense tensors, torch's dense kernels
    sparse         the pruned student with every convolution a `SparseConv2d` (CSR kernel, im2col)
    onnxruntime    the pruned student exported to ONNX (torch.onnx, dynamo exporter) and run by
                   ONNX Runtime's CPU provider, the conventional deployment path

Zeros are free only where a kernel skips them: masked dense costs what dense costs, and so does
ONNX Runtime (its convolutions are dense; it folds BatchNorm and fuses activations, so it may beat
torch at any sparsity, not because of it). Only `sparse` does less arithmetic as the sparsity grows.

The clock is `torch.utils.benchmark.Timer.blocked_autorange` (warm-up, then blocks of calls until
`min_run_time` seconds, the median block), at torch's thread count for every backend, ONNX Runtime
included, in `torch.inference_mode`.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.benchmark import Measurement, Timer

from tgkit import masker, models, scorer
from tgkit.deploy.sparse_conv import SparseConv2d, sparsify
from tgkit.hparams import DeploymentConfig
from tgkit.util.errors import InputError
from tgkit.util.progress import progress_bar

BACKENDS = ("dense", "masked dense", "sparse", "onnxruntime")


def onnx_model(model: nn.Module, example: Tensor) -> bytes:
    """`model` as an ONNX model (torch.onnx's dynamo exporter, any batch size), serialised.

    `example` holds at least two images: torch.export would specialise a batch of one to the size 1."""
    if example.shape[0] < 2:
        raise InputError("export with an example batch of at least 2 images (a batch of 1 fixes the batch size)")
    batch = torch.export.Dim("batch")
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints each of its steps
        program = torch.onnx.export(
            model.eval(), (example,), None, input_names=["images"], output_names=["logits"],
            dynamo=True, dynamic_shapes=({0: batch},), verbose=False,
        )  # fmt: skip
    return program.model_proto.SerializeToString()


def onnx_session(serialised: bytes):
    """An ONNX Runtime CPU session of a serialised model, with torch's thread count."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            "the onnxruntime backend needs onnxruntime: pip install -r requirements.txt (it pins the version)"
        ) from error
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings only: ORT logs every graph optimisation otherwise
    return onnxruntime.InferenceSession(serialised, options, providers=["CPUExecutionProvider"])


def runner(backend: str, model: nn.Module, example: Tensor) -> Callable[[Tensor], Tensor]:
    """A function images -> logits running `model` (on the CPU) through `backend` (see `BACKENDS`);
    "dense" and "masked dense" are the same call, on the dense and on the pruned model."""
    model = model.cpu().eval()
    if backend in ("dense", "masked dense"):
        return model
    if backend == "sparse":
        return sparsify(model)
    if backend == "onnxruntime":
        session = onnx_session(onnx_model(model, example))
        return lambda images: torch.from_numpy(session.run(None, {"images": images.numpy()})[0])
    raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def measure(function: Callable, *arguments, min_run_time: float = 0.5) -> Measurement:
    """Seconds per call of `function(*arguments)` over blocks of calls (`Timer.blocked_autorange`): the
    measurement's `median`, and its `iqr` over the blocks, the spread that says how noisy it was."""
    timer = Timer(
        "function(*arguments)",
        globals={"function": function, "arguments": arguments},
        num_threads=torch.get_num_threads(),  # Timer's default is one thread
    )
    with torch.inference_mode():
        return timer.blocked_autorange(min_run_time=min_run_time)


def seconds_per_call(function: Callable, *arguments, min_run_time: float = 0.5) -> float:
    """The median seconds of one call of `function(*arguments)` (`measure`)."""
    return measure(function, *arguments, min_run_time=min_run_time).median


def network_latency(
    pruned: dict[float, nn.Module],
    dense: nn.Module,
    images: Tensor,
    *,
    batch_sizes: tuple[int, ...],
    backends: tuple[str, ...] = BACKENDS,
    min_run_time: float = 0.5,
    repeats: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per (backend, batch size, sparsity): milliseconds per batch (the median), the quartiles
    of the timed blocks (`ms_q1`, `ms_q3`) and their distance (`ms_iqr`), images per second of the
    whole network on `images[:batch_size]`, and the largest difference of its logits from the masked
    dense model's (the check that the backend computes the same network). "dense" is timed once per
    batch size, at sparsity 0. `pruned` maps a sparsity to its pruned model.

    `repeats` > 1 times every (backend, batch size, sparsity) that many times, each in turn with all
    the others, so that a burst of other work on the machine spoils one repeat rather than a whole
    measurement: `ms_per_batch` is then the median of the repeats' medians, and `ms_iqr` the
    interquartile range of all their blocks together, which a slow repeat widens."""
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise InputError(f"unknown backend(s) {sorted(unknown)}; choose from {', '.join(BACKENDS)}")
    if max(batch_sizes) > len(images):
        raise InputError(f"a batch of {max(batch_sizes)} needs that many images; got {len(images)}")
    if repeats < 1:
        raise InputError(f"repeats takes a whole number of timings per measurement, at least 1; got {repeats}")
    images = images.cpu()
    work = [("dense", 0.0, dense)] if "dense" in backends else []
    work += [(backend, s, model) for s, model in sorted(pruned.items()) for backend in backends if backend != "dense"]
    rows, calls = [], []
    for backend, sparsity, model in progress_bar(work, desc="network latency", disable=not progress):
        run = runner(backend, model, images[:2])
        for batch_size in batch_sizes:
            batch = images[:batch_size]
            with torch.inference_mode():
                difference = (run(batch) - model.cpu().eval()(batch)).abs().max().item()
            rows.append({"backend": backend, "batch_size": batch_size, "sparsity": sparsity})
            calls.append((run, batch, difference))
    measured = [[] for _ in calls]
    for _ in range(repeats):
        for measurements, (run, batch, _) in zip(measured, calls):
            measurements.append(measure(run, batch, min_run_time=min_run_time))
    for row, measurements, (_, _, difference) in zip(rows, measured, calls):
        seconds = float(np.median([measurement.median for measurement in measurements]))
        first, third = np.percentile([time for measurement in measurements for time in measurement.times], [25, 75])
        row.update(
            ms_per_batch=1e3 * seconds,
            ms_q1=1e3 * first,
            ms_q3=1e3 * third,
            ms_iqr=1e3 * (third - first),
            images_per_s=row["batch_size"] / seconds,
            max_abs_logit_difference=difference,
        )
    return pd.DataFrame(rows)


def layer_inputs(model: nn.Module, images: Tensor) -> dict[str, tuple[nn.Conv2d, Tensor]]:
    """Every Conv2d of `model` with the input it sees when the network runs on `images`."""
    seen, hooks = {}, []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(
                module.register_forward_hook(lambda m, inputs, out, name=name: seen.update({name: (m, inputs[0])}))
            )
    try:
        with torch.inference_mode():
            model.cpu().eval()(images.cpu())
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def layer_latency(
    pruned: dict[float, nn.Module],
    images: Tensor,
    *,
    batch_sizes: tuple[int, ...],
    min_run_time: float = 0.2,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per (sparsity, batch size, convolution): the layer's shape and sparsity, the milliseconds
    of the dense convolution (masked weights) and of its `SparseConv2d`, each on the input the layer
    sees in the network, and dense / sparse (> 1: the sparse kernel is faster)."""
    work = [(s, b) for s in sorted(pruned) for b in batch_sizes]
    rows = []
    for sparsity, batch_size in progress_bar(work, desc="layer latency", disable=not progress):
        for name, (conv, x) in layer_inputs(pruned[sparsity], images[:batch_size]).items():
            sparse = SparseConv2d(conv)
            dense_s = seconds_per_call(conv, x, min_run_time=min_run_time)
            sparse_s = seconds_per_call(sparse, x, min_run_time=min_run_time)
            rows.append(
                {
                    "sparsity": sparsity,
                    "batch_size": batch_size,
                    "layer": name,
                    "shape": "x".join(map(str, conv.weight.shape)),
                    "input_size": x.shape[-1],
                    "layer_sparsity": 1 - sparse.nnz / sparse.numel,
                    "dense_ms": 1e3 * dense_s,
                    "sparse_ms": 1e3 * sparse_s,
                    "speedup": dense_s / sparse_s,
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# the benchmark's table (python -m tgkit.bench --inference)


def benchmark(arch: str, width: int, image_shape: tuple[int, int, int], settings: DeploymentConfig) -> pd.DataFrame:
    """`network_latency` of a freshly initialised `arch` at the sparsities and batch sizes of `settings`,
    each a global magnitude mask of its weights (the pattern, not the values, sets the cost)."""
    torch.manual_seed(0)
    dense = models.build_model(arch, 10, in_channels=image_shape[0], width=width).eval()
    pruned = {
        sparsity: masker.apply_masks(
            copy.deepcopy(dense), masker.global_masks(scorer.magnitude_scores(dense), sparsity)
        )
        for sparsity in settings.sparsities
    }
    images = torch.randn(max(settings.batch_sizes), *image_shape)
    table = network_latency(pruned, dense, images, batch_sizes=settings.batch_sizes, min_run_time=settings.min_run_time)
    return table.assign(student=f"{arch} width {width}", threads=torch.get_num_threads())


def format_latency(latency: pd.DataFrame) -> str:
    """A `benchmark` table as text: ms per batch of each backend, one row per batch size and sparsity."""
    shown = latency.pivot_table(index=["batch_size", "sparsity"], columns="backend", values="ms_per_batch")
    head = f"CPU inference, {latency['student'].iloc[0]}, {latency['threads'].iloc[0]} thread(s): ms per batch"
    return head + "\n" + shown.to_string(float_format=lambda value: f"{value:9.3f}", na_rep="") + "\n"
