"""Mini-batches of uint8 images, augmented on the device, and the one rule that seeds every epoch.

The whole uint8 dataset is moved to the device once, and each mini-batch is augmented there as one
tensor (random crop and horizontal flip), which is far faster than the usual per-image PIL pipeline
with DataLoader workers, and does the same thing: the crop pads with black pixels like torchvision's
`RandomCrop(32, padding=4)`, then the batch is scaled to [0, 1] and normalised.

Randomness. Epoch `epoch` of a stream seeded `seed` shuffles and augments with a generator seeded by
`epoch_seed(seed, epoch)`, and nothing else: `train.fit` reads epoch e of its run as
`batches(..., seed=seed, epoch=e)`, the benchmark likewise. Iterating one `Batches` object again
(the scorer's passes over the training split) reads repeat 1, 2, ... of its epoch: other batches,
as reproducible. A rerun with the same seed sees exactly the same batches, on the CPU or a GPU, and
a run resumed at epoch k continues the same sequence.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tgkit.util.errors import InputError

# Streams of different seeds never share an epoch's generator below this many epochs.
EPOCHS_PER_SEED = 100_003


def epoch_seed(seed: int, epoch: int, repeat: int = 0) -> int:
    """The generator seed of epoch `epoch` of the stream seeded `seed`, read for the `repeat`-th time:
    the pair packed into one integer (distinct for epoch < EPOCHS_PER_SEED) and hashed, with the repeat,
    by numpy's SeedSequence, so that neighbouring seeds, epochs and repeats give unrelated streams."""
    entropy = [seed * EPOCHS_PER_SEED + epoch, repeat]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])


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
            raise InputError(f"Augment.crop_padding must be an integer >= 0, got {self.crop_padding!r}")

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip


class Batches:
    """An iterable of `(images, labels)` mini-batches over uint8 images; each `for` loop is one epoch.

    The uint8 images move to `device` once, here; each batch is then taken by indexing, augmented as
    one tensor (crop and flip, on uint8, so that padding is black), converted to float32, scaled to
    [0, 1] and normalised with `mean` and `std` (per channel, [0, 1] units).

    Randomness (the shuffling order and the augmentation) comes from `epoch_seed(seed, epoch, repeat)`,
    where `repeat` counts the loops over this object (`self.repeats`). Without shuffle and augmentation
    the batches are the split in order, the same every time.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: Augment | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        epoch: int = 0,
        channels_last: bool = False,
        drop_last: bool = False,
    ):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise InputError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(labels) != len(images):
            raise InputError(f"{len(images)} images but {len(labels)} labels")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if drop_last and len(images) < batch_size:
            raise InputError(
                f"drop_last=True with {len(images)} images and batch_size={batch_size} leaves no "
                f"batch at all; lower batch_size or pass drop_last=False"
            )
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise InputError(f"mean and std need {channels} values (one per channel), got {mean} and {std}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment if augment is not None and augment.active else None
        self.seed = seed
        self.channels_last = channels_last
        self.drop_last = drop_last
        self.epoch = epoch
        self.repeats = 0
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
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, self.repeats))
        self.repeats += 1
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
    return padded[
        torch.arange(n, device=device).view(n, 1, 1, 1), torch.arange(c, device=device).view(1, c, 1, 1), rows, cols
    ]


def random_flip(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images of a batch (B, C, H, W) where the bool mask `flip` (B,) is True."""
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
