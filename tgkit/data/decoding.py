"""Decoding image files to uint8 tensors, spread over the CPU cores, and the cache that makes it happen once.

A dataset found on disk (`Source`, made by `data.sources`) is decoded by `cached_decode` into a dict
of its classes and official splits, and written to `<data_dir>/cache/<label>-<hash>.pt`, the hash
taken over what the tensors depend on (`fingerprint`: every file's path under the dataset's folder, size
and modification time), so that a changed dataset (an image added, or moved to another class folder) is
decoded again instead of read stale. A cache file that cannot be read is only a
cache: it is decoded again, with a warning.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tgkit.util.checkpoint import CheckpointError, load_checkpoint, save_atomic
from tgkit.util.errors import InputError
from tgkit.util.progress import progress_bar

# Bump when the layout of the cache files changes, so that old caches are ignored, not misread.
# (2: grayscale datasets decode to one channel; 3: 16-bit images scaled to 8 bits, the key a content fingerprint)
CACHE_VERSION = 3
# PIL modes of single-channel images: a dataset of only these keeps one channel (a third of the memory,
# a first convolution a third as wide); the digits smoke data has one channel too.
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")
# Images per decoding task: large enough that handing work to another process is cheap next to it.
DECODE_CHUNK = 1000


@dataclass
class Source:
    """A dataset found on disk: `decode(progress)` returns its classes and official splits as a dict
    with keys classes, train_x, train_y, test_x, test_y; `files` are all the files it reads."""

    label: str
    root: Path
    files: list[str]
    decode: Callable[[bool], dict]


def decode_chunk(paths: list[str]) -> np.ndarray:
    """Decode images to one uint8 array (N, H, W, C); all must have the size of the first.

    C is 1 when every image of the chunk is grayscale, else 3 (a grayscale image among colour ones is
    repeated over the three channels, as PIL's RGB conversion does: TinyImageNet mixes some in).
    """
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                if image.mode.startswith("I"):
                    images.append(_eight_bits(image)[..., None])
                elif image.mode in GRAYSCALE_MODES:
                    images.append(np.asarray(image.convert("L"))[..., None])
                else:
                    images.append(np.asarray(image.convert("RGB")))
        except OSError as error:  # PIL's UnidentifiedImageError is an OSError too
            raise InputError(f"cannot decode image {path}: {error}") from None
        if images[-1].shape[:2] != images[0].shape[:2]:
            raise InputError(_size_mismatch(paths[0], images[0].shape, path, images[-1].shape))
    if any(image.shape[2] == 3 for image in images):
        images = [np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image for image in images]
    return np.stack(images)


def _eight_bits(image: Image.Image) -> np.ndarray:
    """A 16-bit grayscale image (PIL mode "I;16..."; "I" with a value above 255) scaled to 8 bits, value / 257
    rounded: PIL's conversion to "L" clips at 255, and a 12-bit sensor image would decode to blank white."""
    values = np.asarray(image).astype(np.int64)
    if image.mode.startswith("I;16") or values.max(initial=0) > 255:
        values = (values.clip(0, 65535) + 128) // 257
    return values.clip(0, 255).astype(np.uint8)


def _size_mismatch(first: str, first_shape: tuple, other: str, other_shape: tuple) -> str:
    return (
        f"images differ in size: {first} is {first_shape[1]}x{first_shape[0]} but {other} is "
        f"{other_shape[1]}x{other_shape[0]}; resize them all to one size first, e.g. with PIL's "
        f"Image.resize or ImageMagick's `mogrify -resize 32x32! '*.png'`"
    )


def decode_images(paths: list[str], *, desc: str, progress: bool) -> torch.Tensor:
    """Decode image files to one uint8 tensor (N, C, H, W), in chunks spread over the CPU cores; C is 1
    for a set of grayscale images, else 3 (see `decode_chunk`).

    Processes rather than threads: per small image, most of the time goes to Python code that holds
    the interpreter lock, and threads measured slower than a plain loop.
    """
    chunks = [paths[i : i + DECODE_CHUNK] for i in range(0, len(paths), DECODE_CHUNK)]
    workers = min(
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, len(chunks)
    )
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    bar = progress_bar(total=len(paths), desc=desc, unit="img", disable=not progress)
    out = None
    try:
        arrays = pool.map(decode_chunk, chunks) if pool else map(decode_chunk, chunks)
        start = 0
        for chunk, array in zip(chunks, arrays):
            if out is None:
                out = np.empty((len(paths), array.shape[3], array.shape[1], array.shape[2]), dtype=np.uint8)
            elif array.shape[1:3] != out.shape[2:]:
                raise InputError(_size_mismatch(paths[0], (out.shape[2], out.shape[3]), chunk[0], array.shape[1:]))
            out, array = as_many_channels(out, array.transpose(0, 3, 1, 2))
            out[start : start + len(chunk)] = array
            start += len(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return torch.from_numpy(out)


def as_many_channels(*images: np.ndarray | torch.Tensor) -> tuple:
    """The uint8 image batches (N, C, H, W) with one channel count: all grayscale (C = 1) stay so, and
    if any is colour, the grayscale ones are repeated over three channels."""
    channels = max(batch.shape[1] for batch in images)
    repeat = (lambda b: b.repeat(1, 3, 1, 1)) if isinstance(images[0], torch.Tensor) else (lambda b: np.repeat(b, 3, 1))
    return tuple(repeat(batch) if batch.shape[1] < channels else batch for batch in images)


def fingerprint(source: Source) -> str:
    """A hash of the source's content without reading a pixel: the sorted paths of its files relative to its
    folder (the class folder gives the label), with each file's size and modification time."""
    root = str(source.root)
    entries = []
    for path in source.files:
        status = os.stat(path)
        entries.append(f"{os.path.relpath(path, root)}\0{status.st_size}\0{status.st_mtime_ns}")
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:24]


def _cache_path(source: Source, data_dir: Path) -> Path:
    """The cache file of a source: its name hashes what the decoded tensors depend on (`fingerprint`), so
    that new, removed, moved or modified files lead to a new decode, not to stale data."""
    key = f"{CACHE_VERSION}|{source.label}|{source.root.resolve()}|{fingerprint(source)}"
    return data_dir / "cache" / f"{source.label}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def cached_decode(source: Source, data_dir: Path, progress: bool) -> dict:
    path = _cache_path(source, data_dir)
    if path.is_file():
        try:
            return _check_decoded(load_checkpoint(path), path)
        except (CheckpointError, ValueError) as error:
            # Only a cache: decoding again loses nothing but time.
            warnings.warn(f"ignoring the unreadable cache file {path} and decoding again: {error}", stacklevel=3)
    decoded = _check_decoded(source.decode(progress), source.root)
    try:
        save_atomic(decoded, path)
    except OSError as error:  # e.g. a read-only data folder: the data is still good, only slower next time
        warnings.warn(f"could not write the cache file {path} ({error}); the next load will decode again", stacklevel=3)
    return decoded


def _check_decoded(decoded: object, origin: Path) -> dict:
    """Check the structure of decoded data (fresh or from a cache) before anything relies on it."""
    keys = ("classes", "train_x", "train_y", "test_x", "test_y")
    if not isinstance(decoded, dict) or any(k not in decoded for k in keys):
        raise InputError(f"{origin}: expected a dict with keys {', '.join(keys)}")
    num_classes = len(decoded["classes"])
    for split in ("train", "test"):
        x, y = decoded[f"{split}_x"], decoded[f"{split}_y"]
        if x.dtype != torch.uint8 or x.ndim != 4 or len(x) != len(y) or len(y) == 0:
            raise InputError(f"{origin}: {split} images must be a non-empty uint8 (N, C, H, W) with one label each")
        if int(y.min()) < 0 or int(y.max()) >= num_classes:
            raise InputError(f"{origin}: {split} labels must lie in 0..{num_classes - 1}")
    return decoded
