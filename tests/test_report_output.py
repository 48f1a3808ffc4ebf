"""`tgkit.report.output`: what a notebook leaves behind: figures that name their run, tables, manifests."""

import json

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd

from tgkit import report

matplotlib.use("Agg")  # no display needed


def test_figure_carries_its_provenance_once(tmp_path):
    source = report.provenance("quick", "cifar10", "cpu (2 threads)")
    assert source.startswith("tgkit ") and source.endswith(" · profile quick · cifar10 · cpu (2 threads)")
    figure, axes = plt.subplots()
    axes.plot([0, 1], [0, 1])
    for _ in range(2):  # saving again (a notebook cell run twice) must not stack a second line
        paths = report.save_figure(figure, tmp_path, "line", source=source)
    assert [path.name for path in paths] == ["line.png", "line.pdf"]
    assert all(path.stat().st_size > 1000 for path in paths)
    assert [text.get_text() for text in figure.texts] == [source]
    plt.close(figure)


def test_the_footer_clears_slanted_tick_labels_and_a_legend_beside_the_axes(tmp_path):
    figure, axes = plt.subplots(figsize=(4, 3))
    names = [f"layer{i}.0.downsample.0" for i in range(6)]
    axes.bar(names, range(6), label="kept fraction")
    plt.setp(axes.get_xticklabels(), rotation=45, ha="right")  # they reach far below the figure
    axes.set(xlabel="layer", ylabel="fraction")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    report.save_figure(figure, tmp_path, "bars", source="tgkit 0123456789 · profile smoke · digits · cpu")
    renderer = figure.canvas.get_renderer()
    (footer,) = figure.texts
    footer_box = footer.get_window_extent(renderer)
    others = [*axes.get_xticklabels(), *axes.get_yticklabels(), axes.xaxis.label, axes.yaxis.label]
    assert len(others) == 6 + len(axes.get_yticklabels()) + 2
    for artist in [*others, axes.get_legend()]:
        assert not footer_box.overlaps(artist.get_window_extent(renderer)), artist
    assert footer_box.y1 < min(label.get_window_extent(renderer).y0 for label in axes.get_xticklabels())
    plt.close(figure)


def test_figure_without_source_is_left_alone(tmp_path):
    figure, _ = plt.subplots()
    report.save_figure(figure, tmp_path, "blank")
    assert figure.texts == []
    plt.close(figure)


def test_table_and_manifest_round_trip(tmp_path, fake_clock):
    table = pd.DataFrame({"sparsity": [0.5, 0.9], "accuracy": [0.8, 0.7]})
    pd.testing.assert_frame_equal(pd.read_csv(report.save_table(table, tmp_path, "t")), table)
    clock = report.StageClock()
    with clock("stage"):
        fake_clock.advance(2.5)
    with clock("stage"):  # a stage timed twice (a cell run again) adds up
        fake_clock.advance(1.0)
    path = report.write_manifest(
        tmp_path, "00_example.ipynb", profile="smoke", dataset="cifar10", seed=3, device="cpu", clock=clock
    )
    manifest = json.loads(path.read_text())
    assert path.name == "00_example.manifest.json"
    assert (manifest["notebook"], manifest["profile"], manifest["seed"], manifest["device"]) == (
        "00_example.ipynb",
        "smoke",
        3,
        "cpu",
    )
    assert manifest["dataset_note"].startswith("CIFAR-10 from a JPEG-recompressed copy")
    assert manifest["stage_seconds"] == {"stage": 3.5} and manifest["total_seconds"] == 3.5


def test_only_a_dataset_whose_copy_differs_carries_a_note():
    assert "32 px" in report.dataset_note("TinyImageNet")  # by the kit's name, in any case
    assert report.dataset_note("digits") == ""
