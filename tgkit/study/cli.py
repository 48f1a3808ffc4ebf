"""The command line, `python -m tgkit run|sweep|batch`, and its run command:
`python -m tgkit run --profile quick --dataset cifar10 --sparsity 0.9 0.98`.

Every field of a run's configuration (`hparams.RunConfig`) can be set from here, as OpenLTH's hparams
are its command line: `--set teacher_training.epochs=3 --set train_subset=none` (`util.flags`);
`run --help` lists them with the quick profile's values. A kit error (bad input, missing data, a
damaged cache: `util.errors.TgkitError`) prints one line starting "error:" that names the fix and
exits with status 2; anything else is a bug and shows its traceback (`--debug`: a kit error's too).
"""

from __future__ import annotations

import argparse
import errno
import sys
from dataclasses import replace
from pathlib import Path

from tgkit import data, hparams
from tgkit.study.pipeline import Experiment
from tgkit.util import checkpoint, flags
from tgkit.util.device import checked_device, precision_name
from tgkit.util.errors import EXIT_ERROR, InputError, run_command

# --------------------------------------------------------------------------------------------------
# checks before any work


def checked_output(path: str | None) -> str | None:
    if path is not None and Path(path).is_dir():
        raise InputError(f"--output {path} is a folder; give a file name, e.g. --output {Path(path) / 'table.csv'}")
    return path


# --------------------------------------------------------------------------------------------------
# the parser and the command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tgkit", description="tgkit: teacher-guided one-shot pruning, as a study kit."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="train or reuse teacher and dense student, score, prune, retrain; print a table",
        description="Runs the whole pipeline once per configuration; every stage is cached in the run "
        "folder, so a second call with the same options only prints the table.",
        epilog=flags.fields_help(hparams.profile("quick"), "quick"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--profile",
        choices=list(hparams.PROFILES),
        default="smoke",
        help="smoke: digits on a CPU in a minute (its epochs are sized for digits' 1,438 images: on a larger "
        "dataset use quick, or --set the epochs); quick: CIFAR-10 on a laptop's CPU, the airbench recipe (the README gives its minutes); fast: the paper's "
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
    run.add_argument("--debug", action="store_true", help="show the traceback of a handled error too")
    # `sweep` and `batch` are their modules' own command lines (`main` hands them over before parsing)
    commands.add_parser("sweep", add_help=False, help="the sparsity sweep as jobs: local processes or SLURM arrays")
    commands.add_parser("batch", add_help=False, help="every notebook, headless: figures, tables, manifests")
    return parser


def configure(args: argparse.Namespace) -> tuple[hparams.RunConfig, Experiment]:
    """The configuration and experiment the arguments ask for, every argument checked first."""
    for sparsity in args.sparsity or ():
        if not 0 <= sparsity < 1:
            raise InputError(f"--sparsity {sparsity} is outside [0, 1); e.g. 0.9 prunes 90% of the weights")
    config = flags.apply_settings(hparams.profile(args.profile, args.dataset, seed=args.seed), args.settings)
    if args.sparsity:
        config = replace(config, sparsities=tuple(args.sparsity))
    checked_output(args.output)
    experiment = Experiment(config, runs_dir=args.runs_dir, device=checked_device(args.device))
    return config, experiment


def main(argv: list[str] | None = None) -> int:
    """`python -m tgkit run|sweep|batch ...`: `run` is this module's; the others load only when asked for."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:
        from tgkit.study import jobs

        return jobs.main(argv[1:])
    if argv[:1] == ["batch"]:
        from tgkit.study import batch

        return batch.main(argv[1:])
    args = _parser().parse_args(argv)

    def command() -> None:
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

    try:
        return run_command(command, debug=args.debug)
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        print(
            f"error: cannot write {error.filename or 'the run cache'} ({error.strerror}); point --runs-dir or "
            f"TGKIT_RUNS to a writable folder (and TGKIT_DATA, for the decoded-data cache)",
            file=sys.stderr,
        )
        return EXIT_ERROR
