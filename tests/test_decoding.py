"""`tgkit.data.decoding`: image files decoded to uint8 tensors (in parallel, as in a plain loop), one
channel count for a whole set, one size or a message that says to resize, and the cache that makes
decoding happen once (and again, with a warning, when it is damaged)."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tree, save_image
from tgkit.data import decoding, load_dataset


def test_parallel_decoding_matches_the_plain_loop(tmp_path, monkeypatch):
    pixels = make_tree(tmp_path / "tree", per_class=5)
    paths = sorted(str(p) for p in pixels)
    serial = decoding.decode_images(paths, desc="", progress=False)
    monkeypatch.setattr(decoding, "DECODE_CHUNK", 4)  # several chunks: the process pool does the work
    assert torch.equal(decoding.decode_images(paths, desc="", progress=False), serial)


def test_imagefolder_converts_grayscale_to_rgb(tmp_path):
    make_tree(tmp_path / "tree")
    gray = np.full((6, 6), 77, dtype=np.uint8)
    save_image(tmp_path / "tree" / "test" / "ant" / "9.png", gray)
    d = load_dataset(f"imagefolder:{tmp_path / 'tree'}", tmp_path / "data", progress=False)
    assert torch.all(d.test_x[2] == 77)  # ant's test images: 0.png, 1.png, 9.png


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


def test_16_bit_grayscale_is_scaled_to_8_bits_not_clipped(tmp_path):
    """A 12-bit sensor image saved as a 16-bit PNG: value / 257, rounded (PIL's "L" conversion clips at 255)."""
    sixteen = np.array([[0, 128, 129, 257], [4095, 32896, 65406, 65535]], dtype=np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    decoded = decoding.decode_chunk([str(tmp_path / "deep.png")])
    assert decoded.shape == (1, 2, 4, 1)
    assert decoded[0, :, :, 0].tolist() == [[0, 0, 1, 1], [16, 128, 254, 255]]


def test_imagefolder_with_mixed_sizes_suggests_resizing(tmp_path):
    make_tree(tmp_path / "tree")
    save_image(tmp_path / "tree" / "train" / "bee" / "big.png", np.zeros((9, 9, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="resize"):
        load_dataset(f"imagefolder:{tmp_path / 'tree'}", tmp_path / "data", progress=False)


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


def test_an_image_moved_to_another_class_folder_is_decoded_again_with_its_new_label(tmp_path):
    """A label fix moves a file: the count and the newest modification time stay, the fingerprint does not."""
    pixels = make_tree(tmp_path / "tree")  # classes ant, bee, cat (sorted), 3 training images each
    name = f"imagefolder:{tmp_path / 'tree'}"
    before = load_dataset(name, tmp_path / "data", val_fraction=0.0, progress=False)
    assert torch.bincount(before.train_y).tolist() == [3, 3, 3]
    moved = tmp_path / "tree" / "train" / "ant" / "9.png"
    (tmp_path / "tree" / "train" / "cat" / "0.png").rename(moved)  # keeps its modification time
    after = load_dataset(name, tmp_path / "data", val_fraction=0.0, progress=False)
    assert torch.bincount(after.train_y).tolist() == [4, 3, 2]
    image = torch.from_numpy(pixels[tmp_path / "tree" / "train" / "cat" / "0.png"]).permute(2, 0, 1)
    assert [int(y) for x, y in zip(after.train_x, after.train_y) if torch.equal(x, image)] == [0], "now an ant"
    assert len(list((tmp_path / "data" / "cache").iterdir())) == 2


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
