"""The notebooks as files: valid, committed without outputs, one `parameters` cell of literals that
papermill reads with their help, and a git filter that keeps outputs out of commits. (What the
notebooks compute with is tested module by module: test_report_*.py, test_mask_analysis.py; the
notebooks are run by test_batch.py and nbval.)"""

import ast
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_committed_clean(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: clear the outputs before committing"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_has_one_parameters_cell_of_smoke_literals(path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    assert tagged[0].cell_type == "code"
    values = {}
    for statement in ast.parse(tagged[0].source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, (
            f"{path.name}: the parameters cell may only assign literals, one name per line"
        )
        values[statement.targets[0].id] = ast.literal_eval(statement.value)
    # nbval runs the notebooks with these literals, and the batch injects these names
    assert {"profile": "smoke", "dataset": "digits", "seed": 0}.items() <= values.items()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_papermill_reads_every_parameter_with_its_help(path):
    """papermill skips, with a warning, a parameter line holding a second "=" (in its comment too)."""
    from papermill.translators import PythonTranslator

    notebook = nbformat.read(path, as_version=4)
    cell = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    assigned = [line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line]
    parsed = PythonTranslator.inspect(cell)
    assert [parameter.name for parameter in parsed] == assigned
    assert all(parameter.help for parameter in parsed), f"{path.name}: say what each parameter is for"


def test_git_sees_notebooks_without_their_outputs_once_the_filter_is_set(tmp_path):
    """What `make lab` sets up: outputs autosaved into a notebook leave `git diff` clean, `git add` stages
    nothing, and the commit keeps the notebook without outputs."""
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "scripts").mkdir()
    shutil.copy(repo / "scripts" / "strip_notebook_outputs.sh", tmp_path / "scripts")
    shutil.copy(repo / ".gitattributes", tmp_path)
    notebook = tmp_path / "02.ipynb"
    shutil.copy(NOTEBOOKS[1], notebook)

    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("config", "user.email", "test@example.org")
    git("config", "user.name", "test")
    subprocess.run(
        ["bash", "scripts/strip_notebook_outputs.sh", sys.executable], cwd=tmp_path, check=True, capture_output=True
    )
    git("add", ".")
    git("commit", "-q", "-m", "clean notebook")
    executed = nbformat.read(notebook, as_version=4)
    code = next(cell for cell in executed.cells if cell.cell_type == "code")
    code.execution_count = 7
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="trained in 2 minutes\n")]
    nbformat.write(executed, notebook)
    assert "trained in 2 minutes" in notebook.read_text()  # JupyterLab's autosave wrote the outputs
    assert git("diff") == ""
    git("add", "-A")  # stages nothing: the filtered notebook is the committed one
    assert git("diff", "--cached") == "" and git("status", "--porcelain") == ""
    assert git("show", "HEAD:02.ipynb") == NOTEBOOKS[1].read_text()  # the committed notebook: as it was
