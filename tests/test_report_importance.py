"""`tgkit.report.importance`: notebook 02's figures of scores and masks per layer, checked for what they
hold: the panels, boxes, bars, markers, labels and legends each figure draws, and that the values drawn
are those of the scores and tables given (made by hand, with known answers)."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.colors import to_hex

from conftest import pruned_cnn, ranked_scores, tiny_resnet
from tgkit import mask_analysis, masker, train
from tgkit.report import importance, palette

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
        # the threshold: one dashed vertical line at 0, left of which a box is pruned
        (threshold,) = [line for line in axes.get_lines() if line.get_label() == "global threshold"]
        assert list(threshold.get_xdata()) == [0, 0]
        assert (threshold.get_color(), threshold.get_linestyle()) == (palette.THRESHOLD, "--")
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
    # an x on each emptied bar: vermillion where the layer cuts the network, black where a shortcut bypasses it
    marks = [line for line in axes.get_lines() if line.get_marker() == "x"]
    assert [(line.get_xdata()[0], line.get_color()) for line in marks] == [
        (pytest.approx(centre(teacher_guided[1])), palette.VERMILLION),
        (pytest.approx(centre(magnitude[1])), palette.BLACK),
    ]
    # each criterion in its palette colour
    assert to_hex(teacher_guided[0].get_facecolor()) == palette.color("teacher_guided").lower()
    assert to_hex(magnitude[0].get_facecolor()) == palette.color("magnitude").lower()


def test_the_titles_state_what_the_bars_show():
    assert (
        importance.kept_fraction_title(LAYERS)
        == "one threshold, uneven layers: teacher-guided keeps 0.0% of b but 100.0% of c"
    )
    assert importance.kept_fraction_title(LAYERS, "magnitude") == (
        "one threshold, uneven layers: magnitude keeps 0.0% of b but 70.0% of c"
    )
    # magnitude's overlaps with teacher-guided: 0.5, 1.0, 0.7
    assert (
        importance.overlap_title(LAYERS) == "agreement with teacher-guided (mean Jaccard over layers): magnitude 0.73"
    )


def test_overlaps_are_a_bar_per_layer_for_each_criterion_but_the_reference():
    axes = importance.plot_mask_overlap(LAYERS, title="agreement")
    assert (axes.get_title(), axes.get_ylabel()) == ("agreement", "Jaccard overlap with teacher-guided")
    assert [label.get_text() for label in axes.get_xticklabels()] == ["a", "b", "c"]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["magnitude"]
    (magnitude,) = axes.containers
    assert heights(magnitude) == [0.5, 1.0, 0.7]
    # a criterion keeps its palette colour from figure to figure
    kept = importance.plot_kept_fraction(LAYERS)
    assert magnitude[0].get_facecolor() == kept.containers[1][0].get_facecolor()
    assert magnitude[0].get_facecolor() != kept.containers[0][0].get_facecolor()


# ---- the explorer ---------------------------------------------------------------------------------


# ---- the mask itself ------------------------------------------------------------------------------
# a convolution of 2 output and 3 input channels, kernels of 2x2 (weights 1..24), the last weight of every
# kernel pruned, and all of kernel (1, 2)
WEIGHT = torch.arange(1.0, 25.0).reshape(2, 3, 2, 2)
MASK = torch.ones(2, 3, 2, 2, dtype=torch.bool)
MASK[:, :, 1, 1] = False
MASK[1, 2] = False


def test_the_kernel_image_tiles_the_kernels_with_pruned_weights_and_gaps_blank():
    image = importance.kernel_image(WEIGHT, MASK, rows=8, columns=16)
    assert image.shape == (2 * 3 - 1, 3 * 3 - 1)  # a blank line between kernels
    nan = np.nan
    expected = [
        [1, 2, nan, 5, 6, nan, 9, 10],
        [3, nan, nan, 7, nan, nan, 11, nan],
        [nan] * 8,
        [13, 14, nan, 17, 18, nan, nan, nan],
        [15, nan, nan, 19, nan, nan, nan, nan],
    ]
    np.testing.assert_array_equal(image, np.array(expected))
    # fewer kernels than the layer has: the first rows and columns
    np.testing.assert_array_equal(importance.kernel_image(WEIGHT, MASK, rows=1, columns=2), np.array(expected)[:2, :5])


def teacher_guided_row(layer: str, kept_fraction: float) -> tuple:
    return (layer, "teacher_guided", 100, round(100 * kept_fraction), kept_fraction, 1.0, False, False)


def test_the_kernels_drawn_are_the_3x3_layer_kept_nearest_one_half():
    model = tiny_resnet()
    rows = [
        teacher_guided_row("layer2.0.downsample.0.weight", 0.5),  # exactly one half, but 1x1: passed over
        teacher_guided_row("conv1.weight", 0.6),
        teacher_guided_row("layer1.0.conv1.weight", 0.35),
        ("conv1.weight", "magnitude", 100, 50, 0.5, 1.0, False, False),  # another criterion's
    ]
    table = pd.DataFrame(rows, columns=LAYERS.columns)
    assert importance.layer_to_draw(table, model) == "conv1.weight"
    assert importance.layer_to_draw(table.iloc[[0]], model) == "layer2.0.downsample.0.weight"  # no 3x3 layer


def test_the_kernel_grid_draws_the_weights_over_a_frame_and_says_what_is_kept():
    axes = importance.plot_kernels(WEIGHT, MASK, layer="layer1.0.conv1.weight")
    frame, weights = axes.get_images()
    np.testing.assert_array_equal(weights.get_array().filled(np.nan), importance.kernel_image(WEIGHT, MASK, 8, 16))
    assert weights.get_clim() == (-19.0, 19.0)  # symmetric about zero: the largest kept weight
    assert frame.get_array()[2].tolist() == [0.0] * 8 and frame.get_array()[0].tolist() == [1, 1, 0, 1, 1, 0, 1, 1]
    assert axes.get_title() == "layer1.0.conv1: 62.5% of its weights kept (first 2 x 3 kernels shown)"  # 15 of 24


# ---- two masks side by side -------------------------------------------------------------------------


def test_agreement_names_which_mask_keeps_each_weight():
    reference = torch.tensor([True, True, False, False, True])
    compared = torch.tensor([True, False, True, False, False])
    assert importance.agreement(reference, compared).tolist() == [0, 1, 2, 3, 1]
    assert importance.COMPARISON[1] == "only the reference"


def test_the_agreement_table_counts_each_case_per_layer():
    reference = {"a.weight": torch.tensor([[True, True], [False, False]]), "b.weight": torch.tensor([False, False])}
    compared = {"a.weight": torch.tensor([[True, False], [True, True]]), "b.weight": torch.tensor([True, False])}
    table = importance.agreement_table(reference, compared)
    assert table["weights"].tolist() == [1, 1, 2, 0, 0, 0, 1, 1]
    assert table["case"].tolist() == list(importance.COMPARISON) * 2
    assert table["fraction"].tolist() == [0.25, 0.25, 0.5, 0.0, 0.0, 0.0, 0.5, 0.5]


# two criteria over one layer of 8 weights and one of 2: at 50%, five weights of the ten are pruned
#   reference (powers of ten)   a: 1e0..1e7, b: 1e8, 1e9    prunes a's first five
#   compared                    a: reverse order, b: 0, 0   prunes b (the zeros) and a's last three
PAIR = {
    "teacher_guided": {"a.weight": 10.0 ** torch.arange(8.0), "b.weight": torch.tensor([1e8, 1e9])},
    "snip": {"a.weight": 10.0 ** torch.arange(8.0).flip(0), "b.weight": torch.tensor([0.0, 0.0])},
}


def test_the_score_scatter_colours_each_weight_by_which_mask_keeps_it_and_counts_every_case():
    masks = mask_analysis.masks_by_criterion(PAIR, 0.5)
    # layer a: reference keeps 5, 6, 7; compared keeps 0..4: none kept by both, none by neither
    axes = importance.plot_score_scatter(PAIR, masks, "teacher_guided", "snip", "a.weight")
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["by neither (0)", "kept by both (0)", "only teacher-guided (3)", "only SNIP (5)"]
    neither, both, only_reference, only_compared = axes.collections
    assert [len(points.get_offsets()) for points in axes.collections] == [0, 0, 3, 5]
    assert to_hex(only_reference.get_facecolor()[0]) == palette.color("only the reference").lower()
    # every weight the reference alone keeps lies right of its threshold and below the compared one's
    assert all(x >= 0 > y for x, y in only_reference.get_offsets())
    assert all(x < 0 <= y for x, y in only_compared.get_offsets())
    assert axes.get_title() == "a: Jaccard overlap 0.00"
    assert axes.get_xlabel() == "log10(teacher-guided / global threshold)"


def test_the_scatter_draws_a_sample_of_each_case_but_counts_all():
    masks = mask_analysis.masks_by_criterion(PAIR, 0.5)
    axes = importance.plot_score_scatter(PAIR, masks, "teacher_guided", "snip", "a.weight", sample=4)
    assert [len(points.get_offsets()) for points in axes.collections] == [0, 0, 3, 4]
    assert [text.get_text() for text in axes.get_legend().get_texts()][2:] == [
        "only teacher-guided (3)",
        "only SNIP (5)",
    ]


# ---- what a mask costs --------------------------------------------------------------------------------


def test_accuracy_without_retraining_is_that_of_the_masked_model_and_leaves_the_model_alone(digits):
    model, masks = pruned_cnn(0.8)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    accuracy = importance.accuracy_without_retraining(model, masks, digits)
    masked = masker.apply_masks(pruned_cnn(0.8)[0], masks)
    assert accuracy == train.evaluate(masked, digits, "val")
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    # the masks matter: the masked network's outputs are not the dense one's
    assert not torch.equal(train.predict(masked, digits, "val")[0], train.predict(model, digits, "val")[0])
    assert importance.accuracy_without_retraining(model, {}, digits, "test") == train.evaluate(model, digits, "test")


# ---- the explorer ---------------------------------------------------------------------------------


def test_the_explorer_draws_the_scatter_the_accuracies_and_the_agreement_per_layer_at_one_sparsity():
    model = tiny_resnet()
    branch = {"layer4.0.conv1.weight", "layer4.0.conv2.weight"}
    scores = {"teacher_guided": ranked_scores(model), "magnitude": ranked_scores(model, low=branch)}

    def kept_fraction(masks):  # stands in for an accuracy: the dense network ({}: no mask) keeps everything
        if not masks:
            return 1.0
        return sum(int(mask.sum()) for mask in masks.values()) / sum(mask.numel() for mask in masks.values())

    figure = importance.plot_explorer(
        model, scores, 0.5, "magnitude", "teacher_guided", "layer4.0.conv2.weight", accuracy=kept_fraction
    )
    scatter, accuracy, layers = figure.axes
    masks = mask_analysis.masks_by_criterion(scores, masker.sparsity_for_target(model, 0.5))
    # half of all weights: magnitude prunes layer4.0's branch first and keeps the last 934 scores of its
    # conv2; teacher-guided prunes in parameter order and keeps the last 2144 of them: 934 kept by both
    assert scatter.get_title() == f"layer4.0.conv2: Jaccard overlap {934 / 2144:.2f}"
    assert figure.get_suptitle() == "magnitude against teacher-guided at 50.0% sparsity (all weights)"
    assert accuracy.get_title() == "accuracy without retraining"
    assert [label.get_text() for label in accuracy.get_yticklabels()] == [
        "dense",
        "magnitude's mask",
        "teacher-guided's mask",
    ]
    widths = [bar.get_width() for bar in accuracy.containers[0]]
    assert widths == pytest.approx(
        [100, 100 * kept_fraction(masks["magnitude"]), 100 * kept_fraction(masks["teacher_guided"])]
    )
    # the agreement bars: four stacked cases per layer, each the agreement table's fraction
    table = importance.agreement_table(masks["magnitude"], masks["teacher_guided"])
    assert [len(container) for container in layers.containers] == [12] * 4
    for container, case in zip(layers.containers, importance.COMPARISON):
        assert heights(container) == pytest.approx(table.loc[table["case"] == case, "fraction"].tolist())
    assert [text.get_text() for text in layers.get_legend().get_texts()] == [
        "kept by both",
        "only magnitude",
        "only teacher-guided",
        "by neither",
    ]


def test_without_an_accuracy_the_explorer_leaves_its_panel_empty():
    model = tiny_resnet()
    scores = {"teacher_guided": ranked_scores(model), "snip": ranked_scores(model)}
    figure = importance.plot_explorer(model, scores, 0.5, "teacher_guided", "snip", "conv1.weight")
    assert not figure.axes[1].axison
    assert figure.axes[0].get_title() == "conv1: Jaccard overlap 1.00"  # the same scores: the same mask
