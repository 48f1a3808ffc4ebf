"""`tgkit.report.loss`: CA-KLD against the temperature in the paper's order and in the authors' code's
(notebook 01), the table and its figure, on fixed random logits."""

import matplotlib
import pytest
import torch

from tgkit import losses
from tgkit.report import loss, palette

matplotlib.use("Agg")  # no display needed


def logits_table():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(16, 10, generator=generator), torch.randn(16, 10, generator=generator)
    return student, teacher, loss.ca_kld_by_temperature(student, teacher, [1, 3, 10])


def test_ca_kld_by_temperature_shows_that_the_authors_order_cancels_t():
    student, teacher, table = logits_table()
    assert len(table) == 2 * 3 and set(table["order"]) == {"paper", "authors"}
    paper = table[table["order"] == "paper"].set_index("temperature")
    authors = table[table["order"] == "authors"].set_index("temperature")
    assert authors["ca_kld"].tolist() == pytest.approx([authors.loc[1.0, "ca_kld"]] * 3, rel=1e-4)
    assert paper.loc[10.0, "ca_kld"] < paper.loc[3.0, "ca_kld"] < paper.loc[1.0, "ca_kld"]
    assert table["scaled_ca_kld"].tolist() == pytest.approx((table["temperature"] ** 2 * table["ca_kld"]).tolist())
    assert paper.loc[3.0, "ca_kld"] == pytest.approx(losses.ca_kld(student, teacher, 3.0).item())
    # T^2 keeps the gradient's scale in the paper's order, and multiplies it by T^2 in the authors'
    assert paper.loc[10.0, "scaled_gradient_norm"] == pytest.approx(paper.loc[3.0, "scaled_gradient_norm"], rel=0.3)
    assert authors.loc[10.0, "scaled_gradient_norm"] == pytest.approx(
        100 * authors.loc[1.0, "scaled_gradient_norm"], rel=1e-3
    )


def test_the_figure_draws_each_orders_ca_kld_and_its_t_squared_multiple_against_t():
    _, _, table = logits_table()
    figure = loss.plot_ca_kld_by_temperature(table)
    raw_axes, scaled_axes = figure.axes
    assert raw_axes.get_yscale() == "log" and scaled_axes.get_yscale() == "linear"
    assert (raw_axes.get_xlabel(), raw_axes.get_ylabel()) == ("temperature T", "CA-KLD")
    assert scaled_axes.get_ylabel() == "T² · CA-KLD"
    assert raw_axes.get_title() == "CA-KLD: falls with T (paper), flat (authors')"
    assert scaled_axes.get_title() == "T² · CA-KLD: flat (paper), grows as T² (authors')"
    labels = ["paper: softmax(norm(z) / T)", "authors' code: softmax(norm(z / T))"]
    for axes, column in ((raw_axes, "ca_kld"), (scaled_axes, "scaled_ca_kld")):
        assert [line.get_label() for line in axes.get_lines()] == labels
        assert [text.get_text() for text in axes.get_legend().get_texts()] == labels
        for line, order in zip(axes.get_lines(), ("paper", "authors")):
            assert (line.get_color(), line.get_linestyle()) == (palette.color(order), palette.style(order)["linestyle"])
            rows = table[table["order"] == order]
            assert list(line.get_xdata()) == [1, 3, 10]
            assert list(line.get_ydata()) == rows[column].tolist()
