"""The authors' style of training loop beside the kit's, timed in one run on one device and model:
`python -m tgkit.bench --compare authors`.

The authors' notebooks train the way most PyTorch tutorials do (written here fresh from the paper's
and docs/method.md's description, not from their code):

    a torchvision-style dataset that hands out one PIL image at a time      (CIFAR-10 in memory, as
    -> per-image transforms: upsample to 224 px (their setting, for the      torchvision's CIFAR10
       ImageNet-pretrained ResNets) or keep 32 px, random flip, ToTensor,    holds it)
       Normalize
    -> a DataLoader (shuffled, worker processes) over an 80/20 train/validation split
    -> fp32 forward, cross-entropy, backward, SGD step

The kit keeps the whole uint8 dataset in the device's memory, augments whole batches there, and
autocasts to bf16 where the device has bf16 units (`train.TrainingStep`, the step `fit` runs).

Each row times the same number of training steps after a warm-up and gives images/s, and the seconds
an epoch over the 80% split would take at that rate (a rate times a count, not a timed epoch).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, random_split
from torchvision import transforms
from torchvision.models import resnet18

from tgkit.data import ImageData
from tgkit.hparams import TrainConfig
from tgkit.models import build_model
from tgkit.train import TrainingStep
from tgkit.util.device import device_name, memory_format_for, precision_name, stopwatch

TRAIN_SHARE = 0.8  # the authors' 80/20 split of the training images


class PilImages(Dataset):
    """One (PIL image, label) at a time, through `transform`, as torchvision's CIFAR10 serves them."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C) uint8
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(np.ascontiguousarray(self.images[index]))), self.labels[index]


def authors_loader(data: ImageData, size: int, batch_size: int, workers: int) -> DataLoader:
    """The authors' input pipeline: PIL transforms per image over 80% of the training images."""
    steps = [transforms.Resize(size)] if size != data.image_shape[-1] else []
    steps += [transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize(data.mean, data.std)]
    images = PilImages(data.train_x.cpu(), data.train_y.cpu(), transforms.Compose(steps))
    count = len(images)
    train, _ = random_split(
        images, [round(TRAIN_SHARE * count), count - round(TRAIN_SHARE * count)], torch.Generator().manual_seed(0)
    )
    return DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0)


def authors_rate(model: nn.Module, loader: DataLoader, device: torch.device, warmup: int, steps: int) -> float:
    """Images/s of the authors' fp32 step, SGD lr 0.01 momentum 0.9, fed by `loader`."""
    model = model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batches = itertools.cycle(loader)

    def step() -> int:
        x, y = next(batches)
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        return len(y)

    for _ in range(warmup):
        step()
    with stopwatch(device) as clock:
        images = sum(step() for _ in range(steps))
    return images / clock.seconds


def kit_rate(
    model: nn.Module, data: ImageData, device: torch.device, batch_size: int, precision: str, warmup: int, steps: int
) -> float:
    """Images/s of the kit's training step (`train.TrainingStep`) fed by `ImageData.batches`."""
    config = TrainConfig(epochs=1, batch_size=batch_size, precision=precision)
    steps_per_epoch = len(data.batches("train", batch_size, device=device))
    step = TrainingStep(model, config, device, steps_per_epoch)
    channels_last = memory_format_for(device, config.channels_last, precision) == torch.channels_last
    batches = itertools.chain.from_iterable(
        data.batches("train", batch_size, device=device, epoch=epoch, channels_last=channels_last)
        for epoch in itertools.count()
    )
    for _ in range(warmup):
        step(*next(batches))
    with stopwatch(device) as clock:
        images = 0
        for _ in range(steps):
            x, y = next(batches)
            step(x, y)
            images += len(y)
    return images / clock.seconds


def compare(
    data: ImageData,
    device: torch.device,
    *,
    width: int = 64,
    batch_size: int = 64,
    warmup: int = 2,
    steps: int = 5,
    workers: int = 2,
) -> pd.DataFrame:
    """The side-by-side table: the authors' loop at 224 px (torchvision's ImageNet ResNet-18) and at
    32 px, the kit's loop at 32 px in fp32 and at its default precision, all on `device`."""
    torch.manual_seed(0)
    cifar_resnet = lambda: build_model("resnet18", data.num_classes, in_channels=data.image_shape[0], width=width)  # noqa: E731
    epoch_images = round(TRAIN_SHARE * (len(data.train_y) + len(data.val_y)))  # 40,000 of CIFAR-10's 50,000
    native = data.image_shape[-1]
    rows = [
        ("authors' loop", 224, "torchvision ResNet-18 (ImageNet layout)", "fp32",
         lambda: authors_rate(resnet18(num_classes=data.num_classes), authors_loader(data, 224, batch_size, workers), device, warmup, steps)),
        ("authors' loop", native, f"CIFAR ResNet-18 width {width}", "fp32",
         lambda: authors_rate(cifar_resnet(), authors_loader(data, native, batch_size, workers), device, warmup, steps)),
        ("kit's loop", native, f"CIFAR ResNet-18 width {width}", "fp32",
         lambda: kit_rate(cifar_resnet(), data, device, batch_size, "fp32", warmup, steps)),
        ("kit's loop", native, f"CIFAR ResNet-18 width {width}", precision_name(device, "auto"),
         lambda: kit_rate(cifar_resnet(), data, device, batch_size, "auto", warmup, steps)),
    ]  # fmt: skip
    table = []
    for loop, size, model, precision, measure in rows:
        rate = measure()
        table.append(
            {"loop": loop, "pixels": size, "model": model, "precision": precision, "images_per_s": rate,
             "epoch_seconds": epoch_images / rate}
        )  # fmt: skip
    table = pd.DataFrame(table)
    authors_224, authors_native = table.loc[0, "images_per_s"], table.loc[1, "images_per_s"]
    table["over_authors_224px"] = table["images_per_s"] / authors_224
    table["over_authors_same_model"] = np.where(table.index >= 1, table["images_per_s"] / authors_native, math.nan)
    return table.assign(device=device_name(device), batch_size=batch_size, steps=steps)


def format_comparison(table: pd.DataFrame) -> str:
    """The table as text, with what its ratios mean."""
    head = (
        f"the authors' loop against the kit's, {table['device'].iloc[0]}, batch {table['batch_size'].iloc[0]}, "
        f"{table['steps'].iloc[0]} timed steps each (epoch_seconds: 80% of the training images at that rate)"
    )
    shown = table.drop(columns=["device", "batch_size", "steps"])
    return head + "\n" + shown.to_string(index=False, float_format=lambda value: f"{value:,.2f}", na_rep="-")
