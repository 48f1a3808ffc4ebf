"""Command line: `python -m tgkit run --profile quick --dataset cifar10 --sparsity 0.9 0.98`.

Every field of a run's configuration (`hparams.RunConfig`) can be set from here, as OpenLTH's hparams
are its command line: `--set teacher_training.epochs=3 --set train_subset=none`; `run --help` lists
them with the profile's values. A handled error (bad input, missing data, a damaged cache) prints one
line starting "error:" that names the fix, and exits with status 2.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import errno
import sys
from dataclasses import replace
from pathlib import Path

import torch

from tgkit import checkpoint, data, hparams
from tgkit.device import precision_name
from tgkit.pipeline import Experiment

EXIT_ERROR = 2  # every handled error, as argparse's own usage errors


class CliError(Exception):
    """A problem with the command line's input; its message names the fix."""


# --------------------------------------------------------------------------------------------------
# --set KEY=VALUE


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


def _coerce(name: str, annotation: str, value: object) -> object:
    """`value` made to fit the field's annotation, or a CliError saying what the field takes."""
    takes = f"--set {name}= takes {annotation}"
    if value is None:
        if "None" not in annotation:
            raise CliError(f"{takes}, not none")
        return None
    if annotation.startswith("tuple"):
        items = value if isinstance(value, (list, tuple)) else (value,)
        inner = float if "float" in annotation else int
        if not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
            raise CliError(f"{takes}: numbers, e.g. --set {name}='(0.9, 0.98)'")
        return tuple(inner(item) for item in items)
    for kind, accepted in (("bool", (bool,)), ("int", (int,)), ("float", (int, float)), ("str", (str,))):
        if annotation.split(" | ")[0] == kind:
            if isinstance(value, bool) and kind != "bool" or not isinstance(value, accepted):
                raise CliError(f"{takes}, got {value!r}")
            if kind == "int" and isinstance(value, float):
                raise CliError(f"{takes}, got {value!r}")
            return float(value) if kind == "float" else value
    raise CliError(f"{takes}: set its fields one by one (see --help)")


def apply_settings(config: hparams.RunConfig, assignments: list[str]) -> hparams.RunConfig:
    """`config` with every `KEY=VALUE` of `assignments` applied, KEY a dotted field name (see `--help`)."""
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--set {assignment!r}: write KEY=VALUE, e.g. --set teacher_training.epochs=3")
        config = _set(config, key.strip().split("."), parse_value(text), key.strip())
    return config


def _set(obj: object, path: list[str], value: object, key: str) -> object:
    fields = {field.name: field for field in dataclasses.fields(obj)}
    if path[0] not in fields:
        raise CliError(f"--set {key}: {type(obj).__name__} has no field {path[0]!r}; `run --help` lists them all")
    current = getattr(obj, path[0])
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise CliError(f"--set {key}: {path[0]} has no fields (it is {current!r})")
        return replace(obj, **{path[0]: _set(current, path[1:], value, key)})
    if dataclasses.is_dataclass(current) and value is not None:
        raise CliError(f"--set {key}: set the fields of {path[0]} one by one (see --help)")
    try:
        return replace(obj, **{path[0]: _coerce(key, str(fields[path[0]].type), value)})
    except ValueError as error:  # a dataclass that validates its fields (ColtConfig)
        raise CliError(f"--set {key}: {error}") from error


# --------------------------------------------------------------------------------------------------
# checks before any work


def checked_device(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CliError(f"--device {name}: unknown device; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise CliError(f"--device {name}: the kit runs on cpu or cuda, not {device.type}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CliError(f"--device {name}: no CUDA GPU is visible here; use --device cpu, or leave --device out")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise CliError(f"--device {name}: there are {torch.cuda.device_count()} GPUs (cuda:0 to cuda:N-1)")
    return name


def checked_output(path: str | None) -> str | None:
    if path is not None and Path(path).is_dir():
        raise CliError(f"--output {path} is a folder; give a file name, e.g. --output {Path(path) / 'table.csv'}")
    return path


# --------------------------------------------------------------------------------------------------
# the parser and the command


def _fields_help() -> str:
    rows = settable_fields(hparams.profile("quick"))
    width = max(len(name) for name, _, _ in rows)
    lines = [f"  {name:<{width}}  {annotation}  (quick: {value!r})" for name, annotation, value in rows]
    return "settable with --set KEY=VALUE (the quick profile's values shown):\n" + "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tgkit", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="train or reuse teacher and dense student, score, prune, retrain; print a table",
        description="Runs the whole pipeline once per configuration; every stage is cached in the run "
        "folder, so a second call with the same options only prints the table.",
        epilog=_fields_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--profile",
        choices=list(hparams.PROFILES),
        default="smoke",
        help="smoke: digits on a CPU in a minute (its epochs are sized for digits' 1,438 images: on a larger "
        "dataset use quick, or --set the epochs); quick: CIFAR-10 subset, ~15 min on 2 cores; fast: the paper's "
        "networks in minutes of a GPU; full: paper scale, for a GPU (default: %(default)s)",
    )
    run.add_argument(
        "--dataset", help=f"one of {', '.join(data.DATASETS)} or imagefolder:<path> (default: the profile's)"
    )
    run.add_argument(
        "--sparsity", type=float, nargs="+", help="target sparsities in [0, 1), over all weights unless --over prunable"
    )
    run.add_argument(
        "--over",
        choices=["all", "prunable"],
        default="all",
        help="measure --sparsity over all weights (the paper's tables) or over the pruned convs",
    )
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set any field of the configuration, e.g. teacher_training.epochs=3 or train_subset=none "
        "(repeatable; the list is below)",
    )
    run.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    run.add_argument("--runs-dir", help="the run cache (default: $TGKIT_RUNS, else <data dir>/runs)")
    run.add_argument("--output", help="also write the table to this CSV file")
    return parser


def configure(args: argparse.Namespace) -> tuple[hparams.RunConfig, Experiment]:
    """The configuration and experiment the arguments ask for, every argument checked first."""
    for sparsity in args.sparsity or ():
        if not 0 <= sparsity < 1:
            raise CliError(f"--sparsity {sparsity} is outside [0, 1); e.g. 0.9 prunes 90% of the weights")
    config = apply_settings(hparams.profile(args.profile, args.dataset, seed=args.seed), args.settings)
    if args.sparsity:
        config = replace(config, sparsities=tuple(args.sparsity))
    checked_output(args.output)
    experiment = Experiment(config, runs_dir=args.runs_dir, device=checked_device(args.device))
    return config, experiment


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handled = (CliError, data.DatasetNotFound, checkpoint.CheckpointError, FloatingPointError, NotADirectoryError)
    try:
        config, experiment = configure(args)
        experiment.check_requests(config.sparsities, over=args.over)
        table = experiment.summary_table(over=args.over)
        autocast = precision_name(experiment.device, config.student_training.precision)
        print(
            f"\nprofile {config.profile}, dataset {config.dataset}, device {experiment.device_name}, training {autocast}"
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if args.output:
            checkpoint.write_text_atomic(table.to_csv(index=False), args.output)
    except (*handled, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        print(
            f"error: cannot write {error.filename or 'the run cache'} ({error.strerror}); point --runs-dir or "
            f"TGKIT_RUNS to a writable folder (and TGKIT_DATA, for the decoded-data cache)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0
