"""`tgkit.data.datasets`: `load_dataset` and the `ImageData` it returns (shapes, dtypes, values, the
arguments it refuses, class subsets, channel statistics, each split's batch defaults), on scikit-learn's
digits; one `data`-marked test on real CIFAR-10 (skipped unless data/cifar10 exists;
TGKIT_REQUIRE_DATA=1 turns the skip into a failure)."""

import numpy as np
import pytest
import torch

from conftest import make_tree, require_dataset
from tgkit import data
from tgkit.data import Augment, ImageData, load_dataset


def test_digits_shapes_dtypes_and_values():
    d = load_dataset("digits")
    assert d.name == "digits" and d.num_classes == 10 and d.classes == [str(c) for c in range(10)]
    assert d.image_shape == (1, 8, 8)
    for x, y in ((d.train_x, d.train_y), (d.val_x, d.val_y), (d.test_x, d.test_y)):
        assert x.dtype == torch.uint8 and y.dtype == torch.int64 and x.shape[1:] == (1, 8, 8)
        assert set(y.unique().tolist()) == set(range(10))
    assert int(d.train_x.max()) == 255 and int(d.train_x.min()) == 0
    # 0..16 scaled by 16: every value is a multiple of 16, or 255 for the clipped 16
    values = set(d.train_x.unique().tolist())
    assert values <= set(range(0, 256, 16)) | {255}
    assert d.augment == Augment(crop_padding=1, flip=False)
    assert len(d.mean) == len(d.std) == 1 and 0 < d.mean[0] < 1 and 0 < d.std[0] < 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(val_fraction=1.0), "val_fraction"),
        (dict(val_fraction=-0.1), "val_fraction"),
        (dict(train_subset=100_000), "train_subset"),
        (dict(train_subset=5), "train_subset"),
        (dict(test_subset=100_000), "test_subset"),
    ],
)
def test_bad_arguments_raise_helpful_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("digits", **kwargs)


def test_unknown_split_raises():
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("digits").batches("training", 8)


def test_subset_classes_reindexes_in_given_order():
    d = load_dataset("digits")
    sub = d.subset_classes([7, 2])
    assert sub.classes == ["7", "2"] and sub.num_classes == 2 and sub.name != d.name
    for split in ("train", "val", "test"):
        x, y = getattr(d, f"{split}_x"), getattr(d, f"{split}_y")
        sx, sy = getattr(sub, f"{split}_x"), getattr(sub, f"{split}_y")
        assert torch.equal(sx[sy == 0], x[y == 7]) and torch.equal(sx[sy == 1], x[y == 2])
        assert set(sy.tolist()) == {0, 1}
    with pytest.raises(ValueError, match="distinct"):
        d.subset_classes([1, 1])
    with pytest.raises(ValueError, match="distinct"):
        d.subset_classes([10])


def test_channel_stats_match_a_float_computation():
    x = torch.randint(0, 256, (20, 3, 5, 5), dtype=torch.uint8)
    mean, std = data.channel_stats(x)
    f = x.double() / 255
    assert np.allclose(mean, f.mean(dim=(0, 2, 3)).numpy())
    assert np.allclose(std, f.std(dim=(0, 2, 3), unbiased=False).numpy())


def test_split_defaults():
    d = load_dataset("digits", train_subset=100)
    train = d.batches("train", 32)
    assert train.shuffle and train.drop_last and train.augment == d.augment
    assert len(train) == len(d.train_y) // 32
    test = d.batches("test", 32)
    assert not test.shuffle and not test.drop_last and test.augment is None
    # a training split smaller than one batch keeps its only batch instead of dropping it
    assert len(d.batches("train", 1000)) == 1
    assert d.batches("train", 32, augment=Augment(2, True)).augment == Augment(2, True)
    assert d.batches("train", 32, augment=False).augment is None


def test_image_data_checks_its_tensors():
    d = load_dataset("digits")
    with pytest.raises(ValueError, match="uint8"):
        ImageData(d.name, d.classes, d.train_x.float(), d.train_y, d.val_x, d.val_y, d.test_x, d.test_y, d.mean, d.std)
    assert "digits" in repr(d) and "train" in repr(d)


# ---- real data ----------------------------------------------------------------------------------


@pytest.mark.data
def test_real_cifar10_subset():
    d = require_dataset("cifar10", train_subset=2000, test_subset=1000)
    assert d.num_classes == 10 and d.image_shape == (3, 32, 32)
    assert d.classes[0] == "airplane" and d.classes[-1] == "truck"
    assert torch.bincount(d.train_y, minlength=10).tolist() == [180] * 10
    assert torch.bincount(d.val_y, minlength=10).tolist() == [20] * 10
    assert torch.bincount(d.test_y, minlength=10).tolist() == [100] * 10
    assert all(0.3 < m < 0.6 for m in d.mean) and all(0.15 < s < 0.35 for s in d.std)


def test_augmentation_settings_reach_the_batches(tmp_path):
    """augment_flip / augment_crop_padding replace the dataset's default (image folders: flip, pad 4): no
    augmentation gives the images as they are, flip alone gives each image as it is or mirrored."""
    make_tree(tmp_path / "tree", per_class=4)  # 12 training images of 6x6
    name = f"imagefolder:{tmp_path / 'tree'}"
    assert load_dataset(name, tmp_path / "data", progress=False).augment == Augment(crop_padding=4, flip=True)
    off = load_dataset(
        name, tmp_path / "data", val_fraction=0.0, progress=False, augment_flip=False, augment_crop_padding=0
    )
    assert off.augment == Augment(crop_padding=0, flip=False)
    raw = next(iter(off.batches("train", 12, shuffle=False, augment=False)))[0]
    assert torch.equal(next(iter(off.batches("train", 12, shuffle=False)))[0], raw)
    flip = load_dataset(name, tmp_path / "data", val_fraction=0.0, progress=False, augment_crop_padding=0)
    assert flip.augment == Augment(crop_padding=0, flip=True)
    x = next(iter(flip.batches("train", 12, shuffle=False)))[0]
    mirrored = [torch.equal(a, b.flip(-1)) and not torch.equal(a, b) for a, b in zip(x, raw)]
    assert all(torch.equal(a, b) or m for a, b, m in zip(x, raw, mirrored)) and 0 < sum(mirrored) < 12
