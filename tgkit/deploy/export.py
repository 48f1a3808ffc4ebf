"""Export a pruned network as its non-zero weights: the file a deployment of it would ship.

Zeros in a dense tensor cost as much as any other value: `torch.save` of a network pruned to 98% is as
large as the dense one. This module writes every tensor in whichever of three encodings is smallest:

    dense     all numel values                                    numel * v bytes
    csr       the tensor as a matrix (dim 0 x the rest): the      nnz * v + nnz * c + (rows + 1) * r bytes
              non-zero values row by row, the column of each,
              and where each row starts (torch's CSR layout)
    bitmask   one bit per weight (1: non-zero), then the          nnz * v + ceil(numel / 8) bytes
              non-zero values in order

where v is the value size (4 for float32, 2 for float16 or bfloat16), and the index types are the
narrowest unsigned integers that hold them: c bytes for a column (< columns), r for a row start
(<= nnz). A 3x3 conv kernel of 64 input channels has 576 columns, so a column fits in 2 bytes: CSR
wins over the bitmask once fewer than 1 weight in 16 survives (2 bytes per survivor against 1 bit per
weight), the bitmask from there up to a density of 1 - 1/(8v) (96.9% for float32, 93.75% for 16-bit
values), and dense above it: only when nearly every weight survives.

The container is safetensors, not `torch.save`: a safetensors file holds only named tensors and a
string header, so loading one runs no code (a pickle can run any), it is read lazily and by tools in
other languages, and it stores uint8/16/32 indices as they are. torch's own sparse tensors would need
the pickle, and store int64 indices: 8 bytes per surviving weight, twice its float32 value.

Format `tgkit.sparse/1`: tensors named `<parameter>` (dense) or `<parameter>::values`, `::crow`, `::col`
(csr) or `::values`, `::bitmask` (bitmask); the header's metadata holds `format`, `model` (JSON: what
`models.build_model` takes, or for a network of your own only its class: `network_spec`), `tensors`
(JSON: per state-dict entry its encoding, shape and dtype) and `values` (the stored value type).

Any network exports: `export_sparse(network, path)`. The kit's architectures load back by themselves
(`load_sparse(path)`); a network of your own loads into a fresh instance you build:
`load_sparse(path, into=MyNetwork())`.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

from tgkit import models
from tgkit.util.checkpoint import CheckpointError, write_bytes_atomic
from tgkit.util.errors import InputError

EXPORT_FORMAT = "tgkit.sparse/1"
VALUE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
INDEX_DTYPES = ((torch.uint8, 2**8), (torch.uint16, 2**16), (torch.uint32, 2**32), (torch.int64, 2**63))
ENCODINGS = ("dense", "csr", "bitmask")


class ExportFormatError(CheckpointError):
    """A file that is not a readable tgkit sparse export: truncated, foreign, or of another version."""


# --------------------------------------------------------------------------------------------------
# one tensor


def index_dtype(largest: int) -> torch.dtype:
    """The narrowest unsigned integer type (then int64) that holds every value in 0..largest."""
    return next(dtype for dtype, bound in INDEX_DTYPES if largest < bound)


def encoded_bytes(tensor: Tensor, value_bytes: int) -> dict[str, int]:
    """The size of `tensor` in each encoding (the formulas of the module docstring)."""
    numel, nnz = tensor.numel(), int(torch.count_nonzero(tensor))
    rows = tensor.shape[0] if tensor.dim() > 0 else 1
    columns = numel // max(rows, 1)
    col_bytes = index_dtype(max(columns - 1, 0)).itemsize
    crow_bytes = index_dtype(nnz).itemsize
    return {
        "dense": numel * value_bytes,
        "csr": nnz * (value_bytes + col_bytes) + (rows + 1) * crow_bytes,
        "bitmask": nnz * value_bytes + math.ceil(numel / 8),
    }


def encode(name: str, tensor: Tensor, value_dtype: torch.dtype) -> tuple[str, dict[str, Tensor]]:
    """The smallest encoding of one state-dict entry, as (encoding, the tensors to store).

    Integer tensors (BatchNorm's batch counter) are stored dense as they are; floating ones as
    `value_dtype`. A float16/bfloat16 value that rounds to zero is dropped like a pruned weight."""
    tensor = tensor.detach().cpu()
    if not tensor.is_floating_point():
        return "dense", {name: tensor.contiguous()}
    tensor = tensor.to(value_dtype)
    sizes = encoded_bytes(tensor, tensor.element_size()) if tensor.dim() > 0 else {"dense": 0}
    encoding = min(sizes, key=sizes.get)
    if encoding == "dense":
        return "dense", {name: tensor.contiguous()}
    flat = tensor.reshape(-1)
    keep = flat != 0
    parts = {f"{name}::values": flat[keep].contiguous()}
    if encoding == "bitmask":
        parts[f"{name}::bitmask"] = torch.from_numpy(np.packbits(keep.numpy()))
    else:
        matrix = keep.reshape(tensor.shape[0], -1)
        row_starts = torch.cat([torch.zeros(1, dtype=torch.int64), matrix.sum(dim=1).cumsum(dim=0)])
        parts[f"{name}::crow"] = row_starts.to(index_dtype(int(row_starts[-1])))
        parts[f"{name}::col"] = matrix.nonzero()[:, 1].to(index_dtype(max(matrix.shape[1] - 1, 0)))
    return encoding, parts


def decode(name: str, encoding: str, shape: list[int], dtype: torch.dtype, parts: dict[str, Tensor]) -> Tensor:
    """The dense tensor of one state-dict entry, in its original `dtype`."""
    if encoding == "dense":
        return parts[name].to(dtype).reshape(shape)
    values = parts[f"{name}::values"].to(dtype)
    numel = math.prod(shape)
    if encoding == "bitmask":
        keep = np.unpackbits(parts[f"{name}::bitmask"].numpy(), count=numel).astype(bool)
        flat = torch.zeros(numel, dtype=dtype)
        flat[torch.from_numpy(keep)] = values
        return flat.reshape(shape)
    crow, col = parts[f"{name}::crow"].to(torch.int64), parts[f"{name}::col"].to(torch.int64)
    rows = shape[0]
    columns = numel // rows
    per_row = crow.diff()
    if len(crow) != rows + 1 or crow[0] != 0 or (per_row < 0).any() or crow[-1] != len(values) != len(col):
        raise InputError(f"{name}: row starts that do not fit {len(values)} values in {rows} rows")
    if len(col) and col.max() >= columns:
        raise InputError(f"{name}: a column index past its {columns} columns")
    matrix = torch.zeros(rows, columns, dtype=dtype)
    matrix[torch.repeat_interleave(torch.arange(rows), per_row), col] = values
    return matrix.reshape(shape)


# --------------------------------------------------------------------------------------------------
# a whole network


def model_spec(model: nn.Module, arch: str, width: int) -> dict:
    """What `models.build_model` needs to rebuild `model`: its architecture, width, classes, input channels."""
    return {
        "arch": arch,
        "width": width,
        "num_classes": models.num_classes_of(model),
        "in_channels": models.in_channels_of(model),
    }


def network_spec(model: nn.Module) -> dict:
    """The header of a network the kit cannot rebuild by name: its class, so that a reader knows what
    to build before `load_sparse(path, into=...)`."""
    return {"arch": None, "network": f"{type(model).__module__}.{type(model).__qualname__}"}


def export_bytes(model: nn.Module, spec: dict | None = None, *, values: str = "float32") -> bytes:
    """The `tgkit.sparse/1` file of `model` (see the module docstring), as bytes; `spec` from
    `model_spec` for the kit's architectures, else (None) `network_spec(model)`."""
    spec = network_spec(model) if spec is None else spec
    if values not in VALUE_DTYPES:
        raise InputError(f"unknown value type {values!r}; choose one of {', '.join(VALUE_DTYPES)}")
    stored, entries = {}, {}
    for name, tensor in model.state_dict().items():
        if "::" in name:
            raise InputError(f"state-dict entry {name!r} contains '::', which the export format reserves")
        encoding, parts = encode(name, tensor, VALUE_DTYPES[values])
        stored.update(parts)
        entries[name] = {"encoding": encoding, "shape": list(tensor.shape), "dtype": str(tensor.dtype)[6:]}
    metadata = {"format": EXPORT_FORMAT, "model": json.dumps(spec), "tensors": json.dumps(entries), "values": values}
    return _canonical(safetensors_bytes(stored, metadata=metadata))


def export_sparse(
    model: nn.Module, path: str | os.PathLike, spec: dict | None = None, *, values: str = "float32"
) -> Path:
    """Write `model` to `path` (atomically) in the `tgkit.sparse/1` format; `spec` as `export_bytes`."""
    return write_bytes_atomic(export_bytes(model, spec, values=values), path)


def _canonical(file: bytes) -> bytes:
    """The safetensors `file` with its header's entries in sorted order, so that one network's export is
    the same bytes in every process: safetensors writes the metadata map in a hash order that changes
    from one process to the next (and with it, by a few bytes, the file's gzipped size). The entries
    are the same, written as compactly, so the header keeps its length; readers look entries up by name.
    """
    length = int.from_bytes(file[:8], "little")
    header = json.loads(file[8 : 8 + length])
    ordered = {"__metadata__": dict(sorted(header.pop("__metadata__").items()))} | dict(sorted(header.items()))
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > length:  # cannot happen for one header written compactly twice; never truncate one
        raise AssertionError(f"the sorted safetensors header is {len(text)} bytes, the original {length}")
    return file[:8] + text.ljust(length) + file[8 + length :]


def read_export(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict]:
    """The dense state dict (original dtypes) and the model spec of an export file."""
    path = Path(path)
    if not path.is_file():
        raise ExportFormatError(f"no export file {path}; write one with tgkit.deploy.export.export_sparse first.")
    again = "export the model again with tgkit.deploy.export.export_sparse"
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            parts = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open is no dict)
    except (SafetensorError, OSError) as error:
        raise ExportFormatError(f"{path} is not a readable safetensors file ({error}); {again}.") from error
    found = metadata.get("format")
    if found != EXPORT_FORMAT:
        which = f"format {found!r}" if found else "a safetensors file without tgkit's header"
        raise ExportFormatError(
            f"{path} is {which}, not {EXPORT_FORMAT}: a file of another tool or another tgkit version; {again}."
        )
    try:
        spec, entries = json.loads(metadata["model"]), json.loads(metadata["tensors"])
        state = {
            name: decode(name, entry["encoding"], entry["shape"], getattr(torch, entry["dtype"]), parts)
            for name, entry in entries.items()
        }
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as error:
        raise ExportFormatError(
            f"{path} has a damaged {EXPORT_FORMAT} header or tensors ({error}); {again}."
        ) from error
    return state, spec


def load_sparse(
    path: str | os.PathLike, device: str | torch.device = "cpu", *, into: nn.Module | None = None
) -> nn.Module:
    """The network of an export file with its weights, in eval mode: rebuilt from the header
    (`models.build_model`) for the kit's architectures, or loaded `into` a network you built."""
    state, spec = read_export(path)
    if into is None and spec.get("arch") is None:
        raise InputError(
            f"{path} holds a network of your own ({spec.get('network', 'no architecture named')}), which the "
            "kit cannot build by name: build one and pass it, load_sparse(path, into=network)"
        )
    if into is None:
        into = models.build_model(
            spec["arch"], spec["num_classes"], in_channels=spec["in_channels"], width=spec["width"]
        )
    expected = into.state_dict()
    unlike = sorted(set(expected) ^ set(state)) + [
        name for name in expected if name in state and expected[name].shape != state[name].shape
    ]
    if unlike:
        raise ExportFormatError(
            f"{path} does not fit the network {type(into).__name__}: {len(unlike)} entries differ in name or shape, e.g. "
            f"{unlike[:3]}; build the network exactly as the exported one (header: {spec})."
        )
    into.load_state_dict(state)
    return into.to(device).eval()


def encodings(path: str | os.PathLike) -> pd.DataFrame:
    """One row per state-dict entry of an export file: its encoding and shape."""
    with safe_open(path, framework="pt") as handle:
        entries = json.loads((handle.metadata() or {}).get("tensors", "{}"))
    return pd.DataFrame([{"tensor": name, **entry} for name, entry in entries.items()])


# --------------------------------------------------------------------------------------------------
# how large


def size_row(model: nn.Module, spec: dict, *, values: str = "float32") -> dict[str, int]:
    """The bytes of `model` four ways: torch.save's dense state dict, that gzipped, the sparse export,
    and that gzipped (both at zlib's default level 6: gzip's own 9 takes ~8x as long for ~1% less)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    dense = buffer.getvalue()
    sparse = export_bytes(model, spec, values=values)
    return {
        "dense_state_dict": len(dense),
        "dense_gzip": len(gzip.compress(dense, compresslevel=6)),
        "sparse_export": len(sparse),
        "sparse_export_gzip": len(gzip.compress(sparse, compresslevel=6)),
    }
