"""One dataset in memory: every split as a uint8 tensor, and `load_dataset`, which makes the splits.

Splits. The official test split is used only for final numbers. Model selection uses a validation
split carved out of the official training split (stratified and seeded), so `train_x` never contains
a validation image. Same arguments and seed, same splits, on every machine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tgkit.data.batches import Augment, Batches
from tgkit.data.sources import official_splits
from tgkit.data.splits import stratified_split, stratified_subset
from tgkit.util import locations
from tgkit.util.errors import InputError

SPLITS = ("train", "val", "test")


@dataclass(repr=False)
class ImageData:
    """One dataset, all splits in memory as uint8 tensors (N, C, H, W) and int64 labels (N,).

    `val_*` is a stratified, seeded part of the official training split, kept apart for model
    selection; `test_*` is the official test split, for final numbers only. `mean` and `std` are
    per channel, in [0, 1] units, computed on `train_x`; `batches` normalises with them. `classes`
    names label k at position k; `augment` is the training augmentation `batches` uses by default.
    """

    name: str
    classes: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment = field(default_factory=Augment)

    def __post_init__(self):
        for split in SPLITS:
            x, y = self._split(split)
            if x.dtype != torch.uint8 or x.ndim != 4:
                raise InputError(f"{self.name}: {split}_x must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.shape != (len(x),):
                raise InputError(f"{self.name}: {split}_y must be int64 ({len(x)},), got {y.dtype} {tuple(y.shape)}")
            if x.shape[1:] != self.train_x.shape[1:]:
                raise InputError(
                    f"{self.name}: {split}_x has images of shape {tuple(x.shape[1:])}, "
                    f"train_x of shape {tuple(self.train_x.shape[1:])}"
                )
        if not len(self.mean) == len(self.std) == self.train_x.shape[1]:
            raise InputError(f"{self.name}: mean and std need one value per channel ({self.train_x.shape[1]})")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.train_x.shape[1:])

    def __repr__(self) -> str:
        return (
            f"ImageData({self.name!r}, {self.num_classes} classes, images {self.image_shape}, "
            f"train {len(self.train_y)}, val {len(self.val_y)}, test {len(self.test_y)})"
        )

    def _split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in SPLITS:
            raise InputError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        return getattr(self, f"{split}_x"), getattr(self, f"{split}_y")

    def batches(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool | None = None,
        augment: bool | Augment | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        epoch: int = 0,
        channels_last: bool = False,
        drop_last: bool | None = None,
    ) -> Batches:
        """Mini-batches `(x, y)` of one split: x float32 (B, C, H, W) normalised, y int64, both on `device`.

        The defaults suit the split: "train" is shuffled, augmented with `self.augment` and drops its
        last incomplete batch (a batch of a handful of images gives noisy BatchNorm statistics),
        unless the split is smaller than one batch; "val" and "test" are none of these, so they are
        read in order, every image exactly once. `augment=True` means `self.augment`; pass an
        `Augment` for another one. `seed` and `epoch` fix the shuffling and augmentation
        (`data.epoch_seed`); every further loop over the batches is another repeat of that epoch.
        """
        x, y = self._split(split)
        is_train = split == "train"
        if augment is None:
            augment = is_train
        if augment is True:
            augment = self.augment
        elif augment is False:
            augment = None
        if drop_last is None:
            drop_last = is_train and len(y) >= batch_size
        return Batches(
            x,
            y,
            self.mean,
            self.std,
            batch_size,
            shuffle=is_train if shuffle is None else shuffle,
            augment=augment,
            device=device,
            seed=seed,
            epoch=epoch,
            channels_last=channels_last,
            drop_last=drop_last,
        )

    def subset_classes(self, classes: Sequence[int]) -> ImageData:
        """Only the images of `classes`, in every split, relabelled 0..len(classes)-1 in the order given.

        `mean` and `std` are recomputed on the remaining training images. The name records the classes,
        so that results keyed by name never mix the subset with the full dataset.
        """
        classes = [int(c) for c in classes]
        if not classes or len(set(classes)) != len(classes) or not all(0 <= c < self.num_classes for c in classes):
            raise InputError(f"classes must be distinct indices in 0..{self.num_classes - 1}, got {classes}")
        new_label = torch.full((self.num_classes,), -1, dtype=torch.int64)
        new_label[classes] = torch.arange(len(classes))
        splits = {}
        for split in SPLITS:
            x, y = self._split(split)
            relabelled = new_label.to(y.device)[y]
            keep = torch.nonzero(relabelled >= 0).flatten()
            splits[f"{split}_x"], splits[f"{split}_y"] = x.index_select(0, keep), relabelled[keep]
        mean, std = channel_stats(splits["train_x"])
        return dataclasses.replace(
            self,
            name=f"{self.name}[{','.join(map(str, classes))}]",
            classes=[self.classes[c] for c in classes],
            mean=mean,
            std=std,
            **splits,
        )

    def to(self, device: str | torch.device) -> ImageData:
        """A copy with every split on `device`: `batches` on it then copies nothing per call."""
        moved = {f: getattr(self, f).to(device) for f in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")}
        return dataclasses.replace(self, **moved)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W), in [0, 1] units.

    Counting the 256 possible values per channel gives exact results without a float copy of the data.
    """
    if len(images) == 0:
        raise InputError("cannot compute mean and std of an empty set of images")
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256).cpu().double()
        mean = float((counts * values).sum() / counts.sum())
        std = float(((counts * (values - mean) ** 2).sum() / counts.sum()).sqrt())
        means.append(mean)
        # A constant channel carries no information; std 1 keeps it from dividing by zero.
        stds.append(std if std > 0 else 1.0)
    return tuple(means), tuple(stds)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    train_subset: int | None = None,
    test_subset: int | None = None,
    download: bool = True,
    progress: bool = True,
    augment_flip: bool | None = None,
    augment_crop_padding: int | None = None,
) -> ImageData:
    """Load a dataset by name (see `DATASETS`, or "imagefolder:<path>") with its splits.

    data_dir: where datasets and the decoding cache live; default `tgkit.util.locations.data_dir()`
        ($TGKIT_DATA, else `data/` of the checkout the command runs in, else of the user folder).
    val_fraction: part of the training split (after `train_subset`) held out as the validation split,
        the same part of every class, chosen at random by `seed`.
    train_subset, test_subset: keep only this many images of the official split, n // num_classes of
        each class chosen at random by `seed`, for quick runs.
    download: for CIFAR only, fetch the official archive with torchvision if it is nowhere in data_dir
        (fails within seconds without network).
    progress: show a progress bar while decoding images.
    augment_flip, augment_crop_padding: the training augmentation (`Augment`); None keeps the dataset's:
        CIFAR, TinyImageNet and image folders flip and pad by 4, digits pads by 1 and does not flip
        (mirrored handwriting is no digit).
    """
    if not 0 <= val_fraction < 1:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    data_dir = locations.data_dir() if data_dir is None else Path(data_dir).expanduser()
    name, decoded, augment = official_splits(name, data_dir, download=download, progress=progress)
    if augment_flip is not None:
        augment = dataclasses.replace(augment, flip=bool(augment_flip))
    if augment_crop_padding is not None:
        augment = dataclasses.replace(augment, crop_padding=augment_crop_padding)

    classes = decoded["classes"]
    train_x, train_y = decoded["train_x"], decoded["train_y"]
    test_x, test_y = decoded["test_x"], decoded["test_y"]
    if train_subset is not None:
        keep = stratified_subset(train_y, train_subset, len(classes), seed, "train_subset")
        train_x, train_y = train_x.index_select(0, keep), train_y[keep]
    if test_subset is not None:
        keep = stratified_subset(test_y, test_subset, len(classes), seed, "test_subset")
        test_x, test_y = test_x.index_select(0, keep), test_y[keep]
    val, train = stratified_split(train_y, val_fraction, seed)
    if len(train) == 0:
        raise InputError(f"val_fraction={val_fraction} leaves no training images out of {len(train_y)}")
    # index_select copies whole rows; plain x[indices] gathers byte by byte, several times slower.
    val_x, train_x = train_x.index_select(0, val), train_x.index_select(0, train)
    mean, std = channel_stats(train_x)
    return ImageData(
        name=name,
        classes=list(classes),
        train_x=train_x,
        train_y=train_y[train],
        val_x=val_x,
        val_y=train_y[val],
        test_x=test_x,
        test_y=test_y,
        mean=mean,
        std=std,
        augment=augment,
    )
