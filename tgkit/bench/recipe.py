"""What each trick of the CPU recipe buys: the quick profile's teacher trained with the whole recipe, then
with each trick removed in turn, on the same data, seed and CPU.

    python -m tgkit.bench.recipe                       every variant below, the quick profile on CIFAR-10
    python -m tgkit.bench.recipe --epochs 4 --only recipe no-lookahead

The recipe is airbench94's (Keller Jordan, 2024, MIT licence), reimplemented in the kit: its network
(`models.AirbenchNet`, with the frozen patch-whitening layer), Nesterov SGD at a high learning rate with
weight decay scaled to it, the BatchNorm shifts at 64 times that rate, lookahead averaging, and a
translation of at most 2 pixels (`hparams.cpu_recipe`). Each row trains one teacher from scratch and
prints its test accuracy (the model picked on the validation split, as `train.fit` does) and minutes:
no run cache, so every row is measured in this process, one after the other.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import pandas as pd
import torch

from tgkit import hparams, models, train
from tgkit.data import load_dataset
from tgkit.util import checkpoint
from tgkit.util.device import checked_device, default_device, device_name, precision_name
from tgkit.util.errors import InputError, check_whole, run_command
from tgkit.util.progress import progress_bar

# key -> (what the row shows, how it differs from the recipe: TrainConfig fields, and "whitening",
# "crop_padding", or "network" with its "training" for the teacher the quick profile used before)
VARIANTS: dict[str, tuple[str, dict]] = {
    "recipe": ("the recipe", {}),
    "no-whitening": ("no patch whitening (the layer keeps its fixed pixel picks)", {"whitening": False}),
    "no-lookahead": ("no lookahead", {"lookahead_every": 0}),
    "no-shift-lr": ("BatchNorm shifts at the base learning rate", {"bn_bias_lr_scale": 1.0}),
    "resnet-sgd": (
        "a ResNet's SGD: lr 0.2, momentum 0.9, weight decay 5e-4",
        {"lr": 0.2, "momentum": 0.9, "weight_decay": 5e-4},
    ),
    "crop-4": ("crop padding 4, not 2", {"crop_padding": 4}),
    "label-smoothing": ("label smoothing 0.2 (airbench's; the kit's teachers use none)", {"label_smoothing": 0.2}),
    "old-teacher": (
        "the quick profile's old teacher: ResNet-18 width 16, batch 128, lr 0.1, weight decay 5e-4",
        {"network": hparams.ModelSpec("resnet18", 16), "training": hparams.TrainConfig(batch_size=128, lr=0.1)},
    ),
}


def variant_setup(config: hparams.RunConfig, change: dict) -> tuple[hparams.ModelSpec, hparams.TrainConfig, int]:
    """The network, training and crop padding of `config`'s teacher as `change` says."""
    training = replace(change.get("training", config.teacher_training), epochs=config.teacher_training.epochs)
    fields = {k: v for k, v in change.items() if k in hparams.TrainConfig.__dataclass_fields__}
    padding = change.get("crop_padding", config.augment_crop_padding)
    return change.get("network", config.teacher), replace(training, **fields), padding


def train_variant(config: hparams.RunConfig, change: dict, device: torch.device, data_cache: dict) -> dict:
    """Train `config`'s teacher as `change` says; its test accuracy, best epoch, minutes and images per second."""
    spec, training, padding = variant_setup(config, change)
    if padding not in data_cache:
        data_cache[padding] = load_dataset(
            config.dataset, val_fraction=config.val_fraction, seed=config.seed, augment_crop_padding=padding
        )
    data = data_cache[padding]
    torch.manual_seed(config.seed)
    network = models.build_model(spec.arch, data.num_classes, in_channels=data.image_shape[0], width=spec.width)
    if not change.get("whitening", True):
        for layer in models.whitening_layers(network):
            layer.fitted.fill_(True)  # fit skips it: the fixed pixel picks stay
    started = time.perf_counter()
    network, history = train.fit(network, data, training, device=device, seed=config.seed, desc="teacher")
    seconds = time.perf_counter() - started
    return {
        "test_accuracy": train.evaluate(network, data, device=device, precision=training.precision),
        "best_epoch": max(history, key=lambda h: h["val_accuracy"])["epoch"],
        "minutes": seconds / 60,
        "images_per_s": training.epochs * len(data.train_y) / sum(h["seconds"] for h in history),
    }


def ablation(config: hparams.RunConfig, variants: list[str], device: torch.device) -> pd.DataFrame:
    """One row per variant: what it changes, test accuracy, the best epoch, minutes, training images/s."""
    rows, data_cache = [], {}
    for key in progress_bar(variants, desc="recipe ablation", unit="teacher"):
        description, change = VARIANTS[key]
        rows.append({"variant": description, **train_variant(config, change, device, data_cache)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tgkit.bench.recipe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick", choices=list(hparams.PROFILES))
    parser.add_argument("--dataset", help="default: the profile's")
    parser.add_argument("--epochs", type=int, help="the teacher's epochs (default: the profile's)")
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help=f"some of: {', '.join(VARIANTS)}")
    parser.add_argument("--device", help="default: cuda if available")
    parser.add_argument("--csv", metavar="PATH", help="also write the table to this CSV file")
    args = parser.parse_args(argv)

    def command() -> None:
        config = hparams.profile(args.profile, args.dataset)
        if args.epochs is not None:
            check_whole("--epochs", args.epochs)
            config = replace(config, teacher_training=replace(config.teacher_training, epochs=args.epochs))
        unknown = [name for name in args.only or () if name not in VARIANTS]
        if unknown:
            raise InputError(f"--only {unknown[0]}: unknown variant; choose among {', '.join(VARIANTS)}")
        device = torch.device(checked_device(args.device) or default_device())
        table = ablation(config, args.only or list(VARIANTS), device)
        print(
            f"\nprofile {config.profile}, dataset {config.dataset}, teacher {config.teacher.arch} width "
            f"{config.teacher.width}, {config.teacher_training.epochs} epochs, seed {config.seed}, device "
            f"{device_name(device)}, training {precision_name(device, config.teacher_training.precision)}"
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if args.csv:
            checkpoint.write_text_atomic(table.to_csv(index=False), args.csv)

    return run_command(command)


if __name__ == "__main__":
    raise SystemExit(main())
