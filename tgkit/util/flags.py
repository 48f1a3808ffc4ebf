"""Configuration dataclasses as command-line flags, the one way settings enter from outside.

Two forms, as OpenLTH's hparams are its command line:

    apply_settings(config, ["teacher_training.epochs=3", "kd.beta=confidence"])
        `--set KEY=VALUE` on a nested dataclass (a `RunConfig`): KEY a dotted field name, VALUE a
        Python literal, none/true/false, or a bare word; checked against the field's annotation.
        The command lines and the notebooks' `settings` parameter take it.
    add_flags(parser, ClusterConfig); config = from_flags(ClusterConfig(), args)
        one `--field-name` flag per field of a flat dataclass (`ClusterConfig`, `BenchConfig`), its
        type, choices and help read from the field (`hparams.setting`), its default the dataclass's:
        defaults are written once, in `hparams`.

A value the field cannot take raises `InputError` naming what it takes.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
from dataclasses import replace
from typing import Any

from tgkit.util.errors import InputError

# the annotation's word -> the Python types a --set value of that kind may have
KINDS = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}


# --------------------------------------------------------------------------------------------------
# --set KEY=VALUE on a nested dataclass


def settable_fields(config: object, prefix: str = "") -> list[tuple[str, str, object]]:
    """(dotted name, annotated type, current value) of every field of `config`, nested dataclasses
    flattened: what `--set` accepts."""
    rows = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        name = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            rows += settable_fields(value, f"{name}.")
        else:
            rows.append((name, str(field.type), value))
    return rows


def parse_value(text: str) -> object:
    """A --set value: a Python literal (3, 0.1, (0.9, 0.98), "x"), none/null for None, true/false, or a word."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()  # a bare word: a string setting such as an architecture or a schedule


def coerce(name: str, annotation: str, value: object) -> object:
    """`value` made to fit the field's annotation ("int", "float | str", "tuple[float, ...] | None", ...),
    or an InputError saying what the field takes. The alternatives of a union are tried in order."""
    takes = f"--set {name}= takes {annotation}"
    kinds = [kind for kind in annotation.split(" | ") if kind != "None"]
    if value is None:
        if "None" not in annotation.split(" | "):
            raise InputError(f"{takes}, not none")
        return None
    if kinds[0].startswith("tuple"):
        items = value if isinstance(value, (list, tuple)) else (value,)
        inner = float if "float" in kinds[0] else int
        if not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
            raise InputError(f"{takes}: numbers, e.g. --set {name}='(0.9, 0.98)'")
        return tuple(inner(item) for item in items)
    if not all(kind in KINDS for kind in kinds):
        raise InputError(f"{takes}: set its fields one by one (see --help)")
    for kind in kinds:
        if isinstance(value, bool) and kind != "bool" or not isinstance(value, KINDS[kind]):
            continue
        if kind == "int" and isinstance(value, float):
            continue
        return float(value) if kind == "float" else value
    raise InputError(f"{takes}, got {value!r}")


def apply_settings(config: Any, assignments: list[str] | tuple[str, ...]) -> Any:
    """`config` with every `KEY=VALUE` of `assignments` applied, KEY a dotted field name (see `--help`)."""
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {assignment!r}: write KEY=VALUE, e.g. --set teacher_training.epochs=3")
        config = _set(config, key.strip().split("."), parse_value(text), key.strip())
    return config


def _set(obj: object, path: list[str], value: object, key: str) -> object:
    fields = {field.name: field for field in dataclasses.fields(obj)}
    if path[0] not in fields:
        raise InputError(f"--set {key}: {type(obj).__name__} has no field {path[0]!r}; `--help` lists them all")
    current = getattr(obj, path[0])
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise InputError(f"--set {key}: {path[0]} has no fields (it is {current!r})")
        changed = _set(current, path[1:], value, key)
    elif dataclasses.is_dataclass(current) and value is not None:
        raise InputError(f"--set {key}: set the fields of {path[0]} one by one (see --help)")
    else:
        changed = coerce(key, str(fields[path[0]].type), value)
    try:
        return replace(obj, **{path[0]: changed})
    except ValueError as error:  # a dataclass that validates its fields in __post_init__ (InputError too)
        was = f" (it was {current!r})" if len(path) == 1 else ""
        raise InputError(f"--set {key}: {error}{was}") from error


def fields_help(config: object, label: str) -> str:
    """Every settable field of `config` with its type and value: the epilog of a command's --help."""
    rows = settable_fields(config)
    width = max(len(name) for name, _, _ in rows)
    lines = [f"  {name:<{width}}  {annotation}  ({label}: {value!r})" for name, annotation, value in rows]
    return f"settable with --set KEY=VALUE ({label} values shown):\n" + "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# one --flag per field of a flat dataclass


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, cls: type, *, exclude: tuple[str, ...] = ()) -> None:
    """Add a `--field-name` flag for each field of the dataclass `cls` (but `exclude`): bool fields as
    `--name` / `--no-name`, others parsed by their annotation's first type, `choices` and `help` from
    the field's metadata. A flag not given stays out of the namespace, so `from_flags` keeps the
    dataclass's default (or whatever the base it is given holds)."""
    defaults = cls()
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        annotation = str(field.type)
        default = getattr(defaults, field.name)
        shown = field.metadata.get("default_help") or (f"default {default}" if default is not None else "")
        text = field.metadata.get("help", "") + (f" ({shown})" if shown else "")
        options: dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS, "help": text}
        if annotation.split(" | ")[0] == "bool":
            parser.add_argument(flag_name(field.name), action=argparse.BooleanOptionalAction, **options)
            continue
        kind = annotation.split(" | ")[0]
        if kind.startswith("tuple"):
            options |= {"nargs": "+", "type": float if "float" in kind else int}
        else:
            options["type"] = {"int": int, "float": float, "str": str}[kind]
        if "choices" in field.metadata:
            options["choices"] = field.metadata["choices"]
        parser.add_argument(flag_name(field.name), metavar=field.metadata.get("metavar"), **options)


def from_flags(base: Any, args: argparse.Namespace) -> Any:
    """`base` (a dataclass) with every field whose flag `args` holds replaced by the flag's value."""
    given = {field.name: getattr(args, field.name) for field in dataclasses.fields(base) if hasattr(args, field.name)}
    given = {name: tuple(value) if isinstance(value, list) else value for name, value in given.items()}
    try:
        return replace(base, **given)
    except InputError:
        raise
    except ValueError as error:
        raise InputError(str(error)) from error
