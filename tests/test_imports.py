"""The shape of the package: no import cycles, configuration that imports no training code, and the
method's modules independent of the orchestration around them."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tgkit"
# the method and what it needs; none of them may import the orchestration (pipeline, notebooks, CLI, ...)
METHOD = {
    "tgkit.losses",
    "tgkit.scorer",
    "tgkit.masker",
    "tgkit.mask_analysis",
    "tgkit.retrainer",
    "tgkit.train",
    "tgkit.models",
    "tgkit.checkpoint",
    "tgkit.device",
    "tgkit.progress",
    "tgkit.hparams",
    "tgkit.colt",
    "tgkit.export",
    "tgkit.sparse_conv",
    "tgkit.inference",
}
MAX_LINES = 460  # "about 450": no module holds several concepts


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


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


def test_the_method_never_imports_the_orchestration():
    edges = graph()
    for name in sorted(METHOD):
        outside = {target for target in edges[name] if target not in METHOD and not target.startswith("tgkit.data")}
        assert not outside, f"{name} imports {sorted(outside)}"


def test_importing_the_configuration_imports_no_training_code():
    code = (
        "import sys, tgkit.hparams; heavy = [m for m in ('torch', 'tgkit.train', 'tgkit.pipeline', 'numpy') "
        "if m in sys.modules]; print(heavy)"
    )
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "[]"


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_over_about_450_lines(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concept"
