"""Where the kit computes, and an honest clock there.

default_device()        CUDA when there is a GPU, else the CPU
device_name(device)     "NVIDIA H100 80GB HBM3", or "cpu (2 threads)": what tables and manifests print
numerics(device)        what changes a computation's numbers besides its settings: the device type
                        and, on a CPU, torch's thread count (1 and 2 threads give different
                        weights); the run cache keys every stage by it
stopwatch(device)       wall-clock seconds of a block, queued GPU work waited for at both ends (a
                        `Stopwatch`, which also reads the time so far: the one timing helper)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
    """What, besides the settings, decides the numbers a stage computes on `device`."""
    device = torch.device(device)
    if device.type == "cpu":
        return {"device": "cpu", "cpu_threads": torch.get_num_threads()}
    return {"device": device.type}


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
