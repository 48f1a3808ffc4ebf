"""An iterative method round by round (notebook 04): the table of a COLT or LTH run's rounds, and the
effective prune rate of each round.

    rounds_table(colt.run_colt(...))          one row per round: sparsity, prune rate, accuracy, seconds
    plot_prune_rate(results, settings)        the prune rate per round between full and no agreement

A round of COLT removes `prune_rate` of each block network's remaining weights; after the AND of the P
masks it has removed between `prune_rate` (the networks agree on every weight) and
1 - (1 - prune_rate)^P (they agree on none) of what remained: where a round lands says how much the
block networks disagree about which weights matter. Each method is drawn in its colour of
`tgkit.report.palette`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from tgkit.hparams import ColtConfig
from tgkit.report import palette

# What `rounds_table` shows, in order; `run_colt`'s round records hold the same keys.
ROUND_COLUMNS = (
    "round",
    "method",
    "sparsity_all",
    "sparsity_prunable",
    "remaining_weights",
    "effective_prune_rate",
    "trimmed",
    "block_val_accuracy",
    "mean_block_val_accuracy",
    "training_seconds",
    "pruning_seconds",
    "merge_seconds",
    "seconds",
    "cumulative_seconds",
    "device",
    "cached",
)


def rounds_table(result: dict) -> pd.DataFrame:
    """One row per round of a `run_colt` result (see `ROUND_COLUMNS`), with the cumulative seconds at
    the end of each round (for sparsity against time) and the mean best validation accuracy of the
    block networks (NaN where a round trained none: the last one)."""
    table = pd.DataFrame(
        result["rounds"],
        columns=[c for c in ROUND_COLUMNS if c not in ("method", "mean_block_val_accuracy", "cumulative_seconds")],
    )
    table["method"] = result["method"]
    table["mean_block_val_accuracy"] = [sum(a) / len(a) if a else float("nan") for a in table["block_val_accuracy"]]
    table["cumulative_seconds"] = table["seconds"].cumsum()
    table["effective_prune_rate"] = table["effective_prune_rate"].astype(float)
    return table[list(ROUND_COLUMNS)]


def plot_prune_rate(iterative: list[dict], settings: list[ColtConfig]) -> Figure:
    """The effective prune rate of every round after the first, a bar per run in its method's colour
    (hatched: the last round, trimmed to land on the target), between the lines of full agreement (the
    prune rate) and none (1 - (1 - rate)^P) of the block networks; the title gives each run's median
    over its untrimmed rounds."""
    figure, axes = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(iterative)
    medians = []
    for index, (result, config) in enumerate(zip(iterative, settings)):
        steps = rounds_table(result).query("round > 0")  # round 0 only trains
        medians.append(steps.loc[~steps["trimmed"].astype(bool), "effective_prune_rate"].median())
        offset = (index - (len(iterative) - 1) / 2) * width
        bars = axes.bar(
            steps["round"] + offset,
            steps["effective_prune_rate"],
            width=width,
            label=result["method"],
            color=palette.color(result["method"]),  # "COLT (P=2)": COLT's colour
            edgecolor="black",
            linewidth=0.5,
        )
        for bar, trimmed in zip(bars, steps["trimmed"]):
            bar.set_hatch("//" if trimmed else "")
        if config.partitions > 1:
            disagreeing = 1 - (1 - config.prune_rate) ** config.partitions
            for level, linestyle, meaning in (
                (config.prune_rate, ":", f"{config.prune_rate:.0%}: the networks agree on every weight"),
                (disagreeing, "--", f"{disagreeing:.2%}: they agree on none"),
            ):
                axes.axhline(level, color=palette.GREY, linestyle=linestyle, linewidth=1, label=meaning)
    axes.set(
        xlabel="round (hatched: the last round, trimmed to land on the target)",
        ylabel="removed / remaining",
        title=", ".join(f"{result['method']}: median {median:.1%}" for result, median in zip(iterative, medians))
        + " of the remaining weights per round",
    )
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return figure
