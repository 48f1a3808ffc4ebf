"""`tgkit.report.deployment`: the crossover sparsity where sparse inference overtakes the masked dense
network, interpolated between measured sparsities; noisy timings flagged by their IQR; each backend's
speed-up against its own unpruned run beside the theoretical one; what the file sizes show, counted;
the figures in the palette's styles. All on tables with known numbers."""

import matplotlib
import pandas as pd
import pytest

from tgkit.report import deployment, palette
from tgkit.util.errors import InputError

matplotlib.use("Agg")


def latency_rows(masked: dict[float, float], sparse: dict[float, float], batch_size: int = 1) -> pd.DataFrame:
    """Timings with an IQR of a tenth of a millisecond each, the dense network at 10 ms."""
    rows = [{"backend": "dense", "batch_size": batch_size, "sparsity": 0.0, "ms_per_batch": 10.0}]
    rows += [
        {"backend": "masked dense", "batch_size": batch_size, "sparsity": s, "ms_per_batch": ms}
        for s, ms in masked.items()
    ]
    rows += [
        {"backend": "sparse", "batch_size": batch_size, "sparsity": s, "ms_per_batch": ms} for s, ms in sparse.items()
    ]
    table = pd.DataFrame(rows)
    return table.assign(ms_iqr=0.1, ms_q1=table["ms_per_batch"] - 0.05, ms_q3=table["ms_per_batch"] + 0.05)


def test_the_crossover_is_interpolated_between_the_measured_sparsities():
    # masked/sparse: 0.5 at 50%, 2.0 at 90%: equal speed (1.0) a third of the way, at 50% + 40% / 3
    table = latency_rows({0.5: 10.0, 0.9: 10.0}, {0.5: 20.0, 0.9: 5.0})
    assert deployment.crossover(table, batch_size=1) == pytest.approx(0.5 + 0.4 / 3)
    assert deployment.crossover(latency_rows({0.5: 10.0}, {0.5: 5.0}), batch_size=1) == 0.5
    assert deployment.crossover(latency_rows({0.5: 10.0, 0.9: 10.0}, {0.5: 30.0, 0.9: 11.0}), batch_size=1) is None
    summary = deployment.crossover_table(table)
    assert summary.loc[0, "sparse_over_masked_dense_at_highest"] == pytest.approx(0.5)
    assert summary.loc[0, "noisy_timings"] == 0 and summary.loc[0, "timings"] == 4


def test_a_timing_whose_iqr_exceeds_a_tenth_of_its_median_is_noisy():
    table = latency_rows({0.5: 10.0, 0.9: 0.9}, {0.5: 20.0, 0.9: 1.1})  # IQR 0.1 ms: 11% of 0.9, 9% of 1.1
    assert deployment.flag_noisy(table).tolist() == [False, False, True, False, False]
    assert deployment.crossover_table(table).loc[0, "noisy_timings"] == 1


def timed_on_the_unpruned_network_too() -> pd.DataFrame:
    """Every backend at 0% (the unpruned network) and at 90%, batch 1: eager dense 10 ms, ONNX Runtime 2."""
    rows = [
        ("dense", 0.0, 10.0),
        ("masked dense", 0.0, 10.0),
        ("sparse", 0.0, 20.0),
        ("onnxruntime", 0.0, 2.0),
        ("masked dense", 0.9, 8.0),
        ("sparse", 0.9, 5.0),
        ("onnxruntime", 0.9, 2.0),
    ]
    table = pd.DataFrame(rows, columns=["backend", "sparsity", "ms_per_batch"]).assign(batch_size=1, ms_iqr=0.1)
    return table.assign(ms_q1=table["ms_per_batch"] - 0.05, ms_q3=table["ms_per_batch"] + 0.05)


def test_each_backend_is_set_against_its_own_unpruned_run():
    speedups = deployment.speedup_table(timed_on_the_unpruned_network_too(), {0.0: 1.0, 0.9: 4.0})
    rows = speedups.set_index("backend")
    assert sorted(rows.index) == ["masked dense", "onnxruntime", "sparse"]  # the pruned networks only
    assert rows.loc["masked dense", "measured_speedup"] == pytest.approx(10 / 8)
    assert rows.loc["sparse", "measured_speedup"] == pytest.approx(20 / 5)
    assert rows.loc["onnxruntime", "measured_speedup"] == pytest.approx(1.0)  # nothing from the zeros
    assert rows.loc["onnxruntime", "over_eager_dense"] == pytest.approx(5.0)  # everything from the engine
    assert rows.loc["sparse", "over_eager_dense"] == pytest.approx(2.0)
    assert (speedups["theoretical_speedup"] == 4.0).all()
    # the crossover is read among the pruned networks only: sparse is faster from the first of them
    assert deployment.crossover(timed_on_the_unpruned_network_too(), batch_size=1) == 0.9


def test_a_backend_without_an_unpruned_run_is_refused():
    with pytest.raises(InputError, match="no run of the unpruned network for \\['masked dense', 'sparse'\\]"):
        deployment.speedup_table(latency_rows({0.9: 8.0}, {0.9: 20.0}), {0.9: 4.0})


def sizes_table() -> pd.DataFrame:
    rows = [  # sparsity, values, dense, dense gzipped, sparse export, sparse export gzipped
        (0.5, "float32", 1000, 500, 550, 450),
        (0.9, "float32", 1000, 150, 140, 100),
        (0.98, "float32", 1000, 40, 50, 30),
        (0.98, "float16", 1000, 40, 30, 20),
    ]
    columns = ["sparsity", "values", "dense_state_dict", "dense_gzip", "sparse_export", "sparse_export_gzip"]
    return pd.DataFrame(rows, columns=columns)


def test_what_the_sizes_show_is_counted_over_the_float32_rows():
    assert deployment.size_findings(sizes_table()) == {
        "levels": 3,
        "dense_gzip_beats_sparse": 2,  # at 50% and 98%, not at 90%
        "sparse_gzip_smallest": 3,
        "top_sparsity": 0.98,
        "top_sparse_share": 0.05,
        "top_sparse_gzip_share": 0.03,
    }


def test_the_figures_draw_each_backend_and_value_type_in_its_palette_style():
    sizes = deployment.plot_sizes(sizes_table())
    lines = {line.get_label(): line for line in sizes.axes[0].get_lines()}
    assert lines["sparse export, float16 values"].get_color() == palette.color("float16")
    assert lines["sparse export, float16 values"].get_linestyle() == ":"
    assert "2 of 3 sparsities" in sizes.axes[0].get_title()
    figure = deployment.plot_speedup(
        deployment.speedup_table(timed_on_the_unpruned_network_too(), {0.0: 1.0, 0.9: 4.0})
    )
    zeros, engine = figure.axes
    assert "theoretical (non-zero multiply-adds)" in [line.get_label() for line in zeros.get_lines()]
    assert "theoretical (non-zero multiply-adds)" not in [line.get_label() for line in engine.get_lines()]
    onnx = next(line for line in zeros.get_lines() if line.get_label() == "onnxruntime, batch 1")
    assert onnx.get_color() == palette.color("onnxruntime")
    assert "onnxruntime up to 5.0x" in engine.get_title()
    latency = deployment.plot_latency(latency_rows({0.5: 10.0, 0.9: 0.9}, {0.5: 20.0, 0.9: 1.1}))
    assert "1 of 5 timings noisy" in latency.axes[0].get_title()
