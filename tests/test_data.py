"""Tests of tgkit.data: splits, batches and augmentation, every on-disk format, the cache, the errors.

Everything but the `data`-marked test runs on data made here (scikit-learn's digits, tiny trees of
images and fake CIFAR pickles in tmp_path), in seconds.
"""

import pickle
import socket
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import require_dataset
from tgkit import data
from tgkit.data import Augment, Batches, DatasetNotFound, ImageData, decoding, load_dataset, sources


def save_image(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def make_tree(root, sizes=None, per_class=3, classes=("cat", "ant", "bee"), size=6):
    """<root>/{train,test}/<class>/<k>.png with random RGB pixels; returns {path: pixels}."""
    rng = np.random.default_rng(0)
    pixels = {}
    for split, count in (("train", per_class), ("test", 2)):
        for name in classes:
            for k in range(count):
                image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                path = root / split / name / f"{k}.png"
                save_image(path, image)
                pixels[path] = image
    return pixels


def tiny_batches(n=10, **kwargs):
    images = torch.arange(n * 3 * 4 * 4, dtype=torch.int64).remainder(250).add(1).to(torch.uint8).view(n, 3, 4, 4)
    return images, Batches(images, torch.arange(n), (0.0,) * 3, (1.0,) * 3, **kwargs)


# ----------------------------------------------------------------------------------------------
# digits and splits


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


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="cifar10.*imagefolder:<path>"):
        load_dataset("mnist")


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


# ----------------------------------------------------------------------------------------------
# Batches


def test_batches_normalise_with_mean_and_std():
    images = torch.empty(4, 2, 3, 3, dtype=torch.uint8)
    images[:, 0], images[:, 1] = 51, 102  # 0.2 and 0.4 in [0, 1] units
    batches = Batches(images, torch.zeros(4, dtype=torch.int64), (0.1, 0.2), (0.5, 0.25), 4)
    ((x, y),) = list(batches)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x[:, 0], torch.tensor(0.2)) and torch.allclose(x[:, 1], torch.tensor(0.8))


def test_batches_without_shuffle_or_augment_are_the_split_in_order():
    images, batches = tiny_batches(10, batch_size=4)
    for _ in range(2):  # the same every epoch
        xs, ys = zip(*batches)
        assert torch.allclose(torch.cat(xs), images.float() / 255) and torch.equal(torch.cat(ys), torch.arange(10))


def test_len_and_drop_last():
    _, batches = tiny_batches(10, batch_size=4)
    assert len(batches) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    _, batches = tiny_batches(10, batch_size=4, drop_last=True)
    assert len(batches) == 2 and [len(y) for _, y in batches] == [4, 4]
    with pytest.raises(ValueError, match="drop_last"):
        tiny_batches(3, batch_size=4, drop_last=True)


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


def test_shuffle_is_a_reproducible_permutation_that_changes_every_epoch():
    _, batches = tiny_batches(50, batch_size=8, shuffle=True, seed=1)
    first = torch.cat([y for _, y in batches])
    second = torch.cat([y for _, y in batches])
    assert sorted(first.tolist()) == list(range(50)) and sorted(second.tolist()) == list(range(50))
    assert not torch.equal(first, second)
    _, rerun = tiny_batches(50, batch_size=8, shuffle=True, seed=1)
    assert torch.equal(torch.cat([y for _, y in rerun]), first)
    rerun.repeats = 1  # resuming at the second pass continues the same sequence
    assert torch.equal(torch.cat([y for _, y in rerun]), second)
    _, other = tiny_batches(50, batch_size=8, shuffle=True, seed=2)
    assert not torch.equal(torch.cat([y for _, y in other]), first)


def test_shuffled_images_stay_with_their_labels():
    images, batches = tiny_batches(20, batch_size=6, shuffle=True)
    for x, y in batches:
        assert torch.allclose(x, images[y].float() / 255)


def test_crop_with_padding_zero_is_identity():
    images = torch.randint(0, 256, (6, 3, 5, 5), dtype=torch.uint8)
    assert torch.equal(data.random_crop(images, 0, torch.zeros(6, 2, dtype=torch.int64)), images)
    batches = Batches(images, torch.arange(6), (0.0,) * 3, (1.0,) * 3, 6, augment=Augment(0, False))
    ((x, _),) = list(batches)
    assert torch.allclose(x, images.float() / 255)


def test_crop_output_is_a_shifted_window_of_the_zero_padded_input():
    p, n = 2, 64
    images = torch.randint(1, 256, (n, 3, 6, 7), dtype=torch.uint8)  # no zeros: zeros come from padding only
    batches = Batches(images, torch.arange(n), (0.0,) * 3, (1.0,) * 3, 16, augment=Augment(p, False))
    padded = torch.nn.functional.pad(images, (p, p, p, p))
    shifts = set()
    for x, y in batches:
        assert x.shape == (len(y), 3, 6, 7)
        for out, i in zip((x * 255).round().to(torch.uint8), y.tolist()):
            windows = [
                (dy, dx)
                for dy in range(2 * p + 1)
                for dx in range(2 * p + 1)
                if torch.equal(out, padded[i, :, dy : dy + 6, dx : dx + 7])
            ]
            assert windows, f"image {i} is not a window of its padded input"
            shifts.add(windows[0])
    assert len(shifts) > 10  # offsets do vary over the whole 0..2p range


def test_flip_mirrors_about_half_the_images():
    images = torch.randint(0, 256, (200, 3, 4, 5), dtype=torch.uint8)
    batches = Batches(images, torch.arange(200), (0.0,) * 3, (1.0,) * 3, 50, augment=Augment(0, True))
    flipped = 0
    for x, y in batches:
        for out, i in zip((x * 255).round().to(torch.uint8), y.tolist()):
            same, mirrored = torch.equal(out, images[i]), torch.equal(out, images[i].flip(-1))
            assert same or mirrored
            flipped += mirrored and not same
    assert 60 < flipped < 140


def test_augmentation_is_reproducible_by_seed():
    images = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)

    def epoch(seed):
        batches = Batches(
            images, torch.arange(32), (0.5,) * 3, (0.25,) * 3, 8, shuffle=True, augment=Augment(4, True), seed=seed
        )
        return torch.cat([x for x, _ in batches])

    assert torch.equal(epoch(0), epoch(0)) and not torch.equal(epoch(0), epoch(1))


def test_channels_last_layout():
    _, batches = tiny_batches(4, batch_size=4, channels_last=True)
    ((x, _),) = list(batches)
    assert x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_batches_on_gpu_match_the_cpu():
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    kwargs = dict(shuffle=True, augment=Augment(2, True), seed=5)
    cpu = Batches(images, torch.arange(40), (0.5,) * 3, (0.25,) * 3, 16, **kwargs)
    gpu = Batches(images, torch.arange(40), (0.5,) * 3, (0.25,) * 3, 16, device="cuda", **kwargs)
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert xg.is_cuda and yg.is_cuda
        assert torch.equal(yc, yg.cpu()) and torch.allclose(xc, xg.cpu())


# ----------------------------------------------------------------------------------------------
# on-disk formats


def test_imagefolder_tree_round_trip(tmp_path):
    pixels = make_tree(tmp_path / "tree")
    d = load_dataset(f"imagefolder:{tmp_path / 'tree'}", tmp_path / "data", val_fraction=0.0, progress=False)
    assert d.classes == ["ant", "bee", "cat"] and d.image_shape == (3, 6, 6)
    assert len(d.train_y) == 9 and len(d.test_y) == 6
    for split, x, y in (("train", d.train_x, d.train_y), ("test", d.test_x, d.test_y)):
        k = 0
        for name in d.classes:  # files in sorted order within sorted classes
            for path in sorted((tmp_path / "tree" / split / name).iterdir()):
                assert d.classes[int(y[k])] == name
                assert torch.equal(x[k], torch.from_numpy(pixels[path]).permute(2, 0, 1))
                k += 1


def test_imagefolder_converts_grayscale_to_rgb(tmp_path):
    make_tree(tmp_path / "tree")
    gray = np.full((6, 6), 77, dtype=np.uint8)
    save_image(tmp_path / "tree" / "test" / "ant" / "9.png", gray)
    d = load_dataset(f"imagefolder:{tmp_path / 'tree'}", tmp_path / "data", progress=False)
    assert torch.all(d.test_x[2] == 77)  # ant's test images: 0.png, 1.png, 9.png


def test_imagefolder_with_mixed_sizes_suggests_resizing(tmp_path):
    make_tree(tmp_path / "tree")
    save_image(tmp_path / "tree" / "train" / "bee" / "big.png", np.zeros((9, 9, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="resize"):
        load_dataset(f"imagefolder:{tmp_path / 'tree'}", tmp_path / "data", progress=False)


def test_imagefolder_missing_folder(tmp_path):
    with pytest.raises(DatasetNotFound, match="nowhere"):
        load_dataset("imagefolder:nowhere", tmp_path)


def test_parallel_decoding_matches_the_plain_loop(tmp_path, monkeypatch):
    pixels = make_tree(tmp_path / "tree", per_class=5)
    paths = sorted(str(p) for p in pixels)
    serial = decoding.decode_images(paths, desc="", progress=False)
    monkeypatch.setattr(decoding, "DECODE_CHUNK", 4)  # several chunks: the process pool does the work
    assert torch.equal(decoding.decode_images(paths, desc="", progress=False), serial)


def test_cache_is_written_once_and_reused(tmp_path, monkeypatch):
    make_tree(tmp_path / "tree")
    name = f"imagefolder:{tmp_path / 'tree'}"
    first = load_dataset(name, tmp_path / "data", progress=False)
    cached = list((tmp_path / "data" / "cache").iterdir())
    assert len(cached) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(decoding, "decode_images", no_decoding)
    second = load_dataset(name, tmp_path / "data", progress=False)
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    assert list((tmp_path / "data" / "cache").iterdir()) == cached
    # a new image changes the source, so the cache no longer applies
    save_image(tmp_path / "tree" / "train" / "ant" / "new.png", np.zeros((6, 6, 3), dtype=np.uint8))
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(name, tmp_path / "data", progress=False)


def test_corrupt_cache_is_decoded_again_with_a_warning(tmp_path):
    make_tree(tmp_path / "tree")
    name = f"imagefolder:{tmp_path / 'tree'}"
    first = load_dataset(name, tmp_path / "data", progress=False)
    (cache,) = (tmp_path / "data" / "cache").iterdir()
    cache.write_bytes(b"not a tensor file")
    with pytest.warns(UserWarning, match="decoding again"):
        again = load_dataset(name, tmp_path / "data", progress=False)
    assert torch.equal(first.train_x, again.train_x)
    assert load_dataset(name, tmp_path / "data", progress=False).num_classes == 3  # rewritten, readable


def write_fake_cifar(folder, files, label_key, meta_file, names_key, num_classes, per_file):
    """Official-format CIFAR pickles (bytes keys, like the Python 2 originals); returns their contents."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    contents = {}
    for name in files:
        labels = [k % num_classes for k in range(per_file)]
        batch = {b"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8), label_key.encode(): labels}
        (folder / name).write_bytes(pickle.dumps(batch))
        contents[name] = batch
    names = [f"class{c:03d}".encode() for c in range(num_classes)]
    (folder / meta_file).write_bytes(pickle.dumps({names_key.encode(): names}))
    return contents


def test_fake_cifar100_official_format_round_trip(tmp_path):
    contents = write_fake_cifar(
        tmp_path / "cifar-100-python", ["train", "test"], "fine_labels", "meta", "fine_label_names", 100, per_file=200
    )
    d = load_dataset("cifar100", tmp_path, val_fraction=0.5, download=False, progress=False)
    assert d.num_classes == 100 and d.classes[:2] == ["class000", "class001"] and d.image_shape == (3, 32, 32)
    assert len(d.train_y) == len(d.val_y) == 100 and len(d.test_y) == 200
    # the test split keeps its order: row k of the pickle is image k, red plane, then green, then blue
    rows, labels = contents["test"][b"data"], contents["test"][b"fine_labels"]
    assert torch.equal(d.test_y, torch.tensor(labels))
    assert torch.equal(d.test_x[5, 1].flatten(), torch.from_numpy(rows[5, 1024:2048]))
    assert torch.equal(d.test_x[5].flatten(), torch.from_numpy(rows[5]))


def test_fake_cifar10_official_format(tmp_path):
    files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    write_fake_cifar(tmp_path / "cifar-10-batches-py", files, "labels", "batches.meta", "label_names", 10, per_file=20)
    d = load_dataset("cifar10", tmp_path, val_fraction=0.1, download=False, progress=False)
    assert d.num_classes == 10 and len(d.train_y) == 90 and len(d.val_y) == 10 and len(d.test_y) == 20
    assert d.augment == Augment(4, True)


def test_missing_cifar10_names_the_folders_searched(tmp_path):
    with pytest.raises(DatasetNotFound) as error:
        load_dataset("cifar10", tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in message and str(tmp_path / "cifar10") in message
    assert "make data" in message and "TGKIT_DATA" in message


def test_download_without_network_fails_within_seconds(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    start = time.monotonic()
    with pytest.raises(DatasetNotFound, match="download failed"):
        load_dataset("cifar10", tmp_path, download=True)
    assert time.monotonic() - start < 5


def test_download_with_a_hanging_name_lookup_gives_up(tmp_path, monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(3)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    monkeypatch.setattr(sources, "_NETWORK_TIMEOUT_S", 0.2)
    start = time.monotonic()
    with pytest.raises(DatasetNotFound, match="no answer within"):
        load_dataset("cifar100", tmp_path, download=True)
    assert time.monotonic() - start < 2


def test_fake_tinyimagenet_layout(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]  # not sorted: the class order is the sorted one
    root.mkdir()
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("n00\tentity\nn01\tgoldfish, Carassius auratus\nn02\tsalamander\n")
    rng = np.random.default_rng(2)
    for wnid in wnids:
        for k in range(2):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            save_image(root / "train" / wnid / "images" / f"{wnid}_{k}.JPEG", pixels)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    save_image(root / "val" / "images" / "val_0.JPEG", np.full((8, 8), 200, dtype=np.uint8))  # grayscale
    save_image(root / "val" / "images" / "val_1.JPEG", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn02\t0\t0\t5\t5\nval_1.JPEG\tn01\t1\t1\t4\t4\n")
    d = load_dataset("tinyimagenet", tmp_path, val_fraction=0.0, progress=False)
    assert d.classes == ["goldfish", "salamander"] and d.image_shape == (3, 8, 8)
    assert d.test_y.tolist() == [1, 0] and d.train_y.tolist() == [0, 0, 1, 1]
    assert (d.test_x[0].int() - 200).abs().max() <= 2  # grayscale became three equal channels


def test_missing_tinyimagenet_names_the_folder(tmp_path):
    with pytest.raises(DatasetNotFound, match="tiny-imagenet-200"):
        load_dataset("tinyimagenet", tmp_path)


def test_image_data_checks_its_tensors():
    d = load_dataset("digits")
    with pytest.raises(ValueError, match="uint8"):
        ImageData(d.name, d.classes, d.train_x.float(), d.train_y, d.val_x, d.val_y, d.test_x, d.test_y, d.mean, d.std)
    assert "digits" in repr(d) and "train" in repr(d)


# ----------------------------------------------------------------------------------------------
# real data (skipped unless data/cifar10 exists; TGKIT_REQUIRE_DATA=1 turns the skip into a failure)


@pytest.mark.data
def test_real_cifar10_subset():
    d = require_dataset("cifar10", train_subset=2000, test_subset=1000)
    assert d.num_classes == 10 and d.image_shape == (3, 32, 32)
    assert d.classes[0] == "airplane" and d.classes[-1] == "truck"
    assert torch.bincount(d.train_y, minlength=10).tolist() == [180] * 10
    assert torch.bincount(d.val_y, minlength=10).tolist() == [20] * 10
    assert torch.bincount(d.test_y, minlength=10).tolist() == [100] * 10
    assert all(0.3 < m < 0.6 for m in d.mean) and all(0.15 < s < 0.35 for s in d.std)


def test_an_empty_class_folder_is_refused_by_name(tmp_path):
    make_tree(tmp_path / "tree")
    (tmp_path / "tree" / "train" / "dog").mkdir()
    with pytest.raises(DatasetNotFound, match=r"train/dog holds no images"):
        load_dataset(f"imagefolder:{tmp_path / 'tree'}", tmp_path / "data", progress=False)


def test_a_grayscale_set_keeps_one_channel(tmp_path):
    rng = np.random.default_rng(1)
    for split, count in (("train", 4), ("test", 2)):
        for name in ("a", "b"):
            for k in range(count):
                save_image(tmp_path / "gray" / split / name / f"{k}.png", rng.integers(0, 256, (5, 5), dtype=np.uint8))
    d = load_dataset(f"imagefolder:{tmp_path / 'gray'}", tmp_path / "data", val_fraction=0.0, progress=False)
    assert d.image_shape == (1, 5, 5) and len(d.mean) == 1
    first = np.array(Image.open(tmp_path / "gray" / "train" / "a" / "0.png"))
    assert torch.equal(d.train_x[0, 0], torch.from_numpy(first))
    # one colour image makes the whole set colour, every split alike (TinyImageNet's case, the other way round)
    save_image(tmp_path / "gray" / "test" / "b" / "9.png", rng.integers(0, 256, (5, 5, 3), dtype=np.uint8))
    mixed = load_dataset(f"imagefolder:{tmp_path / 'gray'}", tmp_path / "data", val_fraction=0.0, progress=False)
    assert mixed.image_shape == (3, 5, 5)
    assert torch.equal(mixed.train_x[0], torch.from_numpy(first).expand(3, 5, 5))
