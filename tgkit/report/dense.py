"""The dense networks of notebook 01: how each learned (loss and accuracy per epoch) and where it ended.

history_table(results)                  one row per network and epoch
plot_learning_curves(history)           loss (left) and accuracy (right) per epoch
dense_networks_table(config, teacher=, student=)   one row per dense network: size, epochs, accuracies
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from tgkit.hparams import RunConfig
from tgkit.report import palette


def history_table(results: Mapping[str, dict]) -> pd.DataFrame:
    """The per-epoch history of each trained network, `results` mapping a network's name to its result
    (`Experiment.teacher_result()`, ...): network, epoch, loss, ce, kd, train_accuracy, val_accuracy, lr, seconds."""
    rows = [{"network": network, **epoch} for network, result in results.items() for epoch in result["history"]]
    return pd.DataFrame(
        rows, columns=["network", "epoch", "loss", "ce", "kd", "train_accuracy", "val_accuracy", "lr", "seconds"]
    )


def plot_learning_curves(history: pd.DataFrame) -> Figure:
    """Loss (left) and accuracy (right) per epoch of each network of a `history_table`.

    The loss is what the network was trained on: cross-entropy for the teacher, the total KD loss for
    a student trained with KD, whose cross-entropy part is drawn dashed. Accuracy: validation solid,
    training (on augmented batches) dashed; the title gives each network's best validation accuracy (the
    epoch whose weights are kept). Each network in its `palette` colour ("teacher", "dense student").
    """
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for network, epochs in history.groupby("network", sort=False):
        color = palette.color(network)
        loss_axes.plot(epochs["epoch"], epochs["loss"], color=color, label=f"{network}: training loss")
        if (epochs["kd"] > 0).any():
            loss_axes.plot(
                epochs["epoch"], epochs["ce"], color=color, linestyle="--", label=f"{network}: its cross-entropy part"
            )
        accuracy_axes.plot(epochs["epoch"], epochs["val_accuracy"], color=color, label=f"{network}: validation")
        accuracy_axes.plot(
            epochs["epoch"], epochs["train_accuracy"], color=color, linestyle="--", label=f"{network}: training"
        )
    loss_axes.set(xlabel="epoch", ylabel="loss", title="loss per epoch")
    best = history.groupby("network", sort=False)["val_accuracy"].max()
    title = "best validation accuracy: " + ", ".join(f"{network} {value:.1%}" for network, value in best.items())
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title=title)
    for axes in (loss_axes, accuracy_axes):
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def dense_networks_table(config: RunConfig, *, teacher: dict, student: dict) -> pd.DataFrame:
    """One row per dense network: architecture, width, parameters, epochs trained, final training
    accuracy, best validation accuracy (the weights kept), test accuracy, training minutes (when the
    stage ran, even if it is now read from the run cache) and whether it was read from the cache."""
    rows = []
    for network, spec, result in (("teacher", config.teacher, teacher), ("dense student", config.student, student)):
        history = result["history"]
        rows.append(
            {
                "network": network,
                "architecture": spec.arch,
                "width": spec.width,
                "parameters": sum(p.numel() for p in result["model"].parameters()),
                "epochs": len(history),
                "final_train_accuracy": history[-1]["train_accuracy"],
                "best_val_accuracy": max(epoch["val_accuracy"] for epoch in history),
                "test_accuracy": result["test_accuracy"],
                "training_minutes": result["seconds"] / 60,
                "cached": result["cached"],
            }
        )
    return pd.DataFrame(rows)
