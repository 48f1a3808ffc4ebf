"""Datasets by name, decoded once to uint8 tensors, and fast mini-batches with augmentation.

`load_dataset(name)` returns an `ImageData`: every split as one uint8 tensor of shape (N, C, H, W)
plus int64 labels, the class names, and the per-channel mean and std of the training images.

    data = load_dataset("cifar10", train_subset=5000)
    for x, y in data.batches("train", 128, device="cuda"):   # one epoch, augmented on the GPU
        ...

    datasets    `ImageData` and `load_dataset`: the splits of one dataset in memory
    splits      seeded, stratified subsets and the validation split
    batches     `Batches` (augmentation on the device) and `epoch_seed`, the one rule seeding every epoch
    loaders     `Loaders`: your own DataLoaders (or lists of batches) for training, in the same shape
    sources     where each dataset is found (CIFAR, TinyImageNet, image folders, digits), and how it is read
    decoding    image files decoded to uint8 tensors in parallel, and the cache that makes it happen once
"""

from tgkit.data.batches import Augment, Batches, epoch_seed, random_crop, random_flip
from tgkit.data.datasets import SPLITS, ImageData, channel_stats, load_dataset
from tgkit.data.loaders import Loaders
from tgkit.data.sources import DATASETS, IMAGEFOLDER_PREFIX, DatasetNotFound, content_fingerprint

__all__ = [
    "DATASETS",
    "IMAGEFOLDER_PREFIX",
    "SPLITS",
    "Augment",
    "Batches",
    "DatasetNotFound",
    "ImageData",
    "Loaders",
    "channel_stats",
    "content_fingerprint",
    "epoch_seed",
    "load_dataset",
    "random_crop",
    "random_flip",
]
