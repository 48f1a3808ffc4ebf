"""`tgkit.report.rounds`: the table of an iterative run's rounds (cumulative seconds, the mean accuracy
of the block networks) and the prune-rate figure (the method's palette colour, the trimmed last round
hatched, the lines of full and of no agreement), on a run whose every number is chosen here."""

import math

import matplotlib
import pytest

from tgkit.hparams import ColtConfig
from tgkit.report import palette, rounds

matplotlib.use("Agg")


def colt_result() -> dict:
    """Three rounds: round 0 trains, round 1 prunes 20%, round 2 lands on the target (trimmed) and trains nothing."""
    records = []
    for index, (sparsity, rate, trimmed, accuracies, seconds) in enumerate(
        [(0.0, math.nan, False, [0.8, 0.9], 10.0), (0.2, 0.2, False, [0.7, 0.8], 12.0), (0.3, 0.125, True, [], 1.0)]
    ):
        records.append(
            {
                "round": index,
                "sparsity_all": sparsity,
                "sparsity_prunable": sparsity,
                "remaining_weights": round(100 * (1 - sparsity)),
                "effective_prune_rate": rate,
                "trimmed": trimmed,
                "block_val_accuracy": accuracies,
                "training_seconds": seconds,
                "pruning_seconds": 0.0,
                "merge_seconds": 0.0,
                "seconds": seconds,
                "device": "cpu",
                "cached": False,
            }
        )
    return {"method": "COLT (P=2)", "rounds": records}


def test_the_rounds_table_adds_up_the_seconds_and_averages_the_block_networks():
    table = rounds.rounds_table(colt_result())
    assert list(table.columns) == list(rounds.ROUND_COLUMNS)
    assert table["cumulative_seconds"].tolist() == [10.0, 22.0, 23.0]
    assert table["mean_block_val_accuracy"].tolist()[:2] == pytest.approx([0.85, 0.75])
    assert math.isnan(table.loc[2, "mean_block_val_accuracy"])  # the last round trains no network
    assert (table["method"] == "COLT (P=2)").all()


def test_the_prune_rate_figure_hatches_the_trimmed_round_between_the_lines_of_agreement():
    figure = rounds.plot_prune_rate([colt_result()], [ColtConfig(prune_rate=0.15, partitions=2)])
    axes = figure.axes[0]
    bars = axes.patches
    assert [bar.get_height() for bar in bars] == pytest.approx([0.2, 0.125])  # round 0 only trains
    assert [bar.get_hatch() for bar in bars] == ["", "//"]
    assert matplotlib.colors.to_hex(bars[0].get_facecolor()) == palette.color("colt").lower()
    assert [line.get_ydata()[0] for line in axes.get_lines()] == pytest.approx([0.15, 1 - 0.85**2])
    assert axes.get_title() == "COLT (P=2): median 20.0% of the remaining weights per round"  # the trimmed one left out
