"""The benchmark runs end to end on the CPU and reports every number; how fast is never asserted."""

import dataclasses
import math

import pandas as pd
import pytest
import torch

from tgkit import hparams
from tgkit.bench import cli
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
SETTINGS = [
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
MEASUREMENTS = [
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
]


pytestmark = pytest.mark.usefixtures("one_thread")  # tensors this small run slower on several threads


@pytest.fixture(scope="module")
def tiny_table():
    return bench.run_bench(BenchConfig(**TINY))


def test_one_row_with_every_setting_and_measurement(tiny_table):
    assert list(tiny_table.columns) == SETTINGS + MEASUREMENTS
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
    for column in MEASUREMENTS:
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
    assert [line.split("  ")[0].strip() for line in lines] == [label for label, _ in bench.REPORT_LINES]
    assert any(line.startswith("scoring") and "extrapolated from 16" in line for line in lines)


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


def test_command_line_prints_the_report_and_writes_the_csv(tmp_path, capsys, monkeypatch):
    configs = []

    def small_run_bench(config, say):
        # the CLI's synthetic data is CIFAR-sized; the flags are what this test is about
        configs.append(config)
        return run_bench(dataclasses.replace(config, train_images=64, eval_images=16), say=say)

    run_bench = bench.run_bench
    monkeypatch.setattr(bench, "run_bench", small_run_bench)
    csv = tmp_path / "bench.csv"
    cli.main(
        [
            "--device",
            "cpu",
            "--arch",
            "resnet10",
            "--width",
            "4",
            "--teacher-arch",
            "resnet10",
            "--teacher-width",
            "4",
            "--batch-size",
            "8",
            "--steps",
            "2",
            "--precision",
            "fp32",
            "--csv",
            str(csv),
        ]
    )
    assert configs == [
        BenchConfig(
            arch="resnet10",
            width=4,
            teacher_arch="resnet10",
            teacher_width=4,
            batch_size=8,
            steps=2,
            device="cpu",
            precision="fp32",
        )
    ]
    printed = capsys.readouterr().out
    assert "train masked" in printed and "retrain with KD" in printed and "s per 50,000 images" in printed
    assert list(pd.read_csv(csv).columns) == SETTINGS + MEASUREMENTS


def test_a_plan_measures_the_planned_profiles_networks_and_images(capsys, monkeypatch):
    configs = []

    def small_run_bench(config, say):
        configs.append(config)
        return run_bench(dataclasses.replace(config, train_images=64, eval_images=16, batch_size=8), say=say)

    run_bench = bench.run_bench
    monkeypatch.setattr(bench, "run_bench", small_run_bench)
    cli.main(
        [
            "--device",
            "cpu",
            "--steps",
            "1",
            "--warmup",
            "1",
            "--rounds",
            "1",
            "--plan",
            "smoke",
            "--scale-to-dense-img-s",
            "1000",
        ]
    )
    smoke = hparams.profile("smoke")
    (config,) = configs
    assert (config.arch, config.width, config.teacher_arch, config.teacher_width) == (
        smoke.student.arch,
        smoke.student.width,
        smoke.teacher.arch,
        smoke.teacher.width,
    )
    assert config.image_shape == (1, 8, 8) and config.batch_size == smoke.student_training.batch_size
    printed = capsys.readouterr().out
    assert "PLAN (arithmetic, not a measurement)" in printed and "dense training runs at 1,000 images/s" in printed
    assert "planned seconds per notebook: 01 " in printed
