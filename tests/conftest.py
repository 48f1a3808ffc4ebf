"""Shared fixtures and helpers: what more than one test file builds, written once.

_deterministic_torch      (autouse) every test starts from torch.manual_seed(0)
one_thread                tiny networks run on one intra-op thread (`pytestmark = pytest.mark.usefixtures(...)`)
digits                    scikit-learn's digits as an ImageData, loaded once per test module
require_dataset(name)     a real dataset, or a skip (a failure under TGKIT_REQUIRE_DATA=1) when absent
tiny_net(seed)            a two-convolution network whose weights are counted by hand (test_masker, test_scorer)
tiny_resnet()             a ResNet-10 of width 2 on one channel: 12 prunable convolutions, residual shortcuts
ranked_scores(model)      distinct scores for every prunable weight, some tensors below all others
pruned_cnn(sparsity)      a digits CNN and a random mask of `sparsity` (test_retrainer, test_train)
pruned_weights(...)       the values of the weights a mask prunes, all in one tensor: zeros while it holds
pruned_resnet10(sparsity) a dense ResNet-10 and its magnitude-pruned copy (test_sparse_conv, test_inference)
fake_clock                (fixture) the clock every Stopwatch reads, moved only by the test: exact seconds
stage_folders(runs_dir)   the stage folders of a run cache (test_cli, test_pipeline)
save_image, make_tree     small image files and ImageFolder trees on disk (test_sources, test_decoding)
pruned_result_calls       (fixture) an Experiment whose pruning and retraining return `known_accuracy`
BENCH_SETTINGS, ...       the benchmark table's columns, settings then measurements (test_throughput, test_bench_cli)
"""

import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tgkit import data, masker, models, scorer
from tgkit.util import device


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _close_figures():
    """Close what a test drew, so that figures do not pile up over a session. pyplot is not imported for
    tests that never drew anything."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks on a CPU shared with other jobs: a second intra-op thread only waits for a core,
    and makes a module of such tests several times slower. `pytestmark = pytest.mark.usefixtures(...)`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 1,797 digits (8x8, one channel, ten classes): the data every training test runs on.
    Module scope: a test module shares one copy, and no test module sees another's."""
    return data.load_dataset("digits", progress=False)


def require_dataset(name: str, **kwargs):
    """Load a real dataset, or skip with the reason (fail when TGKIT_REQUIRE_DATA=1)."""
    try:
        return data.load_dataset(name, download=False, **kwargs)
    except data.DatasetNotFound as missing:
        if os.environ.get("TGKIT_REQUIRE_DATA") == "1":
            pytest.fail(f"TGKIT_REQUIRE_DATA=1 but {name} is missing: {missing}")
        pytest.skip(f"{name} not available: {missing}")


# ---- networks and scores -------------------------------------------------------------------------


def tiny_net(seed: int = 0, classes: int = 3) -> nn.Sequential:
    """conv 108 + bn 4 + conv 144 + bn 4 + linear 4 * classes weights: with 3 classes, 252 prunable
    (the two convolutions, "0.weight" and "3.weight") of 272."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, classes),
    )


def tiny_resnet() -> nn.Module:
    """ResNet-10 of width 2 for one-channel images: 12 prunable convolutions, an identity shortcut
    around layer1.0 and 1x1 convolution shortcuts ("downsample") around layer2.0 to layer4.0."""
    return models.build_model("resnet10", 10, in_channels=1, width=2)


def ranked_scores(model: nn.Module, low: set[str] = frozenset()) -> dict[str, torch.Tensor]:
    """Distinct scores, rising in parameter order; the tensors named in `low` score below every other tensor."""
    params = masker.prunable_parameters(model)
    scores, offset = {}, 0
    for name, param in params.items():
        base = 0.0 if name in low else 1.0
        scores[name] = base + (torch.arange(param.numel(), dtype=torch.float32) + offset).reshape(param.shape) * 1e-5
        offset += param.numel()
    return scores


def pruned_cnn(sparsity: float = 0.8) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The small CNN for digits (width 8) and a seeded random global mask of `sparsity` for it (not applied)."""
    torch.manual_seed(0)
    model = models.build_model("smallcnn", 10, in_channels=1, width=8)
    return model, masker.global_masks(scorer.random_scores(model, seed=0), sparsity)


def pruned_weights(model: nn.Module, masks: dict[str, torch.Tensor]) -> torch.Tensor:
    """The current values of every weight `masks` prunes, in one flat tensor: all zeros while the mask holds."""
    parameters = dict(model.named_parameters())
    return torch.cat([parameters[name].detach()[~keep] for name, keep in masks.items()])


def pruned_resnet10(sparsity: float) -> tuple[nn.Module, nn.Module]:
    """A dense ResNet-10 of width 8 in eval mode (BatchNorm gammas away from 1), and a copy with the global
    magnitude mask of `sparsity` applied."""
    torch.manual_seed(0)
    dense = models.build_model("resnet10", 10, width=8).eval()
    with torch.no_grad():
        for module in dense.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
    scores = {name: p.abs() for name, p in masker.prunable_parameters(dense).items()}
    pruned = models.build_model("resnet10", 10, width=8)
    pruned.load_state_dict(dense.state_dict())
    return dense, masker.apply_masks(pruned.eval(), masker.global_masks(scores, sparsity))


# ---- time ------------------------------------------------------------------------------------------


class FakeClock:
    """`time.perf_counter` for a test: it stands still until the test moves it (`advance`), so that what a
    Stopwatch measures is known exactly. It starts far from 0, as the real counter does."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    """`tgkit.util.device` reads the time as `time.perf_counter()`; its `time` becomes a FakeClock, so that
    every Stopwatch (a run-cache stage's, a report's StageClock) reads the fake time and nothing else
    does (filelock, for one, keeps the real clock for its timeouts)."""
    clock = FakeClock()
    monkeypatch.setattr(device, "time", clock)
    return clock


# ---- files -----------------------------------------------------------------------------------------


def stage_folders(runs_dir) -> list[str]:
    """The stage folders of a run cache, sorted (hidden ones, the locks, left out); [] when there is none."""
    if not runs_dir.exists():
        return []
    return sorted(path.name for path in runs_dir.iterdir() if not path.name.startswith("."))


def save_image(path, pixels) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def make_tree(root, per_class=3, classes=("cat", "ant", "bee"), size=6):
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


# ---- a sweep with known answers --------------------------------------------------------------------

BASE_ACCURACY = {"teacher_guided": 0.90, "magnitude": 0.80, "snip": 0.85, "random": 0.50}


def known_accuracy(criterion: str, sparsity: float, temperature: float | None, seed: int) -> float:
    """Lower with sparsity, 0.01 more per KD temperature step, 0.02 more for seed 1."""
    return BASE_ACCURACY[criterion] - sparsity / 10 + (temperature or 0) / 100 + 0.02 * seed


@pytest.fixture
def pruned_result_calls(monkeypatch):
    """Replace the expensive part of a sweep, pruning and retraining, by `known_accuracy`; the list of
    every call made (test_sweep, test_report_sweep)."""
    from tgkit.study.pipeline import Experiment

    made = []

    def pruned_result(self, criterion, sparsity, *, kd=True, over="all", retraining_temperature=None, seed=None):
        temperature = retraining_temperature
        made.append(
            {
                "criterion": criterion,
                "sparsity": sparsity,
                "kd": kd,
                "over": over,
                "temperature": temperature,
                "seed": seed,
            }
        )
        return {
            "test_accuracy": known_accuracy(criterion, sparsity, temperature if kd else None, seed),
            "sparsity_all": sparsity,
            "sparsity_prunable": sparsity + 0.01,
            "cached": seed == 0,
        }

    monkeypatch.setattr(Experiment, "pruned_result", pruned_result)
    return made


def sweep_experiment(runs_dir, dataset="digits", **overrides):
    """The smoke profile's Experiment at two levels (50%, 90%) and two seeds, unless `overrides` say otherwise."""
    from tgkit import hparams
    from tgkit.study.pipeline import Experiment

    config = hparams.profile("smoke", dataset, **({"sweep": (0.5, 0.9), "seeds": (0, 1)} | overrides))
    return Experiment(config, runs_dir=runs_dir, device="cpu", progress=False)


# ---- the benchmark's table -------------------------------------------------------------------------

BENCH_SETTINGS = [
    "device",
    "torch",
    "student",
    "teacher",
    "batch_size",
    "autocast",
    "channels_last",
    "compile",
    "cudnn_benchmark",
    "sparsity",
    "steps",
    "rounds",
]
BENCH_MEASUREMENTS = [
    "teacher_img_s",
    "dense_img_s",
    "masked_img_s",
    "masked_overhead_pct",
    "enforcer_ms",
    "kd_img_s",
    "warmup_s",
    "score_s_per_50k",
    "score_images",
    "eval_img_s",
    "teacher_eval_img_s",
    "teacher_gflop_s",
    "dense_gflop_s",
    "masked_gflop_s",
    "kd_gflop_s",
    "eval_gflop_s",
    "teacher_eval_gflop_s",
    "score_gflop_s",
    "student_gflop_per_image",
    "teacher_gflop_per_image",
]
