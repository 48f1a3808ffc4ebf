"""`tgkit.report.paper`: the paper's reference tables hold exactly the numbers of docs/method.md
section 9, and name their source.

The numbers below are copied from method.md by hand; the same numbers are also read from the file
itself, the kit's docs/method.md and, where it is reachable, the project's shared copy it was written
from (`../shared/docs/method.md`), so that a change to any side fails here.
"""

import math
import re
from pathlib import Path

import pytest

from tgkit.report import latency, paper

REPO = Path(__file__).resolve().parents[1]
METHOD_MDS = {"kit": REPO / "docs" / "method.md", "shared": REPO.parent / "shared" / "docs" / "method.md"}
NOT_RUN = None  # "-" in method.md

HEADLINE = [
    ("CIFAR-10", 0.9841, 90.79),
    ("CIFAR-10", 0.5046, 96.08),
    ("CIFAR-100", 0.9801, 67.06),
    ("CIFAR-100", 0.5075, 81.01),
    ("TinyImageNet", 0.9756, 50.64),
    ("TinyImageNet", 0.5002, 59.29),
]
CIFAR10_SWEEP = [
    (0.5046, 96.06, 96.08, 96.03),
    (0.75, 95.46, 95.62, 95.60),
    (0.80, 95.21, 95.44, 95.49),
    (0.90, 94.12, NOT_RUN, 94.83),
    (0.9392, 92.97, 94.28, 94.40),
    (0.977, NOT_RUN, 91.29, NOT_RUN),
    (0.9841, 86.99, 90.79, 90.66),
]
TINYIMAGENET_SWEEP = [
    (0.5002, 58.53, NOT_RUN, 60.93),
    (0.7435, 54.39, 57.42, 58.58),
    (0.9311, 51.74, 53.79, 52.11),
    (0.9756, 47.71, 50.64, 50.07),
]
LATENCY = [
    ("CIFAR-10", 0.977, 27.82, 276.0),
    ("CIFAR-100", NOT_RUN, 19.76, 355.0),
    ("TinyImageNet", NOT_RUN, 42.43, 1756.0),
]


def rows(table, columns) -> list[tuple]:
    """The table's rows as tuples, NaN as None, so that they compare with ==."""
    return [
        tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row)
        for row in table[columns].itertuples(index=False)
    ]


def test_headline_table():
    assert rows(paper.headline(), ["dataset", "sparsity_all", "test_accuracy"]) == HEADLINE


def test_sweeps_and_their_dense_networks():
    columns = ["sparsity_all", "no KD", "KD T=3", "KD T=5"]
    assert list(paper.cifar10_sweep().columns) == columns
    assert rows(paper.cifar10_sweep(), columns) == CIFAR10_SWEEP
    assert rows(paper.tinyimagenet_sweep(), columns) == TINYIMAGENET_SWEEP
    assert rows(paper.cifar10_dense(), ["role", "test_accuracy"]) == [("teacher", 95.40), ("student", 95.92)]
    assert rows(paper.tinyimagenet_dense(), ["role", "test_accuracy"]) == [("student", 62.19)]


def test_latency_minutes_and_ratio():
    table = paper.latency()
    assert rows(table, ["dataset", "sparsity_all", "one_shot_minutes", "colt_minutes"]) == LATENCY
    assert table["ratio"].tolist() == pytest.approx([276 / 27.82, 355 / 19.76, 1756 / 42.43])
    assert latency.paper_latency().equals(table)  # latency.py reads the same numbers


def test_every_table_names_its_source_and_is_a_fresh_copy():
    for make in (
        paper.headline,
        paper.cifar10_sweep,
        paper.tinyimagenet_sweep,
        paper.cifar10_dense,
        paper.tinyimagenet_dense,
        paper.latency,
    ):
        table = make()
        assert "arXiv 2511.16653" in table.attrs["source"]
        table.iloc[0, -1] = -1.0
        assert make().iloc[0, -1] != -1.0


def test_sweeps_by_the_kits_dataset_names():
    assert paper.sweep("cifar10").equals(paper.cifar10_sweep())
    assert paper.sweep("tinyimagenet").equals(paper.tinyimagenet_sweep())
    assert paper.sweep("digits") is None and paper.dense("digits") is None
    assert paper.sweep("cifar100") is None  # the paper gives CIFAR-100 only in the headline table


# --------------------------------------------------------------------------------------------------
# the same numbers, read from method.md itself


@pytest.fixture(scope="module", params=list(METHOD_MDS))
def section9(request) -> str:
    path = METHOD_MDS[request.param]
    if request.param == "shared" and not path.is_file():
        pytest.skip(f"{path} is not reachable from this checkout")
    return path.read_text().split("## 9. Reference numbers", 1)[1].split("\n## 10.", 1)[0]


def test_every_table_names_the_spec_in_the_repository():
    """The sources cite docs/method.md, which ships with the kit."""
    assert METHOD_MDS["kit"].is_file()
    for source in (paper.HEADLINE_SOURCE, paper.LOGS_SOURCE, paper.LATENCY_SOURCE):
        assert "docs/method.md section 9" in source


def number(text: str) -> float | None:
    text = text.strip().rstrip("%")
    return None if text == "-" else float(text)


def percent(text: str) -> float:
    return round(float(text.strip().rstrip("%")) / 100, 6)


def markdown_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown table rows that start with `first_cell` (a regex)."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if re.match(rf"\|\s*{first_cell}", line)
    ]


def test_headline_matches_method_md(section9):
    parsed = []
    for dataset, high, high_acc, half, half_acc in markdown_rows(section9, r"(CIFAR|Tiny)"):
        parsed += [(dataset, percent(high), number(high_acc)), (dataset, percent(half), number(half_acc))]
    assert parsed == HEADLINE


def test_cifar10_sweep_matches_method_md(section9):
    sweep_part = section9.split("CIFAR-10 sweep", 1)[1]
    parsed = [(percent(level), *map(number, accuracies)) for level, *accuracies in markdown_rows(sweep_part, r"\d")]
    assert parsed == CIFAR10_SWEEP
    assert re.search(r"dense teacher 95\.40, dense student 95\.92", section9)


def test_tinyimagenet_sweep_matches_method_md(section9):
    prose = section9.split("TinyImageNet (64 px", 1)[1]
    parsed = [
        (percent(level), number(no_kd), number(t3), number(t5))
        for level, no_kd, t3, t5 in re.findall(r"(\d+\.\d+%) (\d+\.\d+|-) / (\d+\.\d+|-) / (\d+\.\d+|-)", prose)
    ]
    assert parsed == TINYIMAGENET_SWEEP
    assert "dense student 62.19" in prose


def test_latency_matches_method_md(section9):
    found = re.findall(
        r"(CIFAR-10|CIFAR-100|TinyImageNet)(?: at (\d+\.\d+)%)? (\d+\.\d+)\s+vs (\d+(?:\.\d+)?)", section9
    )
    parsed = [
        (dataset, percent(level) if level else None, float(one_shot), float(colt))
        for dataset, level, one_shot, colt in found
    ]
    assert parsed == LATENCY
