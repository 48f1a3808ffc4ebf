"""Your own batches, in the shape the kit's training loop asks of a dataset.

`train.fit`, `retrain.retrain` and `train.evaluate` read a dataset through `ImageData`: every split
resident on the device as uint8 and augmented there, the kit's fast path. A researcher with a torch
`DataLoader` (or any re-iterable of `(x, y)` batches: a list, a generator function's object) wraps the
splits once:

    data = Loaders(train_loader, val=val_loader, test=test_loader)
    student, history = fit(student, data, config)            # the best epoch picked on val_loader
    accuracy = evaluate(student, data, "test")

The loaders keep their own batch size, order, shuffling and augmentation: `TrainConfig.batch_size`
and the kit's seeds and augmentation settings do not apply to them, and `batches` says so in its
signature. Each batch is moved to the training device as it is read. Scoring (`scorer.score`) takes
any such loader directly, without this wrapper.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from tgkit.util.errors import InputError

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


class Loaders:
    """The `train`, `val` (model selection) and optional `test` splits of a user's data, as loaders.

    `num_classes`: the number of classes, when known, so that a network built for another count is
    refused before training; None trusts the network's classifier.
    """

    def __init__(
        self,
        train: Batches,
        *,
        val: Batches,
        test: Batches | None = None,
        num_classes: int | None = None,
        name: str = "your loaders",
    ):
        self.splits = {"train": train, "val": val, "test": test}
        for split, loader in self.splits.items():
            if loader is None and split != "test":
                raise InputError(f"Loaders needs a {split} loader")
            if isinstance(loader, Iterator):
                raise InputError(
                    f"the {split} loader is a one-shot iterator, but training reads it once per epoch: pass a "
                    "DataLoader, a list of (x, y) batches, or another object that can be iterated again"
                )
        self.num_classes, self.name = num_classes, name

    def __repr__(self) -> str:
        given = ", ".join(split for split, loader in self.splits.items() if loader is not None)
        return f"Loaders({self.name!r}: {given})"

    def to(self, device: str | torch.device) -> Loaders:
        """Itself: batches move to the device as they are read (`batches(device=...)`)."""
        return self

    def steps(self, split: str = "train") -> int:
        """The number of batches in one pass over `split`: the one-cycle schedule is laid out over it."""
        try:
            count = len(self._loader(split))
        except TypeError:
            raise InputError(
                f"the {split} loader has no length, which the one-cycle learning-rate schedule and an epoch_fraction "
                "below 1 need: pass a DataLoader or a list, or train with schedule='constant' and epoch_fraction=1"
            ) from None
        if count < 1:
            raise InputError(f"the {split} loader yields no batches")
        return count

    def batches(
        self,
        split: str,
        batch_size: int | None = None,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        epoch: int = 0,
        channels_last: bool = False,
    ) -> _Moved:
        """The loader of `split`, each batch moved to `device` (channels_last if asked). `batch_size`,
        `seed` and `epoch` are the kit's own data's business and are ignored: the loader decides."""
        return _Moved(self._loader(split), torch.device(device), channels_last)

    def _loader(self, split: str) -> Batches:
        if split not in self.splits:
            raise InputError(f"unknown split {split!r}; use one of {', '.join(self.splits)}")
        loader = self.splits[split]
        if loader is None:
            raise InputError(f"{self.name} has no {split} loader: pass Loaders(..., {split}=your_{split}_loader)")
        return loader


class _Moved:
    """A loader whose batches arrive on `device`: iterable again, with the loader's length."""

    def __init__(self, loader: Batches, device: torch.device, channels_last: bool):
        self.loader, self.device = loader, device
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise InputError(
                    f"a loader must yield (inputs, labels) pairs, got a {type(batch).__name__}: map your "
                    "dataset's samples to (image, label) (e.g. a collate_fn or a Dataset returning two items)"
                )
            x, y = batch
            layout = self.memory_format if x.dim() == 4 else torch.preserve_format
            yield x.to(self.device, memory_format=layout, non_blocking=True), y.to(self.device, non_blocking=True)
