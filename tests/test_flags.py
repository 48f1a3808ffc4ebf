"""`tgkit.util.flags`: configuration dataclasses as command-line flags, one `--field-name` per field of a
flat dataclass (the sweep's cluster, the benchmark), with the defaults written once, in `hparams`."""

import argparse
from dataclasses import fields

import pytest

from tgkit import hparams
from tgkit.hparams import BenchConfig, ClusterConfig
from tgkit.study import jobs
from tgkit.util import flags
from tgkit.util.errors import InputError


def parse(cls: type, argv: list[str], base=None):
    parser = argparse.ArgumentParser()
    flags.add_flags(parser, cls)
    return flags.from_flags(base if base is not None else cls(), parser.parse_args(argv))


def test_no_flags_give_the_dataclasses_own_defaults():
    assert parse(ClusterConfig, []) == ClusterConfig()
    assert parse(BenchConfig, []) == BenchConfig()


def test_each_field_is_a_flag_of_its_type():
    cluster = parse(
        ClusterConfig,
        ["--executor", "slurm", "--workers", "3", "--mem-gb", "64", "--partition", "gpu", "--time-min", "30"],
    )
    assert cluster == ClusterConfig(executor="slurm", workers=3, mem_gb=64.0, partition="gpu", time_min=30)
    bench = parse(BenchConfig, ["--no-channels-last", "--compile", "--sparsity", "0.5", "--batch-size", "8"])
    assert (bench.channels_last, bench.compile, bench.sparsity, bench.batch_size) == (False, True, 0.5, 8)


def test_flags_not_given_keep_the_base_they_are_applied_to():
    base = BenchConfig(arch="resnet50", width=64, batch_size=512)
    assert parse(BenchConfig, ["--batch-size", "32"], base) == BenchConfig(arch="resnet50", width=64, batch_size=32)


def test_a_flag_with_choices_refuses_others(capsys):
    with pytest.raises(SystemExit):
        parse(ClusterConfig, ["--executor", "kubernetes"])
    assert "invalid choice: 'kubernetes'" in capsys.readouterr().err


def test_every_flag_has_help_and_the_sweeps_command_line_takes_every_cluster_field():
    assert all(field.metadata.get("help") for field in fields(ClusterConfig))
    assert all(field.metadata.get("help") for field in fields(BenchConfig) if field.name != "image_shape")
    sweep_help = jobs._parser().format_help()
    assert all(flags.flag_name(field.name) in sweep_help for field in fields(ClusterConfig))


# ---- --set on a nested dataclass -----------------------------------------------------------------


def test_any_field_can_be_set_nested_ones_included():
    config = flags.apply_settings(
        hparams.profile("quick"),
        [
            "teacher_training.epochs=3",
            "train_subset=none",
            "kd.temperature=5",
            "sparsities=(0.9, 0.95)",
            "student.arch=resnet18",
            "colt.target_sparsity=0.9",
            "teacher_training.nesterov=false",
        ],
    )
    assert config.teacher_training.epochs == 3 and config.train_subset is None
    assert config.kd.temperature == 5.0 and isinstance(config.kd.temperature, float)
    assert config.sparsities == (0.9, 0.95) and config.student.arch == "resnet18"
    assert config.colt.target_sparsity == 0.9 and config.teacher_training.nesterov is False
    assert config.student_training.epochs == hparams.profile("quick").student_training.epochs  # untouched


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("teacher_training.epoch=3", "has no field 'epoch'"),
        ("teacher_training.epochs=three", "takes int"),
        ("teacher_training.epochs=2.5", "takes int"),
        ("teacher_training.epochs=none", "not none"),
        ("kd=3", "one by one"),
        ("epochs", "write KEY=VALUE"),
        ("colt.prune_rate=1.5", r"prune_rate takes a number in \(0, 1\)"),
        ("sparsities=(0.9, 'x')", "numbers"),
    ],
)
def test_a_bad_setting_names_what_the_field_takes(assignment, message):
    with pytest.raises(InputError, match=message):
        flags.apply_settings(hparams.profile("quick"), [assignment])


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("sparsities=()", r"--set sparsities: sparsities is empty; .* e\.g\. \(0\.9,\) \(it was \(0\.9, 0\.98\)\)"),
        ("student.width=0", r"--set student\.width: width takes a whole number >= 1 .*, got 0 \(it was 16\)"),
        ("teacher_training.epochs=0", r"--set teacher_training\.epochs: epochs takes a whole number >= 1, got 0"),
        ("retraining.batch_size=0", r"--set retraining\.batch_size: batch_size takes a whole number >= 1"),
        ("val_fraction=0", r"--set val_fraction: val_fraction takes a number in \(0, 1\) \(the validation split"),
        ("retraining.optimizer=adamw", r"--set retraining\.optimizer: optimizer takes one of sgd, adam .*'adamw'"),
        ("seeds=()", r"--set seeds: seeds is empty"),
    ],
)
def test_a_value_its_dataclass_refuses_names_the_setting_and_what_it_was(assignment, message):
    """A field's own check (`__post_init__`) reaches the user as one line naming the --set key."""
    with pytest.raises(InputError, match=message) as refused:
        flags.apply_settings(hparams.profile("quick"), [assignment])
    assert "\n" not in str(refused.value)


def test_beta_takes_what_scoring_takes_a_number_or_confidence():
    config = flags.apply_settings(hparams.profile("quick"), ["scoring.kd.beta=confidence", "kd.beta=0.25"])
    assert config.scoring.kd.beta == "confidence" and config.kd.beta == 0.25
    with pytest.raises(InputError, match='beta takes a number in \\[0, 1\\] or "confidence"'):
        flags.apply_settings(hparams.profile("quick"), ["kd.beta=confident"])


@pytest.mark.parametrize(
    "annotation, value, expected",
    [
        ("float | str", 1, 1.0),
        ("float | str", "confidence", "confidence"),
        ("int | None", None, None),
        ("tuple[float, ...]", 0.9, (0.9,)),
        ("tuple[int, ...] | None", (0, 1), (0, 1)),
        ("bool", False, False),
    ],
)
def test_a_union_takes_the_first_alternative_the_value_fits(annotation, value, expected):
    coerced = flags.coerce("x", annotation, value)
    assert coerced == expected and type(coerced) is type(expected)


@pytest.mark.parametrize("annotation, value", [("int", True), ("int", 2.5), ("float", "x"), ("str", 3)])
def test_a_value_of_another_type_is_refused(annotation, value):
    with pytest.raises(InputError, match=f"takes {annotation}"):
        flags.coerce("x", annotation, value)
