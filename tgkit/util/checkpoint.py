"""Atomic, verifiable files for everything a run writes (checkpoints, scores, masks, tables).

A file is written to a temporary name in the same folder and moved into place with `os.replace`,
which is atomic on POSIX: a run killed half-way leaves either the old file or the new one, never a
truncated one. Loading wraps every failure in a `CheckpointError` that names the file and the fix. A
write that runs out of space (an OSError ENOSPC or EDQUOT, or torch.save's own short-write RuntimeError)
raises `DiskFull` naming the folder; the temporary file is removed and the previous file stays as it was.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from tgkit.util.errors import TgkitError

_UMASK = os.umask(0)
os.umask(_UMASK)


class CheckpointError(TgkitError, RuntimeError):
    """A checkpoint or cached result could not be read."""


class DiskFull(TgkitError, OSError):
    """A write ran out of space on its disk; the message names the folder. Also an OSError, so that a
    caller for whom the write is optional (the decoded-data cache) can go on without it."""


# torch.save reports a short write of its zip writer as a RuntimeError of its own ("[enforce fail at
# inline_container.cc:...] . unexpected pos ..."; "... file write failed"), not as the OSError beneath it
_TORCH_SHORT_WRITE = ("unexpected pos", "file write failed")


def _out_of_space(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(error, RuntimeError) and any(text in str(error) for text in _TORCH_SHORT_WRITE)


def _disk_full(path: Path, existed: bool, error: BaseException) -> DiskFull:
    why = error.strerror if isinstance(error, OSError) and error.strerror else "torch.save could not write it all"
    kept = f"the previous {path.name} is unchanged" if existed else f"no {path.name} was written"
    full = DiskFull(
        f"the disk holding {path.parent} is full ({why}) while writing {path.name}; {kept}. Free space there, "
        f"or point the folder to another disk (the run cache: --runs-dir or TGKIT_RUNS; the data cache: "
        f"TGKIT_DATA), and run again"
    )
    full.errno = errno.ENOSPC
    return full


def _write_atomically(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        if _out_of_space(error):
            raise _disk_full(path, existed, error) from error
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if _out_of_space(error):
            raise _disk_full(path, existed, error) from error
        raise
    return path


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save` `obj` to `path` atomically."""
    return _write_atomically(Path(path), lambda handle: torch.save(obj, handle))


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> Path:
    """Write `data` to `path` atomically."""
    return _write_atomically(Path(path), lambda handle: handle.write(data))


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes_atomic(text.encode("utf-8"), path)


def write_json_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Write `obj` as indented JSON to `path` atomically."""
    return write_text_atomic(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a file written by `save_atomic`; a missing or unreadable file raises `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; run the stage that writes it first.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"checkpoint {path} is corrupt or was not written by tgkit ({type(error).__name__}: {error}). "
            f"Move it away or delete it and run again: the stage that wrote it will be recomputed."
        ) from error
