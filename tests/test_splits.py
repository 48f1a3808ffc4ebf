"""`tgkit.data.splits` through `load_dataset`: stratified, seeded validation splits carved out of the
training split, and stratified subsets, with exact per-class counts on scikit-learn's digits."""

import torch

from tgkit.data import load_dataset


def test_digits_split_sizes_are_stratified():
    d = load_dataset("digits", val_fraction=0.1)
    assert len(d.train_y) + len(d.val_y) + len(d.test_y) == 1797
    totals = torch.bincount(torch.cat([d.train_y, d.val_y, d.test_y]), minlength=10).double()
    for y, fraction in ((d.test_y, 0.2), (d.val_y, 0.8 * 0.1)):
        counts = torch.bincount(y, minlength=10).double()
        assert torch.all((counts - fraction * totals).abs() <= 1.5), counts


def test_same_seed_same_splits_other_seed_other_val_same_test():
    a, b, c = load_dataset("digits", seed=3), load_dataset("digits", seed=3), load_dataset("digits", seed=4)
    for split in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, split), getattr(b, split))
    assert not torch.equal(a.val_x, c.val_x)
    # digits' carved test split is fixed, like an official one, so test numbers compare across seeds
    assert torch.equal(a.test_x, c.test_x)


def test_val_is_carved_out_of_train():
    full = load_dataset("digits", val_fraction=0.0)
    d = load_dataset("digits", val_fraction=0.25)
    assert len(full.val_y) == 0
    assert len(d.train_y) + len(d.val_y) == len(full.train_y)
    merged = torch.cat([d.train_x, d.val_x]).flatten(1)
    assert sorted(map(bytes, merged.numpy())) == sorted(map(bytes, full.train_x.flatten(1).numpy()))


def test_subsets_are_stratified_and_seeded():
    d = load_dataset("digits", train_subset=500, test_subset=100, val_fraction=0.2)
    assert torch.bincount(d.train_y).tolist() == [40] * 10
    assert torch.bincount(d.val_y).tolist() == [10] * 10
    assert torch.bincount(d.test_y).tolist() == [10] * 10
    again = load_dataset("digits", train_subset=500, test_subset=100, val_fraction=0.2)
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.test_x, again.test_x)
