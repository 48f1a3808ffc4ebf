"""The run cache: every stage of a run computed once, in a folder named by everything it depends on.

    cache = RunCache(root, device)
    teacher = cache.stage("teacher", NetworkTraining(...), upstream=[data.id])
    result = teacher.run(compute)          # compute(stage) -> dict, once; afterwards read back
    model = teacher.load("model.pt")

A stage's key hashes three things (`stage_identity`): the stage's own config dataclass, whole
(`dataclasses.asdict`, so a field added to it enters the key by itself), the ids of the stages it
builds on, and `device.numerics(device)`, what changes its numbers besides its settings (the device
type, and on a CPU torch's thread count). The same configuration on the same kind of device reuses a
stage; anything else computes its own. Its folder `<root>/<name>-<key>/` holds

    settings.json     the three, for a reader
    <products>        what the stage writes (`save`): a model, scores, checkpoints to resume from
    progress.json     seconds of work up to its last checkpoint, while it is unfinished
    result.pt         written last: a stage with a result is done

Several processes may share a cache (notebooks side by side, jobs on a shared file system): a lock
per stage lets one compute it while the others wait, then read what it wrote.

Time. `result["seconds"]` is the stage's wall-clock (GPU synchronised) summed over every attempt up
to its last checkpoint: a stage killed and resumed counts the epochs it kept, not only the resumed
ones. A stage that fails before it saved anything leaves no folder behind, and a file a killed
attempt was writing (a temporary name, never read) is removed when the stage runs again.

Damage. A result or product that cannot be read raises `CheckpointError` naming the stage's folder,
to delete so that the stage is recomputed; nothing is deleted for you.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from tgkit.util import checkpoint
from tgkit.util.device import Stopwatch, device_name, numerics
from tgkit.util.errors import TgkitError

RESULT, SETTINGS, PROGRESS = "result.pt", "settings.json", "progress.json"
LOCKS = ".locks"  # beside the stage folders, never inside one: a lock outlives a failed stage's folder


class RunCacheIsAFile(TgkitError, NotADirectoryError):
    """The run cache's path names a file; the message says how to point it at a folder."""


def plain(config: Any) -> Any:
    """A config as JSON-able data: a dataclass becomes its type name and fields, recursively; a field marked
    `metadata={"key": "if set"}` is left out while at its default (a field added so, changes no earlier key)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        unset = {
            f.name
            for f in dataclasses.fields(config)
            if f.metadata.get("key") == "if set" and values[f.name] == f.default
        }
        return {"type": type(config).__name__, **{k: plain(v) for k, v in values.items() if k not in unset}}
    if isinstance(config, (list, tuple)):
        return [plain(value) for value in config]
    if isinstance(config, dict):
        return {str(key): plain(value) for key, value in config.items()}
    return config


def stage_identity(name: str, config: Any, upstream: Iterable[str], numbers: dict) -> tuple[str, dict]:
    """(`<name>-<12 hex digits>`, the settings hashed): the id of a stage and what it is made of."""
    settings = {"stage": name, "config": plain(config), "upstream": list(upstream), "numerics": numbers}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{name}-{digest}", settings


class RunCache:
    """The stages of runs under `root`, computed on `device`."""

    def __init__(self, root: str | Path, device: torch.device | str):
        self.root = Path(root)
        self.device = torch.device(device)
        if self.root.exists() and not self.root.is_dir():
            raise RunCacheIsAFile(f"the run cache {self.root} is a file; pass a folder (--runs-dir, TGKIT_RUNS)")

    def stage(self, name: str, config: Any, *, upstream: Iterable[str] = ()) -> Stage:
        """The stage `name` for `config` on top of the stages `upstream` (their ids); nothing is written yet."""
        stage_id, settings = stage_identity(name, config, upstream, numerics(self.device))
        return Stage(self, name, config, stage_id, settings)


class Stage:
    """One stage's folder, products and result; see the module docstring. `config` is the dataclass
    it is keyed by, `settings` everything its id hashes."""

    def __init__(self, cache: RunCache, name: str, config: Any, stage_id: str, settings: dict):
        self.cache, self.name, self.config, self.id, self.settings = cache, name, config, stage_id, settings
        self.folder = cache.root / stage_id
        self._carried = 0.0  # seconds of earlier attempts, up to their last checkpoint
        self._watch: Stopwatch | None = None

    def __repr__(self) -> str:
        return f"Stage({self.folder})"

    @property
    def done(self) -> bool:
        return (self.folder / RESULT).is_file()

    def run(self, compute: Callable[[Stage], dict]) -> dict:
        """The stage's result: read back if it is done, else `compute(self)`'s dict with "seconds" and
        "device" added, saved. "cached" says which. Another process computing it is waited for."""
        with self._locked():
            if self.done:
                return {**self.load(RESULT), "cached": True}
            self.folder.mkdir(parents=True, exist_ok=True)
            for partial in self.folder.glob(".*.tmp"):  # what a killed attempt was writing: never read
                partial.unlink(missing_ok=True)
            checkpoint.write_json_atomic(self.settings, self.folder / SETTINGS)
            self._carried = self._progress_seconds()
            self._watch = Stopwatch(self.cache.device)
            try:
                result = compute(self)
            except BaseException:
                self._remove_if_nothing_saved()
                raise
            result = {**result, "seconds": self._elapsed(), "device": device_name(self.cache.device)}
            checkpoint.save_atomic(result, self.folder / RESULT)
            (self.folder / PROGRESS).unlink(missing_ok=True)
            return {**result, "cached": False}

    def checkpointed(self) -> None:
        """Record the seconds worked so far: call it right after saving something a resumed run continues
        from (`train.fit(after_checkpoint=...)`), so that a kill loses only the work since."""
        checkpoint.write_json_atomic({"seconds": self._elapsed()}, self.folder / PROGRESS)

    def path(self, product: str) -> Path:
        return self.folder / product

    def save(self, obj: Any, product: str) -> Path:
        """`torch.save` a product of this stage, atomically."""
        return checkpoint.save_atomic(obj, self.folder / product)

    def load(self, product: str) -> Any:
        """A product (or the result) of this stage; an unreadable or missing one names the folder to delete."""
        try:
            return checkpoint.load_checkpoint(self.folder / product)
        except checkpoint.CheckpointError as error:
            raise self.damaged(error) from error

    def damaged(self, error: Exception) -> checkpoint.CheckpointError:
        """The error that says this stage's folder is unusable, naming it: for a caller that read a product."""
        return checkpoint.CheckpointError(
            f"the {self.name} stage in {self.folder} is damaged ({error}). Delete that folder "
            f"(rm -r {self.folder}) and run again: the stage will be recomputed."
        )

    # ---- the parts of `run` -------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        locks = self.cache.root / LOCKS
        locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(locks / f"{self.id}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"waiting for another process computing {self.folder} ...", file=sys.stderr, flush=True)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _elapsed(self) -> float:
        return self._carried + (self._watch.elapsed() if self._watch is not None else 0.0)

    def _progress_seconds(self) -> float:
        progress = self.folder / PROGRESS
        try:
            return float(json.loads(progress.read_text())["seconds"]) if progress.is_file() else 0.0
        except (ValueError, KeyError, TypeError):
            return 0.0  # only the time of an earlier attempt is lost, never a result

    def _remove_if_nothing_saved(self) -> None:
        kept = {path.name for path in self.folder.iterdir()} - {SETTINGS, PROGRESS}
        if not kept:
            shutil.rmtree(self.folder, ignore_errors=True)
