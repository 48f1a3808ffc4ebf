"""Seeded, stratified picks from a labelled split: subsets for quick runs, the validation split.

Every pick takes the same share of each class, chosen at random by a seed of its own, and returns
sorted indices, so that a subset reads like the original split. Same labels and seed, same indices,
on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from tgkit.util.errors import InputError


def stratified_pick(labels: torch.Tensor, count: Callable[[int], int], seed: int) -> torch.Tensor:
    """Sorted indices of `count(n_c)` images picked at random from each class c (n_c images)."""
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        picked.append(members[torch.randperm(len(members), generator=generator)[: count(len(members))]])
    # Sorting keeps the source order, so that a subset reads like the original split.
    return torch.sort(torch.cat(picked)).values


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(held, rest): `fraction` of each class (rounded) held out at random, and the other indices."""
    held = stratified_pick(labels, lambda n: math.floor(fraction * n + 0.5), seed)
    rest = torch.ones(len(labels), dtype=torch.bool)
    rest[held] = False
    return held, torch.nonzero(rest).flatten()


def stratified_subset(labels: torch.Tensor, size: int, num_classes: int, seed: int, what: str) -> torch.Tensor:
    per_class = size // num_classes if isinstance(size, int) else 0
    available = torch.bincount(labels, minlength=num_classes)
    if per_class < 1:
        raise InputError(f"{what}={size!r}: need an integer >= {num_classes} (at least one image per class)")
    if per_class > int(available.min()):
        largest = num_classes * int(available.min())
        raise InputError(
            f"{what}={size} asks for {per_class} images per class, but the split has "
            f"{len(labels)} images and its smallest class only {int(available.min())}: choose {what} <= "
            f"{largest}, or None for every image (on the command line: --set {what}=none or --set {what}={largest})"
        )
    return stratified_pick(labels, lambda n: per_class, seed)
