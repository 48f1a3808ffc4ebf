"""Where each dataset is found, and how its files are read.

    digits          scikit-learn's 8x8 handwritten digits (bundled, offline): the smoke-test data
    cifar10         <data_dir>/cifar-10-batches-py (official) or <data_dir>/cifar10/{train,test}/<class>/
    cifar100        <data_dir>/cifar-100-python (official) or <data_dir>/cifar100/{train,test}/<class>/
    tinyimagenet    <data_dir>/tiny-imagenet-200 (official layout; 64 px, or 32 px for our copy)
    imagefolder:P   any P/{train,test}/<class>/<image> tree of equally sized images

Decoding tens of thousands of small image files takes seconds to minutes, so every source but
`digits` is decoded once into a tensor file under `<data_dir>/cache/` (`data.decoding`); later loads
read that file.
`official_splits` returns a dataset's classes and official train and test splits, whichever source
holds it.
"""

from __future__ import annotations

import errno
import os
import pickle
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tgkit.data import decoding
from tgkit.data.batches import Augment
from tgkit.data.decoding import Source
from tgkit.data.splits import stratified_split
from tgkit.util.errors import InputError, TgkitError

DATASETS = ("digits", "cifar10", "cifar100", "tinyimagenet")
IMAGEFOLDER_PREFIX = "imagefolder:"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# Seconds to wait for a name lookup or a silent server before concluding there is no network.
_NETWORK_TIMEOUT_S = 5.0
# digits has no official test split; a fixed seed makes the carved one behave like an official one,
# the same for every run whatever `seed` says, so that test numbers of different runs compare.
_DIGITS_TEST_FRACTION = 0.2
_DIGITS_TEST_SEED = 0


class DatasetNotFound(TgkitError, FileNotFoundError):
    """A dataset is in none of the places searched; the message lists them and how to fix it."""


def official_splits(name: str, data_dir: Path, *, download: bool, progress: bool) -> tuple[str, dict, Augment]:
    """(the dataset's canonical name, its decoded classes and official splits, its training augmentation).

    The dict has keys classes, train_x, train_y, test_x, test_y (uint8 images (N, C, H, W), int64
    labels). Every source but digits is decoded once and cached under `data_dir/cache/`.
    """
    name = name.strip()
    if name.lower() == "digits":
        return "digits", _load_digits(), Augment(crop_padding=1, flip=False)
    if name.lower() in DATASETS:
        name = name.lower()
    source = _find_source(name, data_dir, download)
    return name, decoding.cached_decode(source, data_dir, progress), Augment(crop_padding=4, flip=True)


def content_fingerprint(name: str, data_dir: Path) -> str | None:
    """A hash of an `imagefolder:` dataset's files (paths, sizes, modification times: `decoding.fingerprint`),
    for the run cache's key of its data; None for the named datasets, which do not change."""
    if not name.strip().startswith(IMAGEFOLDER_PREFIX):
        return None
    return decoding.fingerprint(_find_source(name.strip(), data_dir, download=False))


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
    "cifar10": _CifarFormat(
        "cifar10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "labels",
        "label_names",
        10,
    ),
    "cifar100": _CifarFormat(
        "cifar100", "cifar-100-python", ("train",), ("test",), "meta", "fine_labels", "fine_label_names", 100
    ),
}


def _find_source(name: str, data_dir: Path, download: bool) -> Source:
    if name in _CIFAR:
        return _find_cifar(_CIFAR[name], data_dir, download)
    if name == "tinyimagenet":
        return _find_tinyimagenet(data_dir)
    if name.startswith(IMAGEFOLDER_PREFIX):
        return _find_imagefolder(name[len(IMAGEFOLDER_PREFIX) :], data_dir)
    raise InputError(
        f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, or {IMAGEFOLDER_PREFIX}<path> "
        f"for a <path>/{{train,test}}/<class>/<image> tree"
    )


def _remedies(data_dir: Path, archive: str | None, official: str) -> str:
    lines = ["To fix it, do one of:"]
    if archive:
        lines.append(
            f"  - run `make data` in the project root, which extracts ../shared/data/{archive} into data/, "
            f"or extract it yourself: tar xzf ../shared/data/{archive} -C {data_dir}"
        )
    lines.append(f"  - put the official dataset in {data_dir}: {official}")
    lines.append("  - set TGKIT_DATA (or pass data_dir=) to a folder that holds it")
    return "\n".join(lines)


def _find_cifar(fmt: _CifarFormat, data_dir: Path, download: bool) -> Source:
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
    official_help = (
        f"the python version from https://www.cs.toronto.edu/~kriz/cifar.html, extracted to {official} "
        f"(load_dataset(..., download=True) does that on a machine with network)"
    )
    raise DatasetNotFound(
        f"{fmt.name} not found. Searched:\n  {official}  (official python version)\n"
        f"  {folders}/{{train,test}}/<class>/  (image folders)\n({tried})\n"
        + _remedies(data_dir, archive, official_help)
    )


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


def _cifar_pickle_source(fmt: _CifarFormat, folder: Path) -> Source:
    """The official python version: pickled dicts with `data` uint8 (N, 3072) and labels.

    Read here in a few lines rather than through torchvision's CIFAR classes, which refuse any file
    whose md5 differs from the official one (a test's small fake, a re-packed copy), and check the
    meta file in a way no subclass can relax. Unpickling can run code: only read files from a source
    you trust, as with torchvision.
    """
    files = [folder / f for f in (*fmt.train_files, *fmt.test_files, fmt.meta_file)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DatasetNotFound(
            f"{folder} is incomplete, missing {', '.join(missing)}; "
            f"delete the folder and extract the official archive again"
        )

    def read(path: Path) -> dict:
        with open(path, "rb") as handle:
            content = pickle.load(handle, encoding="bytes")
        # The official files are Python 2 pickles (bytes keys); accept str keys as well.
        return {k.decode() if isinstance(k, bytes) else k: v for k, v in content.items()}

    def read_split(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [read(folder / n) for n in names]
        x = np.concatenate([np.asarray(p["data"], dtype=np.uint8) for p in parts])
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
            raise InputError(f"{folder}: 'data' must have shape (N, 3072), got {x.shape}")
        y = np.concatenate([np.asarray(p[fmt.label_key], dtype=np.int64) for p in parts])
        # Each row holds the 1024 red values of the 32x32 image row by row, then the green, then the blue.
        return torch.from_numpy(x.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(y)

    def decode(progress: bool) -> dict:
        names = read(folder / fmt.meta_file)[fmt.names_key]
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        train_x, train_y = read_split(fmt.train_files)
        test_x, test_y = read_split(fmt.test_files)
        return dict(classes=classes, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)

    return Source(fmt.name, folder, [str(f) for f in files], decode)


def _image_tree_source(label: str, root: Path, expect_classes: int | None = None) -> Source:
    """A <root>/{train,test}/<class>/<image> tree; classes are the sorted folder names of train/."""
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DatasetNotFound(f"{root / split} does not exist; expected {root}/{{train,test}}/<class>/<image>")
    classes = _class_folders(root / "train")
    if expect_classes is not None and len(classes) != expect_classes:
        raise DatasetNotFound(
            f"{root / 'train'} has {len(classes)} class folders, {label} has {expect_classes}; "
            f"is the archive fully extracted?"
        )
    if not classes:
        raise DatasetNotFound(f"{root / 'train'} has no class folders; expected {root}/train/<class>/<image>")
    test_classes = _class_folders(root / "test")
    unknown = sorted(set(test_classes) - set(classes))
    if unknown:
        raise InputError(f"{root / 'test'} has classes that {root / 'train'} lacks: {', '.join(unknown)}")
    listing = {}
    for split in ("train", "test"):
        paths, labels = [], []
        for index, name in enumerate(classes):
            found = _image_files(root / split / name) if (root / split / name).is_dir() else []
            if not found and (split == "train" or (root / split / name).is_dir()):
                raise DatasetNotFound(
                    f"{root / split / name} holds no images ({', '.join(IMAGE_EXTENSIONS)}): a class without "
                    f"images cannot be learned; add its images or remove the folder"
                )
            paths += found
            labels += [index] * len(found)
        if not paths:
            raise DatasetNotFound(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root / split}")
        listing[split] = (paths, labels)
    return _listed_source(label, root, classes, listing, extra_files=[])


def _class_folders(split: Path) -> list[str]:
    """The sorted names of the (not hidden) folders in `split`; one that cannot be read is refused by name."""
    names = []
    try:
        for entry in os.scandir(split):
            try:
                if entry.is_dir() and not entry.name.startswith("."):
                    names.append(entry.name)
            except OSError as error:
                raise InputError(_unreadable(entry.path, error)) from None
    except OSError as error:
        raise InputError(_unreadable(split, error)) from None
    return sorted(names)


def _find_imagefolder(path: str, data_dir: Path) -> Source:
    candidates = [Path(path).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(data_dir / path)  # a relative path may also mean a folder in data_dir
    for root in candidates:
        if root.is_dir():
            return _image_tree_source(f"imagefolder-{root.resolve().name}", root.resolve())
    searched = ", ".join(str(c.resolve()) for c in candidates)
    raise DatasetNotFound(
        f"image folder {path!r} not found. Searched: {searched}; expected <path>/{{train,test}}/<class>/<image>"
    )


def _find_tinyimagenet(data_dir: Path) -> Source:
    root = data_dir / "tiny-imagenet-200"
    needed = [
        root / "wnids.txt",
        root / "words.txt",
        root / "train",
        root / "val" / "images",
        root / "val" / "val_annotations.txt",
    ]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise DatasetNotFound(
            f"tinyimagenet not found. Searched {root}: "
            + (f"missing {', '.join(missing)}" if root.is_dir() else "no such folder")
            + "\n"
            "(tgkit downloads only CIFAR)\n"
            + _remedies(
                data_dir,
                "tiny-imagenet-200-32px.tar.gz",
                f"unzip http://cs231n.stanford.edu/tiny-imagenet-200.zip into {data_dir}",
            )
        )
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


def _listed_source(label: str, root: Path, classes: list[str], listing: dict, extra_files: list[str]) -> Source:
    def decode(progress: bool) -> dict:
        decoded = {"classes": classes}
        for split, (paths, labels) in listing.items():
            decoded[f"{split}_x"] = decoding.decode_images(paths, desc=f"decoding {label} {split}", progress=progress)
            decoded[f"{split}_y"] = torch.tensor(labels, dtype=torch.int64)
        # a colour image in one split makes every split colour
        decoded["train_x"], decoded["test_x"] = decoding.as_many_channels(decoded["train_x"], decoded["test_x"])
        return decoded

    files = listing["train"][0] + listing["test"][0] + extra_files
    return Source(label, root, files, decode)


def _image_files(folder: str | Path, _visiting: frozenset = frozenset()) -> list[str]:
    """Image files under `folder` (recursively), sorted by name, skipping hidden ones.

    os.scandir rather than pathlib: listing 100,000 files is a visible part of a warm load. A symbolic
    link that leads back to a folder being listed (a loop), or to no file, is refused by name.
    """
    try:
        status = os.stat(folder)
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        raise InputError(_unreadable(folder, error)) from None
    here = (status.st_dev, status.st_ino)
    if here in _visiting:
        raise InputError(
            f"the image folder loops: {folder} is {os.path.realpath(folder)} again, through a symbolic link; "
            f"remove that link (or copy the images it was meant to add) and load again"
        )
    found = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            # a link followed: a folder it leads to, or the file (a loop or no target raises OSError)
            is_dir = entry.is_dir()
            if not is_dir and entry.is_symlink() and entry.name.lower().endswith(IMAGE_EXTENSIONS):
                os.stat(entry.path)
        except OSError as error:
            raise InputError(_unreadable(entry.path, error)) from None
        if is_dir:
            found += _image_files(entry.path, _visiting | {here})
        elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
            found.append(entry.path)
    return found


def _unreadable(path: str | Path, error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return (
            f"{path}: its symbolic links loop ({error.strerror}); remove the link that points back to itself "
            f"or to a folder above it, and load again"
        )
    if os.path.islink(path) and not os.path.exists(path):
        return f"{path} is a symbolic link to nothing ({os.readlink(path)}); remove it or point it at an image"
    return f"cannot read {path} ({error.strerror}); make it readable, or move it out of the image folder"


def _load_digits() -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are 0..16; x16 spreads them over 0..255 (16 * 16 = 256 clips to 255).
    x = torch.from_numpy(np.clip(digits.images * 16, 0, 255).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(digits.target.astype(np.int64))
    test, train = stratified_split(y, _DIGITS_TEST_FRACTION, _DIGITS_TEST_SEED)
    return dict(classes=[str(c) for c in range(10)], train_x=x[train], train_y=y[train], test_x=x[test], test_y=y[test])
