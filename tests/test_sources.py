"""`tgkit.data.sources`: where each dataset is found and how it is read (ImageFolder trees, the official
CIFAR pickles, TinyImageNet's layout, scikit-learn's digits), on files made in tmp_path with known
pixels; and the errors that name the folders searched, the network that does not answer, the empty class."""

import pickle
import socket
import time

import numpy as np
import pytest
import torch

from conftest import make_tree, save_image
from tgkit.data import Augment, DatasetNotFound, load_dataset, sources
from tgkit.util.errors import InputError


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="cifar10.*imagefolder:<path>"):
        load_dataset("mnist")


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


def test_imagefolder_missing_folder(tmp_path):
    with pytest.raises(DatasetNotFound, match="nowhere"):
        load_dataset("imagefolder:nowhere", tmp_path)


def test_an_empty_class_folder_is_refused_by_name(tmp_path):
    make_tree(tmp_path / "tree")
    (tmp_path / "tree" / "train" / "dog").mkdir()
    with pytest.raises(DatasetNotFound, match=r"train/dog holds no images"):
        load_dataset(f"imagefolder:{tmp_path / 'tree'}", tmp_path / "data", progress=False)


@pytest.mark.parametrize(
    "link, target, message",
    [
        # a folder linking back to a folder above it: the listing went round until ELOOP (OSError)
        (
            "train/ant/up",
            "..",
            r"the image folder loops: .*/train/ant/up/ant is .*/train/ant again, through a "
            r"symbolic link; remove that link",
        ),
        # an image linking to itself: ELOOP as the files were listed
        (
            "train/ant/self.png",
            "self.png",
            r"train/ant/self\.png: its symbolic links loop \(Too many levels of "
            r"symbolic links\); remove the link that points back to itself",
        ),
        ("train/ant/gone.png", "nowhere.png", r"train/ant/gone\.png is a symbolic link to nothing \(nowhere\.png\)"),
    ],
    ids=["folder-loop", "file-loop", "dangling"],
)
def test_a_symlink_loop_in_an_image_folder_is_refused_by_name(tmp_path, link, target, message):
    make_tree(tmp_path / "tree")
    (tmp_path / "tree" / link).symlink_to(target)
    with pytest.raises(InputError, match=message) as refused:
        load_dataset(f"imagefolder:{tmp_path / 'tree'}", tmp_path / "data", progress=False)
    assert "\n" not in str(refused.value)


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
