"""`tgkit.bench.throughput`: the benchmark runs end to end on the CPU and reports every setting and
measurement, in one row and in the printed report; how fast is never asserted, only that each rate is
a positive finite number, and the masks it enforces are global magnitude masks at the sparsity asked."""

import math

import pytest
import torch

from conftest import BENCH_MEASUREMENTS, BENCH_SETTINGS
from tgkit.bench import throughput as bench
from tgkit.hparams import BenchConfig
from tgkit.util import device

TINY = dict(
    arch="resnet10",
    width=4,
    teacher_arch="resnet10",
    teacher_width=4,
    batch_size=8,
    steps=2,
    warmup=1,
    rounds=2,
    device="cpu",
    train_images=32,
    eval_images=16,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # tensors this small run slower on several threads


@pytest.fixture(scope="module")
def tiny_table():
    return bench.run_bench(BenchConfig(**TINY))


def test_one_row_with_every_setting_and_measurement(tiny_table):
    assert list(tiny_table.columns) == BENCH_SETTINGS + BENCH_MEASUREMENTS
    assert len(tiny_table) == 1
    row = tiny_table.iloc[0]
    assert row["device"].startswith("cpu")
    assert row["torch"] == torch.__version__
    assert row["student"] == "resnet10 width 4"
    assert row["batch_size"] == 8
    # as in train.fit: bf16 autocast with channels_last where the CPU has bf16 units, compile on CUDA only
    bf16 = device.native_bf16("cpu")
    assert (row["autocast"], row["channels_last"], row["compile"]) == (("bf16", "on") if bf16 else ("fp32", "off")) + (
        "off",
    )
    assert row["score_images"] == TINY["steps"] * TINY["batch_size"]
    for column in BENCH_MEASUREMENTS:
        assert math.isfinite(row[column]), column
    for column in (
        "teacher_img_s",
        "dense_img_s",
        "masked_img_s",
        "kd_img_s",
        "score_s_per_50k",
        "eval_img_s",
        "teacher_eval_img_s",
    ):
        assert row[column] > 0, column


def test_report_has_a_line_per_entry(tiny_table):
    lines = bench.format_report(tiny_table).splitlines()
    assert [line.split("  ")[0].strip() for line in lines] == [
        "device",
        "torch",
        "student / teacher",
        "batch size",
        "autocast",
        "channels_last",
        "torch.compile",
        "cudnn.benchmark",
        "timed",
        "FLOP per image",
        "train teacher",
        "train dense",
        "train masked",
        "masked overhead",
        "MaskEnforcer alone",
        "retrain with KD",
        "scoring",
        "eval",
        "warm-up",
    ]
    assert any(line.startswith("scoring") and "from 16 measured" in line for line in lines)


def test_flops_per_image_count_a_known_network_by_hand():
    """conv 1->2, 3x3, on 4x4: 32 outputs x 9 multiply-adds; linear 32->3: 3 x 32. Forward: 2 x (288 + 96).
    Backward: the conv's weight gradient (its input needs none) as much as its forward, the linear's
    input and weight gradients twice its forward."""
    network = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1, bias=False), torch.nn.Flatten(), torch.nn.Linear(32, 3, bias=False)
    )
    assert bench.flops_per_image(network, (1, 4, 4), backward=False) == 2 * (288 + 96)
    assert bench.flops_per_image(network, (1, 4, 4), backward=True) == 2 * (288 + 96) + 2 * (288 + 2 * 96)


def test_gflop_s_is_images_per_second_times_the_operations_of_an_image(tiny_table):
    row = tiny_table.iloc[0]
    student = bench.build_model("resnet10", 10, width=4)
    per_image = bench.flops_per_image(student, (3, 32, 32), backward=True)
    assert row["student_gflop_per_image"] == pytest.approx(per_image / 1e9)
    assert row["dense_gflop_s"] == pytest.approx(row["dense_img_s"] * per_image / 1e9)
    assert row["kd_gflop_s"] > row["kd_img_s"] * per_image / 1e9  # plus the teacher's forward


def test_defaults_follow_the_device():
    cpu = bench.resolved(BenchConfig(device="cpu"))
    assert (cpu.width, cpu.teacher_arch) == (16, "resnet18")
    cuda = bench.resolved(BenchConfig(device="cuda", width=32))  # resolving touches no GPU
    assert (cuda.width, cuda.teacher_arch, cuda.teacher_width, cuda.batch_size) == (32, "resnet50", 64, 512)


def test_the_masks_enforced_are_global_magnitude_masks_at_the_sparsity_asked():
    model = bench.build_model("resnet10", 10, width=4)
    enforcer = bench.masked_enforcer(model, 0.9)
    kept = sum(int(keep.sum()) for keep in enforcer.masks)
    total = sum(keep.numel() for keep in enforcer.masks)
    assert 1 - kept / total == pytest.approx(0.9, abs=1e-3)
    for parameter, keep in zip(enforcer.parameters, enforcer.masks):
        assert torch.count_nonzero(parameter.detach()[keep == 0]) == 0, "the student must be pruned"
