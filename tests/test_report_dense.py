"""`tgkit.report.dense`: notebook 01's tables of the dense networks (their history per epoch, their
final accuracies) and the learning curves drawn from them, on results made by hand: nothing trains."""

import matplotlib
import pytest
from torch import nn

from tgkit import models
from tgkit.hparams import profile as make_profile
from tgkit.report import dense, palette

matplotlib.use("Agg")  # no display needed


def fake_result(model: nn.Module, epochs: int, kd: float) -> dict:
    """Loss 2 / epoch (+ kd); accuracy from 0.5 (training) and 0.6 (validation), 0.04 and 0.03 more each epoch."""
    history = [
        {
            "epoch": e + 1,
            "lr": 0.1,
            "loss": 2.0 / (e + 1) + kd,
            "ce": 2.0 / (e + 1),
            "kd": kd,
            "train_accuracy": 0.5 + 0.04 * e,
            "val_accuracy": 0.6 + 0.03 * e,
            "seconds": 1.0,
        }
        for e in range(epochs)
    ]
    return {"model": model, "history": history, "test_accuracy": 0.7, "seconds": 90.0, "cached": True}


def teacher_and_student() -> tuple[dict, dict]:
    """A teacher trained 3 epochs without KD, a student trained 2 epochs with a KD term of 0.1."""
    teacher = fake_result(models.build_model("resnet10", 10, in_channels=1, width=4), epochs=3, kd=0.0)
    student = fake_result(models.build_model("resnet10", 10, in_channels=1, width=2), epochs=2, kd=0.1)
    return teacher, student


def test_history_and_accuracy_tables():
    config = make_profile("smoke")
    teacher, student = teacher_and_student()
    history = dense.history_table({"teacher": teacher, "dense student": student})
    assert list(history["network"]) == ["teacher"] * 3 + ["dense student"] * 2
    assert history.loc[4, "val_accuracy"] == pytest.approx(0.63)
    accuracies = dense.dense_networks_table(config, teacher=teacher, student=student)
    assert list(accuracies["network"]) == ["teacher", "dense student"]
    assert list(accuracies["epochs"]) == [3, 2]
    assert accuracies.loc[0, "best_val_accuracy"] == pytest.approx(0.66)
    assert accuracies.loc[1, "parameters"] == sum(p.numel() for p in student["model"].parameters())
    assert accuracies.loc[0, "training_minutes"] == pytest.approx(1.5)


def drawn(axes) -> dict[str, tuple[list, list]]:
    """Each line of `axes` by its label: (x values, y values)."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axes.get_lines()}


def test_the_learning_curves_draw_each_networks_loss_and_accuracy_per_epoch():
    teacher, student = teacher_and_student()
    figure = dense.plot_learning_curves(dense.history_table({"teacher": teacher, "dense student": student}))
    loss_axes, accuracy_axes = figure.axes
    assert (loss_axes.get_title(), loss_axes.get_xlabel(), loss_axes.get_ylabel()) == (
        "loss per epoch",
        "epoch",
        "loss",
    )
    assert (accuracy_axes.get_xlabel(), accuracy_axes.get_ylabel()) == ("epoch", "accuracy")
    assert accuracy_axes.get_title() == "best validation accuracy: teacher 66.0%, dense student 63.0%"
    assert accuracy_axes.get_ylim() == (0, 1)
    # the teacher had no KD term: its loss is its cross-entropy, drawn once; the student's CE part is dashed
    losses = drawn(loss_axes)
    assert list(losses) == [
        "teacher: training loss",
        "dense student: training loss",
        "dense student: its cross-entropy part",
    ]
    assert losses["teacher: training loss"][0] == [1, 2, 3]
    assert losses["teacher: training loss"][1] == pytest.approx([2.0, 1.0, 2 / 3])
    assert losses["dense student: training loss"][1] == pytest.approx([2.1, 1.1])
    assert losses["dense student: its cross-entropy part"][1] == pytest.approx([2.0, 1.0])
    accuracies = drawn(accuracy_axes)
    assert list(accuracies) == [
        "teacher: validation",
        "teacher: training",
        "dense student: validation",
        "dense student: training",
    ]
    assert accuracies["teacher: validation"][1] == pytest.approx([0.60, 0.63, 0.66])
    assert accuracies["dense student: training"][1] == pytest.approx([0.50, 0.54])
    styles = {line.get_label(): line.get_linestyle() for axes in figure.axes for line in axes.get_lines()}
    assert styles["dense student: its cross-entropy part"] == styles["teacher: training"] == "--"
    assert styles["teacher: training loss"] == styles["teacher: validation"] == "-"
    # one colour per network, in both panels: the palette's, as in every other figure of the kit
    colours = {line.get_label(): line.get_color() for axes in figure.axes for line in axes.get_lines()}
    assert colours["teacher: training loss"] == colours["teacher: validation"] == palette.color("teacher")
    assert colours["dense student: validation"] == colours["dense student: training"] == palette.color("dense")
    assert palette.color("teacher") != palette.color("dense")
    assert [text.get_text() for text in loss_axes.get_legend().get_texts()] == list(losses)
