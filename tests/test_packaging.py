"""The kit as a user installs it: a wheel, installed without the editable link to this checkout, must
ship every module of tgkit/ and import each one; run outside any checkout, it reads and writes in
the user folder, not in the folder it was installed in.

The venv holds an editable install of this checkout (a .pth file and an import hook), which would
answer every import in place of the wheel. The installed copy is therefore imported by `python -S`,
which reads no .pth file, with the wheel's folder first on its path and the venv's packages (torch,
pandas, ...) after it; the test also checks that every module came from the wheel's folder.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Run in the installed copy: every module of tgkit imported (the __main__ modules, which run a command
# line, only found), then where the kit would read and write by default.
PROBE = """
import importlib, json, pkgutil, sys
import tgkit
names = {"tgkit"} | {module.name for module in pkgutil.walk_packages(tgkit.__path__, "tgkit.")}
files = {name: importlib.import_module(name).__file__ for name in sorted(names) if not name.endswith("__main__")}
from tgkit import report
from tgkit.util import errors, locations
try:
    locations.notebooks_dir()
    notebooks = "found"
except errors.InputError as error:
    notebooks = str(error)
print(json.dumps({
    "modules": sorted(names),
    "files": files,
    "checkout": str(locations.checkout()),
    "data": str(locations.data_dir()),
    "runs": str(locations.runs_dir()),
    "figures": str(locations.figures_root()),
    "notebooks": notebooks,
    "commit": report.git_commit(),
}))
"""


def checkout_modules() -> set[str]:
    """Every module of the checkout's tgkit/, by its dotted name (a package by its folder's)."""
    names = set()
    for path in (REPO / "tgkit").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def pip(*arguments: str, cwd: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A wheel of this checkout, installed (no dependencies, no network) into a folder of its own.

    The wheel is built from a copy of the sources, so that the build leaves no build/ or egg-info
    behind in the checkout."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "tgkit", source / "tgkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(work / "wheels"), str(source), cwd=work)
    (wheel,) = (work / "wheels").glob("tgkit-*.whl")
    pip("install", "--no-deps", "--no-index", "--target", str(work / "site"), str(wheel), cwd=work)
    return work


@pytest.fixture(scope="module")
def probe(installed: Path) -> dict:
    """What the installed copy reports, run in a folder outside any checkout."""
    venv_packages = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(installed / "home"),
        "XDG_DATA_HOME": str(installed / "xdg"),
        "TGKIT_GIT_COMMIT": "0123456789abcdef",
        "PYTHONPATH": os.pathsep.join([str(installed / "site"), *venv_packages]),
    }
    finished = subprocess.run(
        [sys.executable, "-S", "-c", PROBE],
        cwd=installed,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.splitlines()[-1])


@pytest.mark.slow
def test_the_wheel_ships_every_module_of_the_checkout(probe):
    assert set(probe["modules"]) == checkout_modules()
    assert "tgkit.util.locations" in probe["modules"] and "tgkit.study.batch" in probe["modules"]


@pytest.mark.slow
def test_every_module_imports_from_the_installed_copy_not_the_checkout(probe, installed):
    site = installed / "site" / "tgkit"
    elsewhere = {name: file for name, file in probe["files"].items() if not Path(file).is_relative_to(site)}
    assert elsewhere == {}
    assert len(probe["files"]) == len(probe["modules"]) - 2  # all but tgkit.__main__ and tgkit.bench.__main__


@pytest.mark.slow
def test_outside_a_checkout_the_installed_kit_uses_the_user_folder(probe, installed):
    user = installed / "xdg" / "tgkit"
    assert probe["checkout"] == "None"
    assert probe["data"] == str(user / "data")
    assert probe["runs"] == str(user / "data" / "runs")
    assert probe["figures"] == str(user / "figures")
    assert "checkout of the kit" in probe["notebooks"]
    assert probe["commit"] == "0123456789abcdef"  # no checkout: the variable names the commit
