"""Where the kit computes, and an honest clock there.

default_device()        CUDA when there is a GPU, else the CPU
device_name(device)     "NVIDIA H100 80GB HBM3", or "cpu (2 threads)": what tables and manifests print
numerics(device)        what changes a computation's numbers besides its settings: the device type
                        and, on a CPU, torch's thread count (1 and 2 threads give different
                        weights) and whether it has bf16 units; the run cache keys every stage by it
autocast_dtype(device, precision)
                        bf16 or None (fp32) for a `TrainConfig.precision`: "auto" is bf16 where the
                        device multiplies bf16 natively (`native_bf16`), "bf16" and "fp32" force it
memory_format_for(device, channels_last, precision, model)
                        channels_last where it pays, contiguous where it does not or breaks
checked_device(name)    a --device flag's value, refused in one line (InputError) where the kit cannot
                        run on it: not cpu or cuda, no GPU visible, a GPU index past the last
stopwatch(device)       wall-clock seconds of a block, queued GPU work waited for at both ends (a
                        `Stopwatch`, which also reads the time so far: the one timing helper)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from tgkit.hparams import PRECISIONS
from tgkit.util.errors import InputError


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def checked_device(name: str | None) -> str | None:
    """`name` (a command line's --device; None: the default device) if the kit can run on it here."""
    if name is None:
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name}: unknown device; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device {name}: the kit runs on cpu or cuda, not {device.type}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA GPU is visible here; use --device cpu, or leave --device out")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"--device {name}: there are {torch.cuda.device_count()} GPUs (cuda:0 to cuda:N-1)")
    return name


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work, so that wall-clock timings are honest."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def numerics(device: torch.device | str) -> dict:
    """What, besides the settings, decides the numbers a stage computes on `device` (on a CPU whether
    it has bf16 units too: `precision="auto"` trains in bf16 on one and in fp32 on another)."""
    device = torch.device(device)
    if device.type == "cpu":
        return {"device": "cpu", "cpu_threads": torch.get_num_threads(), "native_bf16": native_bf16(device)}
    return {"device": device.type}


# torch's own CPU capability queries: AMX tiles (Sapphire Rapids and later), AVX-512 BF16 (Cooper Lake, Zen 4)
CPU_BF16_QUERIES = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` multiplies bf16 in hardware: a CUDA GPU that supports it, or a CPU with AMX or
    AVX-512 BF16 whose AVX-512 torch uses (elsewhere bf16 is emulated, slower than fp32). A CPU capped at
    AVX2 (`ATEN_CPU_CAPABILITY=avx2`, as when a laptop is emulated on a bigger CPU) counts as one without."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        has_units = any(getattr(torch.cpu, query, lambda: False)() for query in CPU_BF16_QUERIES)
        return has_units and torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return False


def autocast_dtype(device: torch.device | str, precision: str) -> torch.dtype | None:
    """The dtype to autocast to for `precision` on `device` (see `PRECISIONS`), None for fp32."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "bf16" or (precision == "auto" and native_bf16(device)):
        return torch.bfloat16
    return None


def autocast(device: torch.device | str, precision: str) -> torch.autocast:
    """The autocast context of `precision` on `device`: bf16 where `autocast_dtype` says so, else a
    disabled one (fp32). Training, evaluation and scoring all enter it around their forward passes."""
    device = torch.device(device)
    dtype = autocast_dtype(device, precision)
    return torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def precision_name(device: torch.device | str, precision: str) -> str:
    """ "bf16" or "fp32": what `precision` trains in on `device`, as tables and manifests print it."""
    return "bf16" if autocast_dtype(device, precision) else "fp32"


class Stopwatch:
    """Wall-clock seconds since it was made, the GPU synchronised before every reading (kernels run
    asynchronously, so an unsynchronised clock would stop before the work it times)."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        synchronize(self.device)
        self.started = time.perf_counter()
        self.seconds = 0.0  # what `stopwatch` reads when its block ends

    def elapsed(self) -> float:
        synchronize(self.device)
        return time.perf_counter() - self.started


@contextmanager
def stopwatch(device: torch.device | str) -> Iterator[Stopwatch]:
    """`with stopwatch(device) as watch: ...`, then `watch.seconds`: the block's wall-clock, GPU
    synchronised at both ends (also when the block raises)."""
    watch = Stopwatch(device)
    try:
        yield watch
    finally:
        watch.seconds = watch.elapsed()


def memory_format_for(
    device: torch.device, channels_last: bool, precision: str, model: nn.Module | None = None
) -> torch.memory_format:
    """channels_last (NHWC) speeds up convolutions with tensor cores on a GPU, bf16 convolutions on a
    CPU (oneDNN's AMX kernels take NHWC), and fp32 convolutions on a CPU without bf16 units (oneDNN's
    AVX2 kernels: the laptop case, README "On the CPU"). Left contiguous: fp32 on a CPU with bf16 units,
    where NHWC was not found to pay, and fp32 on a CPU for a `model` with a `tiny_strided_1x1` layer."""
    fp32_cpu = device.type == "cpu" and autocast_dtype(device, precision) is None
    contiguous_fp32 = fp32_cpu and (native_bf16(device) or (model is not None and tiny_strided_1x1(model)))
    wanted = channels_last and not contiguous_fp32
    return torch.channels_last if wanted else torch.contiguous_format


def tiny_strided_1x1(model: nn.Module) -> bool:
    """Whether `model` has a strided 1x1 convolution (a ResNet shortcut) of fewer than 8 input channels:
    in NHWC and fp32 on an AVX2 CPU, torch 2.14's gradient of its weight corrupts the heap (found with
    ResNet-10 width 4 on 1 thread), so such a network trains contiguous there."""
    return any(
        isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1) and max(layer.stride) > 1 and layer.in_channels < 8
        for layer in model.modules()
    )
