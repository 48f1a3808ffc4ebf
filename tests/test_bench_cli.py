"""`tgkit.bench.cli`, `python -m tgkit.bench`: the flags become the `BenchConfig` measured, the report is
printed and the table written as CSV, and `--plan` measures the planned profile's networks and images.
The measurement itself (`bench.throughput.run_bench`) runs on fewer images than the command line asks
for: the flags are what these tests are about."""

import dataclasses

import pandas as pd
import pytest

from conftest import BENCH_MEASUREMENTS, BENCH_SETTINGS
from tgkit import hparams
from tgkit.bench import cli
from tgkit.bench import throughput as bench
from tgkit.hparams import BenchConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # tensors this small run slower on several threads


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
    assert list(pd.read_csv(csv).columns) == BENCH_SETTINGS + BENCH_MEASUREMENTS


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
    assert "planned seconds: command " in printed and "by kind: fixed " in printed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--arch", "resnet99"], "error: --arch resnet99: unknown architecture; choose one of resnet10, "),
        (["--teacher-arch", "vgg"], "error: --teacher-arch vgg: unknown architecture"),
        (["--steps", "0"], "error: --steps takes a whole number >= 1, got 0"),
        (["--rounds", "0"], "error: --rounds takes a whole number >= 1, got 0"),
        (["--batch-size", "0"], "error: --batch-size takes a whole number >= 1, got 0"),
        (["--width", "0"], "error: --width takes a whole number >= 1, got 0"),
        (["--device", "tpu"], "error: --device tpu: unknown device; use cpu, cuda or cuda:N"),
        (["--plan", "fast", "--plan-dataset", "imagefolder:x"], "error: a plan needs its dataset's size, known for"),
        (["--plan-dataset", "cifar100"], "error: --plan-dataset cifar100 plans nothing without --plan"),
    ],
)
def test_a_bad_flag_is_refused_in_one_line_before_anything_is_measured(argv, message, capsys, monkeypatch):
    def no_measurement(config, say):
        raise AssertionError("measured before the flags were checked")

    monkeypatch.setattr(bench, "run_bench", no_measurement)
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1, error
