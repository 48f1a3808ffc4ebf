"""Every code snippet in the prose of the notebooks runs: each ```python block of a markdown cell.

A notebook with snippets runs once, in a fresh kernel (nbclient), as a copy made of its code cells up
to the markdown cell of its last snippet, each snippet inserted as a code cell right after the
markdown cell that shows it. So a snippet sees what the cells above it defined, as it does for a reader
who runs the notebook from the top; it runs with the parameters cell's smoke literals, and `OVERRIDES`
after them where a notebook's default would make the test slow. The kernels are headless
(TGKIT_HEADLESS=1) and write their figures to a temporary folder; the run cache is the shared one
(data/runs, or $TGKIT_RUNS), so that after the batch or nbval has filled it, the notebooks' stages are
read back and only what a snippet asks for anew is computed (once). Prose code that cannot run is
fenced as ```text.
"""

import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SNIPPET = re.compile(r"^```(?:python|py)[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
CELL_TIMEOUT = 300  # seconds; a smoke cell takes under 30 on 2 CPU cores
# set after a notebook's parameters cell: notebook 04 would otherwise train every stage afresh in a
# scratch folder (the smoke profile's choice); the shared run cache keeps the test cheap
OVERRIDES = {"04_colt_latency": "time_in_this_process = False"}


def snippets(markdown: str) -> list[str]:
    """The ```python blocks of a markdown cell's source, in order."""
    return SNIPPET.findall(markdown)


def with_snippets(path: Path) -> list[tuple[int, str]]:
    """(cell index, snippet) for every snippet of a notebook."""
    cells = nbformat.read(path, as_version=4).cells
    return [
        (index, block)
        for index, cell in enumerate(cells)
        if cell.cell_type == "markdown"
        for block in snippets(cell.source)
    ]


def runnable_copy(path: Path) -> nbformat.NotebookNode:
    """The notebook's code cells up to its last snippet, with every snippet as a code cell of its own
    (tagged "snippet") after its markdown cell, and `OVERRIDES` after the parameters cell."""
    notebook = nbformat.read(path, as_version=4)
    last = max(index for index, _ in with_snippets(path))
    cells = []
    for cell in notebook.cells[: last + 1]:
        if cell.cell_type == "code":
            cells.append(nbformat.v4.new_code_cell(cell.source))
            if "parameters" in cell.metadata.get("tags", []) and path.stem in OVERRIDES:
                cells.append(nbformat.v4.new_code_cell(OVERRIDES[path.stem]))
        elif cell.cell_type == "markdown":
            cells += [
                nbformat.v4.new_code_cell(block, metadata={"tags": ["snippet"]}) for block in snippets(cell.source)
            ]
    return nbformat.v4.new_notebook(cells=cells, metadata=notebook.metadata)


def test_snippets_are_found_by_their_fence_only():
    prose = "Run this:\n\n```python\nx = 1\nprint(x)\n```\n\nnot this:\n\n```text\nx = \n```\n\n```py\ny = 2\n```\n"
    assert snippets(prose) == ["x = 1\nprint(x)\n", "y = 2\n"]
    assert snippets("inline `x = 1` and ``` python` is no fence") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_snippet_is_valid_python(path):
    for index, block in with_snippets(path):
        try:
            compile(block, f"{path.name}, markdown cell {index}", "exec")
        except SyntaxError as error:
            message = f"{path.name}, markdown cell {index}: a ```python snippet that does not parse ({error})"
            pytest.fail(message + "; fence prose code that cannot run as ```text")


@pytest.mark.slow
@pytest.mark.parametrize("path", [path for path in NOTEBOOKS if with_snippets(path)], ids=lambda path: path.name)
def test_every_snippet_runs_after_the_cells_above_it(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("TGKIT_HEADLESS", "1")  # the kernel inherits this process's environment
    monkeypatch.setenv("TGKIT_FIGURES", str(tmp_path / "figures"))
    notebook = runnable_copy(path)
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.name}: a cell failed (a snippet if its source is one of the prose's):\n{error}")
    ran = [cell for cell in notebook.cells if "snippet" in cell.metadata.get("tags", [])]
    assert len(ran) == len(with_snippets(path)) and all(cell.execution_count for cell in ran)
