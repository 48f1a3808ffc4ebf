"""`tgkit.report.importance`: notebook 02's figures of scores and masks per layer, checked for what they
hold: the panels, boxes, bars, markers, labels and legends each figure draws, and that the values drawn
are those of the scores and tables given (made by hand, with known answers)."""

import matplotlib
import pandas as pd
import pytest
import torch

from conftest import ranked_scores, tiny_resnet
from tgkit import mask_analysis, masker
from tgkit.report import importance

matplotlib.use("Agg")  # no display needed


def test_relative_log_scores_put_the_threshold_at_zero():
    scores = {"a": torch.tensor([0.0, 1.0, 10.0]), "b": torch.tensor([100.0, 1000.0])}
    masks = masker.global_masks(scores, 0.4)  # prunes 0 and 1
    relative = importance.relative_log_scores(scores, masks)
    assert relative["a"].tolist() == pytest.approx([importance.LOWEST_DECADE, -1.0, 0.0])
    assert relative["b"].tolist() == pytest.approx([1.0, 2.0])


# ---- score distributions and one layer's histogram --------------------------------------------------
# Two criteria over two layers of four and two weights, powers of ten so that log10(score / threshold) is
# a whole number. Half of the six weights are pruned: 1, 10 and 100 go, and 1000 is the threshold for both.
#   teacher-guided  a: [-3, -2, -1, 0] (median -1.5, one kept)    b: [1, 2] (median 1.5, both kept)
#   magnitude       a: [2, 1, 0, -1]   (median 0.5, three kept)   b: [-2, -3] (median -2.5, emptied)
SCORES = {
    "teacher_guided": {"a.weight": torch.tensor([1.0, 10.0, 100.0, 1000.0]), "b.weight": torch.tensor([1e4, 1e5])},
    "magnitude": {"a.weight": torch.tensor([1e5, 1e4, 1000.0, 100.0]), "b.weight": torch.tensor([10.0, 1.0])},
}
MEDIANS = {"teacher_guided": [-1.5, 1.5], "magnitude": [0.5, -2.5]}


def masks_at_half() -> dict[str, dict[str, torch.Tensor]]:
    return mask_analysis.masks_by_criterion(SCORES, 0.5)


def box_medians(axes) -> list[float]:
    """The medians of a horizontal boxplot, box by box (from the top of the figure's data, layer order): a box
    is drawn as a closed outline of five points, and its median as the vertical segment spanning the box's
    height (a cap spans less, a whisker is horizontal)."""
    lines = [(list(line.get_xdata()), list(line.get_ydata())) for line in axes.get_lines()]
    medians = []
    for _, box_y in (line for line in lines if len(line[0]) == 5):
        height = (min(box_y), max(box_y))
        (median,) = [x[0] for x, y in lines if len(x) == 2 and x[0] == x[1] and (min(y), max(y)) == height]
        medians.append(float(median))
    return medians


def test_score_distributions_draw_a_panel_per_criterion_and_a_box_per_layer():
    figure = importance.plot_score_distributions(SCORES, masks_at_half())
    assert [axes.get_title() for axes in figure.axes] == ["teacher-guided", "magnitude"]
    for axes, criterion in zip(figure.axes, SCORES):
        assert axes.get_xlabel() == "log10(score / global threshold)"
        assert box_medians(axes) == pytest.approx(MEDIANS[criterion])
        # the threshold: one red vertical line at 0, left of which a box is pruned
        (threshold,) = [line for line in axes.get_lines() if line.get_color() == "red"]
        assert list(threshold.get_xdata()) == [0, 0]
    first = figure.axes[0]
    # each box's position is labelled with its layer (each panel's boxplot adds its ticks to the shared
    # axis, so every label is there twice, at the same place)
    labels = {(float(tick), label.get_text()) for tick, label in zip(first.get_yticks(), first.get_yticklabels())}
    assert labels == {(1.0, "a"), (2.0, "b")}
    assert first.yaxis_inverted()  # the first layer on top


def test_score_distributions_draw_at_most_the_sample_asked_per_layer():
    # one score per layer: layer "a" is drawn from one of its four weights, so its box is a single value
    figure = importance.plot_score_distributions(SCORES, masks_at_half(), sample_per_layer=1, seed=3)
    for axes, criterion in zip(figure.axes, SCORES):
        relative = importance.relative_log_scores(SCORES[criterion], masks_at_half()[criterion])
        median_a, median_b = box_medians(axes)
        assert median_a in relative["a.weight"].tolist()
        assert median_b in relative["b.weight"].tolist()
    again = importance.plot_score_distributions(SCORES, masks_at_half(), sample_per_layer=1, seed=3)
    assert [box_medians(axes) for axes in again.axes] == [box_medians(axes) for axes in figure.axes]


def bars(container) -> list[tuple[float, float, float]]:
    """(left, right, height) of each bar of `container` that holds something."""
    return [(bar.get_x(), bar.get_x() + bar.get_width(), bar.get_height()) for bar in container if bar.get_height()]


def test_one_layers_histogram_holds_its_kept_and_pruned_weights_apart():
    # magnitude's layer "a": 1e5, 1e4 and 1000 kept (log10 2, 1, 0), 100 pruned (-1)
    axes = importance.plot_layer_scores(SCORES["magnitude"], masks_at_half()["magnitude"], "a.weight")
    assert axes.get_title() == "a: 75.0% kept"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("log10(score / global threshold)", "weights")
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["kept (3)", "pruned (1)"]
    kept, pruned = axes.containers
    assert [height for *_, height in bars(kept)] == [1, 1, 1]
    assert all(left <= value <= right for value, (left, right, _) in zip([0.0, 1.0, 2.0], bars(kept)))
    assert bars(pruned) == [(-1.0, pytest.approx(-1.0 + 3 / 40), 1)]  # 40 bins over [-1, 2]


def test_a_layer_that_keeps_a_few_weights_says_so_in_its_title():
    assert importance.kept_label(1 / 2000) == "<0.1%" and importance.kept_label(1999 / 2000) == ">99.9%"
    assert importance.kept_label(0.0) == "0.0%" and importance.kept_label(1.0) == "100.0%"


# ---- the bars of a layer table ------------------------------------------------------------------------
# Three layers, two criteria; layer "b" is emptied by both, and cuts the network only under teacher-guided.
LAYERS = pd.DataFrame(
    [
        ("a.weight", "teacher_guided", 8, 4, 0.5, 1.0, False, False),
        ("b.weight", "teacher_guided", 4, 0, 0.0, 1.0, True, True),
        ("c.weight", "teacher_guided", 10, 10, 1.0, 1.0, False, False),
        ("a.weight", "magnitude", 8, 2, 0.25, 0.5, False, False),
        ("b.weight", "magnitude", 4, 0, 0.0, 1.0, True, False),
        ("c.weight", "magnitude", 10, 7, 0.7, 0.7, False, False),
    ],
    columns=["layer", "criterion", "weights", "kept", "kept_fraction", "overlap", "collapsed", "cuts_network"],
)


def heights(container) -> list[float]:
    return [bar.get_height() for bar in container]


def centre(bar) -> float:
    return bar.get_x() + bar.get_width() / 2


def test_kept_fractions_are_a_bar_per_layer_and_criterion_with_emptied_layers_marked():
    axes = importance.plot_kept_fraction(LAYERS, title="kept at 50%")
    assert (axes.get_title(), axes.get_ylabel(), axes.get_ylim()) == (
        "kept at 50%",
        "fraction of weights kept",
        (0, 1.05),
    )
    assert [label.get_text() for label in axes.get_xticklabels()] == ["a", "b", "c"]
    assert axes.get_legend().get_title().get_text() == "criterion"
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["teacher-guided", "magnitude"]
    teacher_guided, magnitude = axes.containers
    assert heights(teacher_guided) == [0.5, 0.0, 1.0]
    assert heights(magnitude) == [0.25, 0.0, 0.7]
    # an x on each emptied bar: red where the layer cuts the network, black where a shortcut bypasses it
    marks = [line for line in axes.get_lines() if line.get_marker() == "x"]
    assert [(line.get_xdata()[0], line.get_color()) for line in marks] == [
        (pytest.approx(centre(teacher_guided[1])), "red"),
        (pytest.approx(centre(magnitude[1])), "black"),
    ]


def test_overlaps_are_a_bar_per_layer_for_each_criterion_but_the_reference():
    axes = importance.plot_mask_overlap(LAYERS, title="agreement")
    assert (axes.get_title(), axes.get_ylabel()) == ("agreement", "Jaccard overlap with teacher-guided")
    assert [label.get_text() for label in axes.get_xticklabels()] == ["a", "b", "c"]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["magnitude"]
    (magnitude,) = axes.containers
    assert heights(magnitude) == [0.5, 1.0, 0.7]
    # a criterion keeps its colour from figure to figure: magnitude is the second colour in both
    kept = importance.plot_kept_fraction(LAYERS)
    assert magnitude[0].get_facecolor() == kept.containers[1][0].get_facecolor()
    assert magnitude[0].get_facecolor() != kept.containers[0][0].get_facecolor()


# ---- the explorer ---------------------------------------------------------------------------------


def test_the_explorer_draws_one_layers_scores_the_overlaps_and_the_kept_fractions_at_one_sparsity():
    model = tiny_resnet()
    branch = {"layer4.0.conv1.weight", "layer4.0.conv2.weight"}
    scores = {"teacher_guided": ranked_scores(model), "magnitude": ranked_scores(model, low=branch)}
    figure = importance.plot_explorer(model, scores, 0.5, "magnitude", "layer4.0.conv1.weight")
    histogram, overlap, kept = figure.axes
    # half of all weights: magnitude empties its lowest tensors, layer4.0's branch first
    assert histogram.get_title() == "layer4.0.conv1: 0.0% kept"
    assert [text.get_text() for text in histogram.get_legend().get_texts()] == ["kept (0)", "pruned (1152)"]
    assert overlap.get_title() == "agreement with the teacher-guided mask"
    assert kept.get_title() == "fraction of each layer kept at 50.0% sparsity"
    assert [len(container) for container in kept.containers] == [12, 12]  # 12 layers, two criteria
    assert [len(container) for container in overlap.containers] == [12]  # magnitude against teacher-guided
    masks = mask_analysis.masks_by_criterion(scores, masker.sparsity_for_target(model, 0.5))
    expected = mask_analysis.layer_table(model, masks)
    assert heights(kept.containers[1]) == expected.loc[expected["criterion"] == "magnitude", "kept_fraction"].tolist()
