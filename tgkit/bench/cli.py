"""The benchmark's command line, `python -m tgkit.bench`: one mode per call, each a function below.

    python -m tgkit.bench                        throughput (`bench.throughput`), defaults for the device found
    python -m tgkit.bench --plan fast            the same, measured on the fast profile's networks, then what
                                                 its notebook batch costs at those rates (`bench.budget`): a plan
    python -m tgkit.bench --inference            the throughput table, then CPU inference per backend
                                                 (`deploy.inference`); --only-inference: that table alone
    python -m tgkit.bench --compare authors      the authors' style of loop beside the kit's (`bench.comparator`)

Every field of `hparams.BenchConfig` is a flag (`--arch`, `--batch-size`, `--precision`, ...), its help
and default written once, in the dataclass; the flags of this module pick the mode and the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import pandas as pd
import torch

from tgkit import hparams, models
from tgkit.bench import budget, comparator, throughput
from tgkit.data import load_dataset
from tgkit.deploy import inference
from tgkit.hparams import BenchConfig, RunConfig
from tgkit.util import flags
from tgkit.util.device import checked_device, default_device
from tgkit.util.errors import InputError, run_command


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tgkit.bench", description=__doc__.split("\n\n")[0])
    flags.add_flags(parser.add_argument_group("what is measured"), BenchConfig, exclude=("image_shape",))
    modes = parser.add_argument_group("mode and output")
    modes.add_argument("--csv", metavar="PATH", help="also write the table's row to this CSV file")
    modes.add_argument(
        "--plan",
        metavar="PROFILE",
        choices=list(hparams.PROFILES),
        help="measure this profile's networks and print what its notebook batch costs at those rates",
    )
    modes.add_argument("--plan-dataset", metavar="DATASET", help="the dataset of --plan (default: the profile's)")
    modes.add_argument(
        "--scale-to-dense-img-s",
        type=float,
        metavar="N",
        help="plan at every measured rate times N / (measured dense rate): e.g. a CPU benchmark "
        "scaled to a GPU's expected dense rate; the plan says it is scaled",
    )
    modes.add_argument("--inference", action="store_true", help="also time CPU inference per backend")
    modes.add_argument("--only-inference", action="store_true", help="time CPU inference only, no training steps")
    modes.add_argument(
        "--compare",
        choices=["authors"],
        help="authors: time the authors' style of loop (PIL transforms, DataLoader, fp32; 32 and 224 px) beside "
        "the kit's on CIFAR-10, instead of the throughput table",
    )
    modes.add_argument("--debug", action="store_true", help="show the traceback of a handled error too")
    return parser.parse_args(argv)


def checked(config: BenchConfig, args: argparse.Namespace) -> BenchConfig:
    """`config` and the mode's flags, if what they name exists here (the architectures, the device),
    before anything is measured; `BenchConfig` checks each field's own range."""
    for flag, arch in (("--arch", config.arch), ("--teacher-arch", config.teacher_arch)):
        if arch is not None and arch not in models.ARCHS:
            raise InputError(f"{flag} {arch}: unknown architecture; choose one of {', '.join(models.ARCHS)}")
    checked_device(config.device)
    if args.plan_dataset and not args.plan:
        raise InputError(f"--plan-dataset {args.plan_dataset} plans nothing without --plan PROFILE, e.g. --plan fast")
    if args.scale_to_dense_img_s is not None and not args.scale_to_dense_img_s > 0:
        raise InputError(f"--scale-to-dense-img-s takes images/s > 0, e.g. 20000, got {args.scale_to_dense_img_s:g}")
    return config


def planned_networks(planned: RunConfig) -> BenchConfig:
    """The benchmark of a plan: the planned profile's networks, batch and image size (a plan is only as
    good as what was measured)."""
    return BenchConfig(
        arch=planned.student.arch,
        width=planned.student.width,
        teacher_arch=planned.teacher.arch,
        teacher_width=planned.teacher.width,
        batch_size=planned.student_training.batch_size,
        image_shape=budget.image_shape(planned),
    )


def measure_throughput(config: BenchConfig, csv: str | None) -> pd.DataFrame:
    table = throughput.run_bench(config, say=lambda message: print(message, file=sys.stderr, flush=True))
    print(throughput.format_report(table))
    if csv:
        table.to_csv(csv, index=False)
    return table


def print_plan(planned: RunConfig, table: pd.DataFrame, device: str, scale_to_dense_img_s: float | None) -> None:
    """The plan of the whole device command at the measured rates: a GPU's where the benchmark ran on
    one, or where the rates are scaled to one (`--scale-to-dense-img-s`)."""
    rates = table.iloc[0].to_dict()
    if scale_to_dense_img_s:
        factor = scale_to_dense_img_s / rates["dense_img_s"]
        rates = {key: value * factor if key.endswith("img_s") else value for key, value in rates.items()}
        rates["score_s_per_50k"] /= factor
    device_type = "cuda" if scale_to_dense_img_s else torch.device(device).type
    print()
    print(
        budget.format_plan(budget.stage_plan(planned, rates, device_type=device_type), scaled_to=scale_to_dense_img_s)
    )


def measure_inference(config: BenchConfig) -> pd.DataFrame:
    student = throughput.resolved(dataclasses.replace(config, device="cpu"))
    latency = inference.benchmark(student.arch, student.width, student.image_shape, hparams.DeploymentConfig())
    print(inference.format_latency(latency))
    return latency


def compare_with_authors(config: BenchConfig, csv: str | None) -> pd.DataFrame:
    device = torch.device(config.device or default_device())
    cifar = load_dataset("cifar10", download=False).to(device)
    table = comparator.compare(cifar, device, **({"steps": config.steps} if config.steps else {}))
    print(comparator.format_comparison(table))
    if csv:
        table.to_csv(csv, index=False)
    return table


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def command() -> None:
        planned = hparams.profile(args.plan, args.plan_dataset) if args.plan else None
        # a plan's networks and images: its dataset's size is known (`budget`'s own check) before any measurement
        config = checked(flags.from_flags(planned_networks(planned) if planned else BenchConfig(), args), args)
        if args.compare:
            compare_with_authors(config, args.csv)
            return
        if args.inference or args.only_inference:
            measure_inference(config)
            if args.only_inference:
                return
        table = measure_throughput(config, args.csv)
        if planned:
            print_plan(planned, table, config.device or str(default_device()), args.scale_to_dense_img_s)

    return run_command(command, debug=args.debug)
