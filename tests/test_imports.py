"""The shape of the package: its layers, no import cycles, configuration that imports no training code,
and modules of one concept each.

The layers, bottom up (`tgkit/__init__.py` draws them):

    util     tgkit.util (atomic files, the device, progress bars, errors, flags, default folders) and tgkit.hparams
    method   the modules at the top of tgkit/ (losses, scorer, masker, train, ...) and tgkit.data
    deploy   tgkit.deploy: the sparse export, sparse kernels, CPU inference
    report   tgkit.report: every figure and table, and the paper's numbers
    study    tgkit.study: run cache, pipeline, sweep and its jobs, notebooks, batch, command line
    bench    tgkit.bench: throughput, the plan of a profile, the authors' loop

A module imports from its own layer and from layers below it only, with one exception spelled out in
`MAY_IMPORT`: bench stands beside study and reads the sweep's plan.
"""

import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tgkit"
LAYERS = ("util", "method", "deploy", "report", "study", "bench")
# what each layer may import besides itself
MAY_IMPORT = {
    "util": set(),
    "method": {"util"},
    "deploy": {"util", "method"},
    "report": {"util", "method", "deploy"},
    "study": {"util", "method", "deploy", "report"},
    "bench": {"util", "method", "deploy", "report", "study"},
}
# Statements, not prose: docstrings, comments and blank lines are not counted, so documentation never
# has to be trimmed to fit. 350 is the largest module of one concept today (the pipeline, about 340
# code lines) with a little room; a module past it is holding a second concept.
MAX_CODE_LINES = 350


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    """The layer of a module of the kit (see the module docstring)."""
    if module == "tgkit.hparams" or module.startswith("tgkit.util"):
        return "util"
    if module == "tgkit.__main__":  # `python -m tgkit`: the study's command line
        return "study"
    for package in ("deploy", "report", "study", "bench"):
        if module == f"tgkit.{package}" or module.startswith(f"tgkit.{package}."):
            return package
    return "method"


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The kit's modules that `path` imports, anywhere in it (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found - {module_name(path)}


def graph() -> dict[str, set[str]]:
    found = modules()
    edges = {name: imports_of(path, set(found)) for name, path in found.items()}
    # a package's __init__ re-exports its modules: importing tgkit.data means importing all of them
    return {name: targets - ({name.rsplit(".", 1)[0]} if "." in name else set()) for name, targets in edges.items()}


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    return [
        f"{name} ({layer(name)}) imports {target} ({layer(target)})"
        for name, targets in sorted(edges.items())
        for target in sorted(targets)
        if layer(target) != layer(name) and layer(target) not in MAY_IMPORT[layer(name)]
    ]


def test_every_module_imports_only_its_own_layer_and_those_below():
    assert layer_violations(graph()) == []


def test_the_layer_rule_catches_a_method_that_imports_the_study_and_a_figure_that_imports_the_jobs():
    edges = {
        "tgkit.scorer": {"tgkit.study.pipeline", "tgkit.util.progress"},
        "tgkit.report.sweep": {"tgkit.study.jobs", "tgkit.report.paper"},
        "tgkit.util.device": {"tgkit.hparams"},
    }
    assert layer_violations(edges) == [
        "tgkit.report.sweep (report) imports tgkit.study.jobs (study)",
        "tgkit.scorer (method) imports tgkit.study.pipeline (study)",
    ]


def test_every_module_has_a_known_layer():
    assert {layer(name) for name in modules()} == set(LAYERS)


def test_no_import_cycles_in_tgkit():
    edges = graph()
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "visiting"
        for target in sorted(edges.get(name, ())):
            if state.get(target) == "visiting":
                cycle = path[path.index(target) :] + [target] if target in path else [name, target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])


def test_the_cycle_check_finds_a_cycle(monkeypatch):
    monkeypatch.setitem(globals(), "graph", lambda: {"a": {"b"}, "b": {"c"}, "c": {"a"}})
    with pytest.raises(pytest.fail.Exception, match="a -> b -> c -> a"):
        test_no_import_cycles_in_tgkit()


def loaded_after(statement: str, watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` a fresh interpreter has loaded after running `statement`."""
    code = f"import sys; {statement}; print([m for m in {watched!r} if m in sys.modules])"
    return ast.literal_eval(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )


def test_importing_the_configuration_imports_no_training_code():
    assert loaded_after("import tgkit.hparams", ("torch", "tgkit.train", "tgkit.study.pipeline", "numpy")) == []


def test_the_batch_the_notebooks_and_the_benchmark_load_no_job_machinery():
    """The GPU bundle carries no submitit: the batch, what the notebooks import (figures, the sweep's plan)
    and the benchmark with its plan must not need it; only `python -m tgkit sweep` does."""
    notebooks_and_batch = "tgkit.study.batch, tgkit.study.notebook, tgkit.study.sweep, tgkit.report.sweep"
    statement = f"import {notebooks_and_batch}, tgkit.report.latency, tgkit.bench.cli, tgkit.study.cli"
    assert loaded_after(statement, ("submitit", "tgkit.study.jobs")) == []


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings |= set(range(first.lineno, first.end_lineno + 1))
    prose = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    code = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in prose:
            code |= set(range(token.start[0], token.end[0] + 1))
    return len(code - docstrings)


def test_code_lines_count_statements_not_prose():
    source = '"""A module.\n\nIts docstring."""\n\n# a comment\nx = 1  # trailing\n\n\ndef f():\n    """Doc."""\n    return (\n        x\n    )\n'
    assert code_lines(source) == 5  # x = 1, def f():, and the three lines of the return


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_holds_more_than_one_concepts_worth_of_code(name):
    lines = code_lines(modules()[name].read_text())
    assert lines <= MAX_CODE_LINES, f"{name} has {lines} lines of code: split it by concept"


def test_the_readmes_module_tables_describe_every_module():
    """The README's tables of the tree name every module: top-level ones by path, those of a package in
    the package's row (`tgkit/study/` ... `runcache` ...)."""
    readme = (PACKAGE.parent / "README.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in readme.splitlines() if line.startswith("| `tgkit/")}
    missing = []
    for name, path in modules().items():
        relative = path.relative_to(PACKAGE)
        if relative.name in ("__init__.py", "__main__.py"):
            continue
        if len(relative.parts) == 1:
            found = f"`tgkit/{relative.name}`" in readme
        else:
            row = rows.get(f"tgkit/{relative.parts[0]}/", "")
            found = f"`{relative.stem}`" in row
        if not found:
            missing.append(name)
    assert missing == []
