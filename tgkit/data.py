"""Datasets by name, decoded once to uint8 tensors, and fast mini-batches with augmentation.

`load_dataset(name)` returns an `ImageData`: every split as one uint8 tensor of shape (N, C, H, W)
plus int64 labels, the class names, and the per-channel mean and std of the training images.

    data = load_dataset("cifar10", train_subset=5000)
    for x, y in data.batches("train", 128, device="cuda"):   # one epoch, augmented on the GPU
        ...

Where the data comes from:

    digits          scikit-learn's 8x8 handwritten digits (bundled, offline): the smoke-test data
    cifar10         <data_dir>/cifar-10-batches-py (official) or <data_dir>/cifar10/{train,test}/<class>/
    cifar100        <data_dir>/cifar-100-python (official) or <data_dir>/cifar100/{train,test}/<class>/
    tinyimagenet    <data_dir>/tiny-imagenet-200 (official layout; 64 px, or 32 px for our copy)
    imagefolder:P   any P/{train,test}/<class>/<image> tree of equally sized images

Decoding tens of thousands of small image files takes seconds to minutes, so every source but
`digits` is decoded once into a tensor file under `<data_dir>/cache/`; later loads read that file.

Splits. The official test split is used only for final numbers. Model selection uses a validation
split carved out of the official training split (stratified and seeded), so `train_x` never contains
a validation image. Same arguments and seed, same splits, on every machine.

Batches. The whole uint8 dataset is moved to the device once, and each mini-batch is augmented there
as one tensor (random crop and horizontal flip), which is far faster than the usual per-image PIL
pipeline with DataLoader workers, and does the same thing: the crop pads with black pixels like
torchvision's `RandomCrop(32, padding=4)`, then the batch is scaled to [0, 1] and normalised.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import pickle
import socket
import threading
import urllib.parse
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tgkit.checkpoint import CheckpointError, load_checkpoint, save_atomic
from tgkit.frontend import progress_bar

DATASETS = ("digits", "cifar10", "cifar100", "tinyimagenet")
IMAGEFOLDER_PREFIX = "imagefolder:"
SPLITS = ("train", "val", "test")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# Bump when the layout of the cache files changes, so that old caches are ignored, not misread.
_CACHE_VERSION = 1
# Images per decoding task: large enough that handing work to another process is cheap next to it.
_DECODE_CHUNK = 1000
# Seconds to wait for a name lookup or a silent server before concluding there is no network.
_NETWORK_TIMEOUT_S = 5.0
# digits has no official test split; a fixed seed makes the carved one behave like an official one,
# the same for every run whatever `seed` says, so that test numbers of different runs compare.
_DIGITS_TEST_FRACTION = 0.2
_DIGITS_TEST_SEED = 0


def default_data_dir() -> Path:
    """The data folder: $TGKIT_DATA if set, else `data/` in the project root."""
    if os.environ.get("TGKIT_DATA"):
        return Path(os.environ["TGKIT_DATA"]).expanduser()
    return Path(__file__).resolve().parents[1] / "data"


class DatasetNotFound(FileNotFoundError):
    """A dataset is in none of the places searched; the message lists them and how to fix it."""


@dataclass(frozen=True)
class Augment:
    """Train-time augmentation, applied to whole batches on the device.

    crop_padding: pad each image with `crop_padding` black pixels on every side, then cut out a window
        of the original size at a random offset, i.e. shift the image by up to that many pixels (0: off).
    flip: mirror each image left-right with probability 1/2.
    """

    crop_padding: int = 4
    flip: bool = True

    def __post_init__(self):
        if not isinstance(self.crop_padding, int) or self.crop_padding < 0:
            raise ValueError(f"Augment.crop_padding must be an integer >= 0, got {self.crop_padding!r}")

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip


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
                raise ValueError(f"{self.name}: {split}_x must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.shape != (len(x),):
                raise ValueError(f"{self.name}: {split}_y must be int64 ({len(x)},), got {y.dtype} {tuple(y.shape)}")
            if x.shape[1:] != self.train_x.shape[1:]:
                raise ValueError(f"{self.name}: {split}_x has images of shape {tuple(x.shape[1:])}, "
                                 f"train_x of shape {tuple(self.train_x.shape[1:])}")
        if not len(self.mean) == len(self.std) == self.train_x.shape[1]:
            raise ValueError(f"{self.name}: mean and std need one value per channel ({self.train_x.shape[1]})")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.train_x.shape[1:])

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}, {self.num_classes} classes, images {self.image_shape}, "
                f"train {len(self.train_y)}, val {len(self.val_y)}, test {len(self.test_y)})")

    def _split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        return getattr(self, f"{split}_x"), getattr(self, f"{split}_y")

    def batches(self, split: str, batch_size: int, *, shuffle: bool | None = None,
                augment: bool | Augment | None = None, device: str | torch.device = "cpu", seed: int = 0,
                channels_last: bool = False, drop_last: bool | None = None) -> Batches:
        """Mini-batches `(x, y)` of one split: x float32 (B, C, H, W) normalised, y int64, both on `device`.

        The defaults suit the split: "train" is shuffled, augmented with `self.augment` and drops its
        last incomplete batch (a batch of a handful of images gives noisy BatchNorm statistics),
        unless the split is smaller than one batch; "val" and "test" are none of these, so they are
        read in order, every image exactly once. `augment=True` means `self.augment`; pass an
        `Augment` for another one. `seed` fixes the shuffling and augmentation (see `Batches`).
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
        return Batches(x, y, self.mean, self.std, batch_size, shuffle=is_train if shuffle is None else shuffle,
                       augment=augment, device=device, seed=seed, channels_last=channels_last, drop_last=drop_last)

    def subset_classes(self, classes: Sequence[int]) -> ImageData:
        """Only the images of `classes`, in every split, relabelled 0..len(classes)-1 in the order given.

        `mean` and `std` are recomputed on the remaining training images. The name records the classes,
        so that results keyed by name never mix the subset with the full dataset.
        """
        classes = [int(c) for c in classes]
        if not classes or len(set(classes)) != len(classes) or not all(0 <= c < self.num_classes for c in classes):
            raise ValueError(f"classes must be distinct indices in 0..{self.num_classes - 1}, got {classes}")
        new_label = torch.full((self.num_classes,), -1, dtype=torch.int64)
        new_label[classes] = torch.arange(len(classes))
        splits = {}
        for split in SPLITS:
            x, y = self._split(split)
            relabelled = new_label.to(y.device)[y]
            keep = torch.nonzero(relabelled >= 0).flatten()
            splits[f"{split}_x"], splits[f"{split}_y"] = x.index_select(0, keep), relabelled[keep]
        mean, std = channel_stats(splits["train_x"])
        return dataclasses.replace(self, name=f"{self.name}[{','.join(map(str, classes))}]",
                                   classes=[self.classes[c] for c in classes], mean=mean, std=std, **splits)

    def to(self, device: str | torch.device) -> ImageData:
        """A copy with every split on `device`: `batches` on it then copies nothing per call."""
        moved = {f: getattr(self, f).to(device) for f in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")}
        return dataclasses.replace(self, **moved)


class Batches:
    """An iterable of `(images, labels)` mini-batches over uint8 images; each `for` loop is one epoch.

    The uint8 images move to `device` once, here; each batch is then taken by indexing, augmented as
    one tensor (crop and flip, on uint8, so that padding is black), converted to float32, scaled to
    [0, 1] and normalised with `mean` and `std` (per channel, [0, 1] units).

    Randomness (the shuffling order and the augmentation) comes from a generator seeded with `seed`
    and the epoch count (`self.epoch`, which each loop advances by one): epochs differ from each other,
    and a rerun with the same seed sees exactly the same batches, on the CPU or a GPU. A run resumed
    at epoch k sets `batches.epoch = k` to continue the same sequence. Without shuffle and augmentation
    the batches are the split in order, the same every time.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 batch_size: int, *, shuffle: bool = False, augment: Augment | None = None,
                 device: str | torch.device = "cpu", seed: int = 0, channels_last: bool = False,
                 drop_last: bool = False):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if drop_last and len(images) < batch_size:
            raise ValueError(f"drop_last=True with {len(images)} images and batch_size={batch_size} leaves no "
                             f"batch at all; lower batch_size or pass drop_last=False")
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need {channels} values (one per channel), got {mean} and {std}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment if augment is not None and augment.active else None
        self.seed = seed
        self.channels_last = channels_last
        self.drop_last = drop_last
        self.epoch = 0
        # (x / 255 - mean) / std as one multiply-add per pixel: x * scale + shift.
        std_t = torch.tensor(std, dtype=torch.float64)
        mean_t = torch.tensor(mean, dtype=torch.float64)
        self._scale = (1 / (255 * std_t)).float().view(1, -1, 1, 1).to(self.device)
        self._shift = (-mean_t / std_t).float().view(1, -1, 1, 1).to(self.device)

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.labels) // self.batch_size
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, size = len(self.labels), self.batch_size
        # The random numbers of a whole epoch are drawn up front on the CPU, so that they are the same
        # whatever the device, then moved to the device in one transfer.
        generator = torch.Generator().manual_seed(_mix_seed(self.seed, self.epoch))
        self.epoch += 1
        order = torch.randperm(n, generator=generator).to(self.device) if self.shuffle else None
        if self.augment is not None:
            padding = self.augment.crop_padding
            offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator).to(self.device)
            flips = (torch.rand(n, generator=generator) < 0.5).to(self.device)
        for start in range(0, len(self) * size, size):
            stop = min(start + size, n)
            if order is None:
                x, y = self.images[start:stop], self.labels[start:stop]
            else:
                x, y = self.images.index_select(0, order[start:stop]), self.labels[order[start:stop]]
            if self.augment is not None:
                if padding:
                    x = random_crop(x, padding, offsets[start:stop])
                if self.augment.flip:
                    x = random_flip(x, flips[start:stop])
            x = x.float().mul_(self._scale).add_(self._shift)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y


def random_crop(images: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Pad a batch (B, C, H, W) with `padding` zeros on each side, then cut an H x W window per image.

    `offsets` (B, 2) holds each window's top-left corner (row, column) in the padded image, each in
    0..2*padding; the offset (padding, padding) gives back the original image. One gather for the
    whole batch, instead of a Python loop over its images.
    """
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    device = images.device
    rows = (offsets[:, 0, None] + torch.arange(h, device=device)).view(n, 1, h, 1)
    cols = (offsets[:, 1, None] + torch.arange(w, device=device)).view(n, 1, 1, w)
    return padded[torch.arange(n, device=device).view(n, 1, 1, 1), torch.arange(c, device=device).view(1, c, 1, 1),
                  rows, cols]


def random_flip(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images of a batch (B, C, H, W) where the bool mask `flip` (B,) is True."""
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)


def _mix_seed(seed: int, epoch: int) -> int:
    # A hash of the pair: plain seed + epoch would make (seed 1, epoch 0) replay (seed 0, epoch 1).
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W), in [0, 1] units.

    Counting the 256 possible values per channel gives exact results without a float copy of the data.
    """
    if len(images) == 0:
        raise ValueError("cannot compute mean and std of an empty set of images")
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


def load_dataset(name: str, data_dir: str | Path | None = None, *, val_fraction: float = 0.1, seed: int = 0,
                 train_subset: int | None = None, test_subset: int | None = None, download: bool = True,
                 progress: bool = True) -> ImageData:
    """Load a dataset by name (see `DATASETS`, or "imagefolder:<path>") with its splits.

    data_dir: where datasets and the decoding cache live; default `default_data_dir()`.
    val_fraction: part of the training split (after `train_subset`) held out as the validation split,
        the same part of every class, chosen at random by `seed`.
    train_subset, test_subset: keep only this many images of the official split, n // num_classes of
        each class chosen at random by `seed`, for quick runs.
    download: for CIFAR only, fetch the official archive with torchvision if it is nowhere in data_dir
        (fails within seconds without network).
    progress: show a progress bar while decoding images.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    data_dir = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    name = name.strip()
    if name.lower() == "digits":
        name, decoded, augment = "digits", _load_digits(), Augment(crop_padding=1, flip=False)
    else:
        if name.lower() in DATASETS:
            name = name.lower()
        source = _find_source(name, data_dir, download)
        decoded, augment = _cached_decode(source, data_dir, progress), Augment(crop_padding=4, flip=True)

    classes = decoded["classes"]
    train_x, train_y = decoded["train_x"], decoded["train_y"]
    test_x, test_y = decoded["test_x"], decoded["test_y"]
    if train_subset is not None:
        keep = _stratified_subset(train_y, train_subset, len(classes), seed, "train_subset")
        train_x, train_y = train_x.index_select(0, keep), train_y[keep]
    if test_subset is not None:
        keep = _stratified_subset(test_y, test_subset, len(classes), seed, "test_subset")
        test_x, test_y = test_x.index_select(0, keep), test_y[keep]
    val, train = _stratified_split(train_y, val_fraction, seed)
    if len(train) == 0:
        raise ValueError(f"val_fraction={val_fraction} leaves no training images out of {len(train_y)}")
    # index_select copies whole rows; plain x[indices] gathers byte by byte, several times slower.
    val_x, train_x = train_x.index_select(0, val), train_x.index_select(0, train)
    mean, std = channel_stats(train_x)
    return ImageData(name=name, classes=list(classes), train_x=train_x, train_y=train_y[train],
                     val_x=val_x, val_y=train_y[val], test_x=test_x, test_y=test_y,
                     mean=mean, std=std, augment=augment)


# ----------------------------------------------------------------------------------------------
# Seeded, stratified splits


def _stratified_pick(labels: torch.Tensor, count: Callable[[int], int], seed: int) -> torch.Tensor:
    """Sorted indices of `count(n_c)` images picked at random from each class c (n_c images)."""
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        picked.append(members[torch.randperm(len(members), generator=generator)[:count(len(members))]])
    # Sorting keeps the source order, so that a subset reads like the original split.
    return torch.sort(torch.cat(picked)).values


def _stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(held, rest): `fraction` of each class (rounded) held out at random, and the other indices."""
    held = _stratified_pick(labels, lambda n: math.floor(fraction * n + 0.5), seed)
    rest = torch.ones(len(labels), dtype=torch.bool)
    rest[held] = False
    return held, torch.nonzero(rest).flatten()


def _stratified_subset(labels: torch.Tensor, size: int, num_classes: int, seed: int, what: str) -> torch.Tensor:
    per_class = size // num_classes if isinstance(size, int) else 0
    available = torch.bincount(labels, minlength=num_classes)
    if per_class < 1:
        raise ValueError(f"{what}={size!r}: need an integer >= {num_classes} (at least one image per class)")
    if per_class > int(available.min()):
        raise ValueError(f"{what}={size} asks for {per_class} images per class, but the split has "
                         f"{len(labels)} images and its smallest class only {int(available.min())}")
    return _stratified_pick(labels, lambda n: per_class, seed)


# ----------------------------------------------------------------------------------------------
# Sources: where each dataset is found, and how it is decoded


@dataclass
class _Source:
    """A dataset found on disk: `decode(progress)` returns its classes and official splits as a dict
    with keys classes, train_x, train_y, test_x, test_y; `files` are all the files it reads."""

    label: str
    root: Path
    files: list[str]
    decode: Callable[[bool], dict]


@dataclass(frozen=True)
class _CifarFormat:
    name: str
    folder: str  # the folder of the official python version
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int


_CIFAR = {
    "cifar10": _CifarFormat("cifar10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                            ("test_batch",), "batches.meta", "labels", "label_names", 10),
    "cifar100": _CifarFormat("cifar100", "cifar-100-python", ("train",), ("test",), "meta",
                             "fine_labels", "fine_label_names", 100),
}


def _find_source(name: str, data_dir: Path, download: bool) -> _Source:
    if name in _CIFAR:
        return _find_cifar(_CIFAR[name], data_dir, download)
    if name == "tinyimagenet":
        return _find_tinyimagenet(data_dir)
    if name.startswith(IMAGEFOLDER_PREFIX):
        return _find_imagefolder(name[len(IMAGEFOLDER_PREFIX):], data_dir)
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, or {IMAGEFOLDER_PREFIX}<path> "
                     f"for a <path>/{{train,test}}/<class>/<image> tree")


def _remedies(data_dir: Path, archive: str | None, official: str) -> str:
    lines = ["To fix it, do one of:"]
    if archive:
        lines.append(f"  - run `make data` in the project root, which extracts ../shared/data/{archive} into data/, "
                     f"or extract it yourself: tar xzf ../shared/data/{archive} -C {data_dir}")
    lines.append(f"  - put the official dataset in {data_dir}: {official}")
    lines.append("  - set TGKIT_DATA (or pass data_dir=) to a folder that holds it")
    return "\n".join(lines)


def _find_cifar(fmt: _CifarFormat, data_dir: Path, download: bool) -> _Source:
    official, folders = data_dir / fmt.folder, data_dir / fmt.name
    if official.is_dir():
        return _cifar_pickle_source(fmt, official)
    if folders.is_dir():
        return _image_tree_source(fmt.name, folders, expect_classes=fmt.num_classes)
    tried = "download=False"
    if download:
        failure = _download_cifar(fmt, data_dir)
        if failure is None:
            return _cifar_pickle_source(fmt, official)
        tried = f"download failed: {failure}"
    archive = "cifar10-jpeg.tar.gz" if fmt.name == "cifar10" else None
    official_help = (f"the python version from https://www.cs.toronto.edu/~kriz/cifar.html, extracted to {official} "
                     f"(load_dataset(..., download=True) does that on a machine with network)")
    raise DatasetNotFound(
        f"{fmt.name} not found. Searched:\n  {official}  (official python version)\n"
        f"  {folders}/{{train,test}}/<class>/  (image folders)\n({tried})\n"
        + _remedies(data_dir, archive, official_help))


def _download_cifar(fmt: _CifarFormat, data_dir: Path) -> str | None:
    """Fetch and extract the official archive with torchvision; None on success, else why it failed."""
    from torchvision.datasets import CIFAR10, CIFAR100

    dataset_class = CIFAR10 if fmt.name == "cifar10" else CIFAR100
    host = urllib.parse.urlparse(dataset_class.url).hostname
    unresolved = _lookup_failure(host, _NETWORK_TIMEOUT_S)
    if unresolved:
        return f"cannot resolve {host}: {unresolved} (no network?)"
    # The default timeout bounds each connect and read, not the whole download. It is process-wide,
    # hence restored right after.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_NETWORK_TIMEOUT_S)
    try:
        dataset_class(root=str(data_dir), train=True, download=True)  # also checks the archive's md5
    except Exception as error:  # urllib, tarfile and torchvision raise many types
        return f"{type(error).__name__}: {error}"
    finally:
        socket.setdefaulttimeout(previous)
    return None


def _lookup_failure(host: str, timeout: float) -> str | None:
    """Why `host` cannot be resolved within `timeout` seconds, or None if it can.

    A name lookup ignores socket timeouts and can hang for long without network, so it runs in a
    thread that we stop waiting for (daemon: a hung lookup must not keep Python from exiting).
    """
    failure = [f"no answer within {timeout:g} s"]

    def lookup():
        try:
            socket.getaddrinfo(host, 443)
            failure[0] = None
        except OSError as error:
            failure[0] = str(error)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout)
    return failure[0]


def _cifar_pickle_source(fmt: _CifarFormat, folder: Path) -> _Source:
    """The official python version: pickled dicts with `data` uint8 (N, 3072) and labels.

    Read here in a few lines rather than through torchvision's CIFAR classes, which refuse any file
    whose md5 differs from the official one (a test's small fake, a re-packed copy), and check the
    meta file in a way no subclass can relax. Unpickling can run code: only read files from a source
    you trust, as with torchvision.
    """
    files = [folder / f for f in (*fmt.train_files, *fmt.test_files, fmt.meta_file)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DatasetNotFound(f"{folder} is incomplete, missing {', '.join(missing)}; "
                              f"delete the folder and extract the official archive again")

    def read(path: Path) -> dict:
        with open(path, "rb") as handle:
            content = pickle.load(handle, encoding="bytes")
        # The official files are Python 2 pickles (bytes keys); accept str keys as well.
        return {k.decode() if isinstance(k, bytes) else k: v for k, v in content.items()}

    def read_split(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [read(folder / n) for n in names]
        x = np.concatenate([np.asarray(p["data"], dtype=np.uint8) for p in parts])
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{folder}: 'data' must have shape (N, 3072), got {x.shape}")
        y = np.concatenate([np.asarray(p[fmt.label_key], dtype=np.int64) for p in parts])
        # Each row holds the 1024 red values of the 32x32 image row by row, then the green, then the blue.
        return torch.from_numpy(x.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(y)

    def decode(progress: bool) -> dict:
        names = read(folder / fmt.meta_file)[fmt.names_key]
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        train_x, train_y = read_split(fmt.train_files)
        test_x, test_y = read_split(fmt.test_files)
        return dict(classes=classes, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)

    return _Source(fmt.name, folder, [str(f) for f in files], decode)


def _image_tree_source(label: str, root: Path, expect_classes: int | None = None) -> _Source:
    """A <root>/{train,test}/<class>/<image> tree; classes are the sorted folder names of train/."""
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DatasetNotFound(f"{root / split} does not exist; expected {root}/{{train,test}}/<class>/<image>")
    classes = sorted(d.name for d in os.scandir(root / "train") if d.is_dir() and not d.name.startswith("."))
    if expect_classes is not None and len(classes) != expect_classes:
        raise DatasetNotFound(f"{root / 'train'} has {len(classes)} class folders, {label} has {expect_classes}; "
                              f"is the archive fully extracted?")
    if not classes:
        raise DatasetNotFound(f"{root / 'train'} has no class folders; expected {root}/train/<class>/<image>")
    test_classes = sorted(d.name for d in os.scandir(root / "test") if d.is_dir() and not d.name.startswith("."))
    unknown = sorted(set(test_classes) - set(classes))
    if unknown:
        raise ValueError(f"{root / 'test'} has classes that {root / 'train'} lacks: {', '.join(unknown)}")
    listing = {}
    for split in ("train", "test"):
        paths, labels = [], []
        for index, name in enumerate(classes):
            found = _image_files(root / split / name)
            paths += found
            labels += [index] * len(found)
        if not paths:
            raise DatasetNotFound(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root / split}")
        listing[split] = (paths, labels)
    return _listed_source(label, root, classes, listing, extra_files=[])


def _find_imagefolder(path: str, data_dir: Path) -> _Source:
    candidates = [Path(path).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(data_dir / path)  # a relative path may also mean a folder in data_dir
    for root in candidates:
        if root.is_dir():
            return _image_tree_source(f"imagefolder-{root.resolve().name}", root.resolve())
    searched = ", ".join(str(c.resolve()) for c in candidates)
    raise DatasetNotFound(f"image folder {path!r} not found. Searched: {searched}; "
                          f"expected <path>/{{train,test}}/<class>/<image>")


def _find_tinyimagenet(data_dir: Path) -> _Source:
    root = data_dir / "tiny-imagenet-200"
    needed = [root / "wnids.txt", root / "words.txt", root / "train", root / "val" / "images",
              root / "val" / "val_annotations.txt"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise DatasetNotFound(
            f"tinyimagenet not found. Searched {root}: "
            + (f"missing {', '.join(missing)}" if root.is_dir() else "no such folder") + "\n"
            f"(tgkit downloads only CIFAR)\n"
            + _remedies(data_dir, "tiny-imagenet-200-32px.tar.gz",
                        f"unzip http://cs231n.stanford.edu/tiny-imagenet-200.zip into {data_dir}"))
    # Classes in sorted wnid order, the order of an ImageFolder over train/, which most code uses.
    wnids = sorted(line.strip() for line in (root / "wnids.txt").read_text().splitlines() if line.strip())
    words = {}
    for line in (root / "words.txt").read_text().splitlines():
        wnid, _, names = line.partition("\t")
        words[wnid.strip()] = names.split(",")[0].strip()
    classes = [words.get(w) or w for w in wnids]
    index = {w: i for i, w in enumerate(wnids)}
    train_paths, train_labels = [], []
    for wnid in wnids:
        found = _image_files(root / "train" / wnid / "images")
        train_paths += found
        train_labels += [index[wnid]] * len(found)
    # The labelled val split of TinyImageNet serves as its test set (the official test has no labels).
    test_paths, test_labels = [], []
    images = str(root / "val" / "images")
    for line in (root / "val" / "val_annotations.txt").read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1] in index:
            test_paths.append(os.path.join(images, fields[0]))
            test_labels.append(index[fields[1]])
    if not train_paths or not test_paths:
        raise DatasetNotFound(f"{root} holds no train or no val images; extract the archive again")
    listing = {"train": (train_paths, train_labels), "test": (test_paths, test_labels)}
    extra = [str(root / f) for f in ("wnids.txt", "words.txt", "val/val_annotations.txt")]
    return _listed_source("tinyimagenet", root, classes, listing, extra)


def _listed_source(label: str, root: Path, classes: list[str], listing: dict, extra_files: list[str]) -> _Source:
    def decode(progress: bool) -> dict:
        decoded = {"classes": classes}
        for split, (paths, labels) in listing.items():
            decoded[f"{split}_x"] = _decode_images(paths, desc=f"decoding {label} {split}", progress=progress)
            decoded[f"{split}_y"] = torch.tensor(labels, dtype=torch.int64)
        return decoded

    files = listing["train"][0] + listing["test"][0] + extra_files
    return _Source(label, root, files, decode)


def _image_files(folder: str | Path) -> list[str]:
    """Image files under `folder` (recursively), sorted by name, skipping hidden ones.

    os.scandir rather than pathlib: listing 100,000 files is a visible part of a warm load.
    """
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found += _image_files(entry.path)
        elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
            found.append(entry.path)
    return found


def _load_digits() -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are 0..16; x16 spreads them over 0..255 (16 * 16 = 256 clips to 255).
    x = torch.from_numpy(np.clip(digits.images * 16, 0, 255).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(digits.target.astype(np.int64))
    test, train = _stratified_split(y, _DIGITS_TEST_FRACTION, _DIGITS_TEST_SEED)
    return dict(classes=[str(c) for c in range(10)], train_x=x[train], train_y=y[train], test_x=x[test], test_y=y[test])


# ----------------------------------------------------------------------------------------------
# Decoding images, and the cache that makes it happen once


def _decode_chunk(paths: list[str]) -> np.ndarray:
    """Decode images to one uint8 array (N, H, W, 3); all must have the size of the first."""
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                # RGB whatever the file holds: TinyImageNet, for one, mixes in grayscale images.
                images.append(np.asarray(image.convert("RGB")))
        except OSError as error:  # PIL's UnidentifiedImageError is an OSError too
            raise ValueError(f"cannot decode image {path}: {error}") from None
        if images[-1].shape != images[0].shape:
            raise ValueError(_size_mismatch(paths[0], images[0].shape, path, images[-1].shape))
    return np.stack(images)


def _size_mismatch(first: str, first_shape: tuple, other: str, other_shape: tuple) -> str:
    return (f"images differ in size: {first} is {first_shape[1]}x{first_shape[0]} but {other} is "
            f"{other_shape[1]}x{other_shape[0]}; resize them all to one size first, e.g. with PIL's "
            f"Image.resize or ImageMagick's `mogrify -resize 32x32! '*.png'`")


def _decode_images(paths: list[str], *, desc: str, progress: bool) -> torch.Tensor:
    """Decode image files to one uint8 tensor (N, 3, H, W), in chunks spread over the CPU cores.

    Processes rather than threads: per small image, most of the time goes to Python code that holds
    the interpreter lock, and threads measured slower than a plain loop.
    """
    chunks = [paths[i:i + _DECODE_CHUNK] for i in range(0, len(paths), _DECODE_CHUNK)]
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
                  len(chunks))
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    bar = progress_bar(total=len(paths), desc=desc, unit="img", disable=not progress)
    out = None
    try:
        arrays = pool.map(_decode_chunk, chunks) if pool else map(_decode_chunk, chunks)
        start = 0
        for chunk, array in zip(chunks, arrays):
            if out is None:
                out = np.empty((len(paths), array.shape[3], array.shape[1], array.shape[2]), dtype=np.uint8)
            elif array.shape[1:] != (out.shape[2], out.shape[3], out.shape[1]):
                raise ValueError(_size_mismatch(paths[0], (out.shape[2], out.shape[3]), chunk[0], array.shape[1:]))
            out[start:start + len(chunk)] = array.transpose(0, 3, 1, 2)
            start += len(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return torch.from_numpy(out)


def _cache_path(source: _Source, data_dir: Path) -> Path:
    """The cache file of a source: its name hashes what the decoded tensors depend on, so that new,
    removed or modified files (count or newest mtime) lead to a new decode, not to stale data."""
    newest = max((os.stat(f).st_mtime_ns for f in source.files), default=0)
    key = f"{_CACHE_VERSION}|{source.label}|{source.root.resolve()}|{len(source.files)}|{newest}"
    return data_dir / "cache" / f"{source.label}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def _cached_decode(source: _Source, data_dir: Path, progress: bool) -> dict:
    path = _cache_path(source, data_dir)
    if path.is_file():
        try:
            return _check_decoded(load_checkpoint(path), path)
        except (CheckpointError, ValueError) as error:
            # Only a cache: decoding again loses nothing but time.
            warnings.warn(f"ignoring the unreadable cache file {path} and decoding again: {error}", stacklevel=3)
    decoded = _check_decoded(source.decode(progress), source.root)
    try:
        save_atomic(decoded, path)
    except OSError as error:  # e.g. a read-only data folder: the data is still good, only slower next time
        warnings.warn(f"could not write the cache file {path} ({error}); the next load will decode again",
                      stacklevel=3)
    return decoded


def _check_decoded(decoded: object, origin: Path) -> dict:
    """Check the structure of decoded data (fresh or from a cache) before anything relies on it."""
    keys = ("classes", "train_x", "train_y", "test_x", "test_y")
    if not isinstance(decoded, dict) or any(k not in decoded for k in keys):
        raise ValueError(f"{origin}: expected a dict with keys {', '.join(keys)}")
    num_classes = len(decoded["classes"])
    for split in ("train", "test"):
        x, y = decoded[f"{split}_x"], decoded[f"{split}_y"]
        if x.dtype != torch.uint8 or x.ndim != 4 or len(x) != len(y) or len(y) == 0:
            raise ValueError(f"{origin}: {split} images must be a non-empty uint8 (N, C, H, W) with one label each")
        if int(y.min()) < 0 or int(y.max()) >= num_classes:
            raise ValueError(f"{origin}: {split} labels must lie in 0..{num_classes - 1}")
    return decoded
