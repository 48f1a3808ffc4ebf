"""`tgkit.study.notebook.check_parameters`: a notebook parameter of the wrong type (papermill's
`-p sparsity abc` gives the string "abc", which failed later with "Unknown format code '%'") is refused
in one line naming the parameter, what it got and what it takes; every notebook calls it first, with
each of its parameters, whose defaults fit `notebook.PARAMETERS`. (The notebooks as files: test_notebooks.py.)"""

import ast
from pathlib import Path

import nbformat
import pytest

from tgkit.study import notebook
from tgkit.util.errors import InputError

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize(
    "given, message",
    [
        (
            {"sparsity": "abc"},
            "notebook parameter sparsity got 'abc' (str) but takes a number; set it in the parameters cell, "
            "or with papermill: -p sparsity 0.9",
        ),
        ({"seed": 1.5}, "notebook parameter seed got 1.5 (float) but takes a whole number;"),
        ({"seed": True}, "notebook parameter seed got True (bool) but takes a whole number;"),
        ({"settings": "sweep=(0.9,)"}, "notebook parameter settings got 'sweep=(0.9,)' (str) but takes a list;"),
        ({"time_in_this_process": "no"}, "got 'no' (str) but takes True or False or None;"),
    ],
)
def test_a_parameter_of_the_wrong_type_is_refused_by_name(given, message):
    with pytest.raises(InputError) as refused:
        notebook.check_parameters(profile="smoke", **given)
    assert message in str(refused.value), str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_number_where_a_float_is_taken_and_none_where_none_is_are_fine():
    notebook.check_parameters(sparsity=1, target_sparsity=0.9, time_in_this_process=None, settings=["seeds=(0,)"])


def parameters_and_check(path: Path) -> tuple[dict, ast.Call]:
    """The notebook's parameters (name: default) and the `notebook.check_parameters(...)` call of its first
    code cell after them."""
    cells = nbformat.read(path, as_version=4).cells
    index = next(i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", []))
    defaults = {}
    exec(cells[index].source, {}, defaults)
    following = next(cell for cell in cells[index + 1 :] if cell.cell_type == "code")
    calls = [
        node
        for node in ast.walk(ast.parse(following.source))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "notebook.check_parameters"
    ]
    assert len(calls) == 1, f"{path.name}: its first code cell after the parameters calls check_parameters once"
    return defaults, calls[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_notebook_checks_each_of_its_parameters_first(path):
    defaults, call = parameters_and_check(path)
    assert [(keyword.arg, ast.unparse(keyword.value)) for keyword in call.keywords] == [
        (name, name) for name in defaults
    ], f"{path.name}: pass every parameter, as name=name, in the parameters cell's order"
    assert set(defaults) <= set(notebook.PARAMETERS), f"{path.name}: record each parameter's type in PARAMETERS"
    eval(compile(ast.Expression(call), path.name, "eval"), {"notebook": notebook}, defaults)  # the defaults fit
