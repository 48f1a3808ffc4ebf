"""`tgkit.data.batches`: `Batches` normalises, shuffles reproducibly, crops and flips on the device, and
keeps every image with its label; checked on tiny uint8 tensors whose pixels are known."""

import pytest
import torch

from tgkit import data
from tgkit.data import Augment, Batches


def tiny_batches(n=10, **kwargs):
    images = torch.arange(n * 3 * 4 * 4, dtype=torch.int64).remainder(250).add(1).to(torch.uint8).view(n, 3, 4, 4)
    return images, Batches(images, torch.arange(n), (0.0,) * 3, (1.0,) * 3, **kwargs)


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
