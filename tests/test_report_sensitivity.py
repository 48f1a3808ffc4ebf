"""`tgkit.report.sensitivity`: the layer-sensitivity heatmap and one layer's curve, on a table set by hand: a cell
whose pruning changed no output is drawn apart, and the global mask's choice lands where its fraction falls."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from tgkit.report import sensitivity as report

LEVELS = (0.5, 0.9, 1.0)


def known_table() -> pd.DataFrame:
    """Two layers: "a.weight" (cuts the network) loses 10, 40, 90 points; "b.weight" (a branch) changes nothing
    at 0.5 and loses 0, 5 points after."""
    rows = []
    for layer, drops, effective, fate in (
        ("a.weight", (0.1, 0.4, 0.9), (True, True, True), ("cuts the network", "")),
        ("b.weight", (0.0, 0.0, 0.05), (False, True, True), ("bypassed by the shortcut", "identity")),
    ):
        for level, drop, changed in zip(LEVELS, drops, effective):
            rows.append(
                {
                    "layer": layer,
                    "level": level,
                    "accuracy": 0.95 - drop,
                    "dense_accuracy": 0.95,
                    "accuracy_drop": drop,
                    "effective": changed,
                    "when_emptied": fate[0],
                    "shares_fate_with": fate[1],
                }
            )
    return pd.DataFrame(rows)


def test_global_pruned_fraction_reads_a_layer_table():
    layers = pd.DataFrame(
        {
            "layer": ["a.weight", "b.weight", "a.weight"],
            "criterion": ["teacher_guided", "teacher_guided", "snip"],
            "kept_fraction": [0.25, 1.0, 0.5],
        }
    )
    assert report.global_pruned_fraction(layers).to_dict() == {"a.weight": 0.75, "b.weight": 0.0}
    assert report.global_pruned_fraction(layers, "snip").to_dict() == {"a.weight": 0.5}


@pytest.mark.parametrize("pruned, position", [(0.0, -0.5), (0.25, -0.25), (0.5, 0.0), (0.7, 0.5), (1.0, 2.0)])
def test_a_pruned_fraction_falls_between_the_level_columns(pruned, position):
    # below the first level (0.5): between the left edge (nothing pruned, -0.5) and the first column (0)
    assert report._level_position(list(LEVELS), pruned) == pytest.approx(position)


def test_the_heatmap_writes_each_drop_marks_inert_cells_and_the_global_choice():
    figure = report.plot_sensitivity(known_table(), {"a.weight": 0.7, "b.weight": 0.0})
    heatmap, bars = figure.axes
    assert sorted(text.get_text() for text in heatmap.texts) == sorted(["10", "40", "90", "·", "0", "5"])
    triangles = [line for line in heatmap.lines if line.get_marker() == "v"]
    assert [list(line.get_xydata()[0]) for line in triangles] == [
        pytest.approx([0.5, -0.28]),
        pytest.approx([-0.5, 0.72]),
    ]
    assert [patch.get_width() for patch in bars.patches] == pytest.approx([0.3, 1.0])  # fraction kept
    assert [label.get_text() for label in heatmap.get_yticklabels()] == ["a (cuts)", "b (branch)"]
    plt.close("all")


def test_one_layers_curve_draws_inert_points_hollow_and_names_its_fate():
    axes = report.plot_layer_sensitivity(known_table(), "b.weight", {"a.weight": 0.7, "b.weight": 0.0})
    points = {line.get_label(): line for line in axes.lines}
    assert len(points["pruning changed the output"].get_xdata()) == 2
    hollow = points["no output changed: nothing effective pruned"]
    assert list(hollow.get_xdata()) == [0.5] and hollow.get_markerfacecolor() == "white"
    assert axes.get_title() == "b; emptied: bypassed by the shortcut (identity)"
    plt.close("all")
