"""`tgkit.report.deployment`: the crossover sparsity where sparse inference overtakes the masked dense
network, interpolated between measured sparsities, and measured speedups beside the theoretical ones,
on latency tables with known numbers."""

import pandas as pd
import pytest

from tgkit.report import deployment


def latency_rows(masked: dict[float, float], sparse: dict[float, float], batch_size: int = 1) -> pd.DataFrame:
    rows = [{"backend": "dense", "batch_size": batch_size, "sparsity": 0.0, "ms_per_batch": 10.0}]
    rows += [
        {"backend": "masked dense", "batch_size": batch_size, "sparsity": s, "ms_per_batch": ms}
        for s, ms in masked.items()
    ]
    rows += [
        {"backend": "sparse", "batch_size": batch_size, "sparsity": s, "ms_per_batch": ms} for s, ms in sparse.items()
    ]
    return pd.DataFrame(rows)


def test_the_crossover_is_interpolated_between_the_measured_sparsities():
    # masked/sparse: 0.5 at 50%, 2.0 at 90%: equal speed (1.0) a third of the way, at 50% + 40% / 3
    table = latency_rows({0.5: 10.0, 0.9: 10.0}, {0.5: 20.0, 0.9: 5.0})
    assert deployment.crossover(table, batch_size=1) == pytest.approx(0.5 + 0.4 / 3)
    assert deployment.crossover(latency_rows({0.5: 10.0}, {0.5: 5.0}), batch_size=1) == 0.5
    assert deployment.crossover(latency_rows({0.5: 10.0, 0.9: 10.0}, {0.5: 30.0, 0.9: 11.0}), batch_size=1) is None
    summary = deployment.crossover_table(table)
    assert summary.loc[0, "sparse_over_masked_dense_at_highest"] == pytest.approx(0.5)


def test_the_speedup_table_sets_measured_beside_theoretical():
    table = latency_rows({0.9: 8.0}, {0.9: 20.0})
    speedups = deployment.speedup_table(table, {0.9: 4.0}).set_index("backend")
    assert speedups.loc["masked dense", "measured_speedup"] == pytest.approx(10 / 8)
    assert speedups.loc["sparse", "measured_speedup"] == pytest.approx(0.5)
    assert (speedups["theoretical_speedup"] == 4.0).all()
