"""Command line: `python -m tgkit run --profile quick --dataset cifar10 --sparsity 0.9 0.98`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from tgkit import checkpoint, data, hparams
from tgkit.pipeline import Experiment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tgkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="train or reuse teacher and dense student, score, prune, retrain; print a table",
        description="Runs the whole pipeline once per configuration; every stage is cached in the run "
        "folder, so a second call with the same options only prints the table.",
    )
    run.add_argument(
        "--profile",
        choices=list(hparams.PROFILES),
        default="smoke",
        help="smoke: digits on a CPU in a minute; quick: CIFAR-10 subset, ~15 min on 2 cores; "
        "full: paper scale, for a GPU (default: %(default)s)",
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
    run.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    run.add_argument("--runs-dir", help="the run cache (default: <data dir>/runs)")
    run.add_argument("--output", help="also write the table to this CSV file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = hparams.profile(args.profile, args.dataset, seed=args.seed)
    if args.sparsity:
        for sparsity in args.sparsity:
            if not 0 <= sparsity < 1:
                raise SystemExit(f"error: --sparsity {sparsity} is outside [0, 1); e.g. 0.9 prunes 90% of the weights")
        config = replace(config, sparsities=tuple(args.sparsity))
    experiment = Experiment(config, runs_dir=args.runs_dir, device=args.device)
    try:
        table = experiment.summary_table(over=args.over)
    except (data.DatasetNotFound, checkpoint.CheckpointError, FloatingPointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nprofile {config.profile}, dataset {config.dataset}, device {experiment.device_name}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.output:
        checkpoint.write_text_atomic(table.to_csv(index=False), args.output)
    return 0
