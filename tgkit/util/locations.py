"""Where the kit reads and writes by default: datasets, the run cache, figures, the notebooks.

The defaults follow the user, not the installed package. A command that runs inside a checkout of the
kit (a folder whose `pyproject.toml` names the project tgkit, found by walking up from the working
directory) uses that checkout's folders; the notebooks run with their working directory in
`notebooks/`, so they find the checkout too. A command that runs anywhere else, with the kit
installed, uses a folder of the user's own. Never the folder the package's code lies in: an installed
kit would write into site-packages, and a second checkout sharing one environment into the first.

    root            the checkout, else the user folder: $XDG_DATA_HOME/tgkit, else ~/.local/share/tgkit
    data_dir        datasets and their decoding cache      $TGKIT_DATA, else <root>/data
    runs_dir        the run cache                          $TGKIT_RUNS, else <data dir>/runs
    figures_root    figures, tables and manifests          $TGKIT_FIGURES, else <root>/figures
    notebooks_dir   the notebooks: <checkout>/notebooks; they ship with a checkout, not with the package
    code_checkout   the checkout whose source is running (an editable install), whose commit a manifest records

An environment variable always wins, set or not in a checkout ("~" is expanded; an empty one counts as
unset). Every function looks again when called: nothing is fixed at import time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tgkit.util.errors import InputError

PROJECT_FILE = "pyproject.toml"
# The line `name = "tgkit"` of a pyproject.toml: a regular expression, not a TOML parser, since Python 3.10
# has none in its standard library (tomllib came in 3.11), and pyproject.toml gives the name a line of its own.
_NAMES_THE_KIT = re.compile(r"""^\s*name\s*=\s*["']tgkit["']\s*$""", re.MULTILINE)


def checkout(start: str | Path | None = None) -> Path | None:
    """The checkout of the kit that `start` (default: the working directory) lies in, or None.

    Walks up from `start` to the first folder holding a pyproject.toml that names the project tgkit."""
    folder = Path.cwd() if start is None else Path(start).resolve()
    for candidate in (folder, *folder.parents):
        if _names_the_kit(candidate / PROJECT_FILE):
            return candidate
    return None


def user_folder() -> Path:
    """The folder of the kit's data outside any checkout: $XDG_DATA_HOME/tgkit, else ~/.local/share/tgkit
    (the XDG base directory convention: where Linux desktops keep programs' data)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "tgkit"


def root() -> Path:
    """The folder the default data, run cache and figures lie under: the checkout, else the user folder."""
    return checkout() or user_folder()


def data_dir() -> Path:
    """Datasets and their decoding cache: $TGKIT_DATA, else `<root>/data`."""
    return _from_environment("TGKIT_DATA") or root() / "data"


def runs_dir() -> Path:
    """The run cache: $TGKIT_RUNS, else `runs/` in the data folder."""
    return _from_environment("TGKIT_RUNS") or data_dir() / "runs"


def figures_root() -> Path:
    """Where figures, tables and manifests go, as `<profile>/<dataset>/`: $TGKIT_FIGURES, else `<root>/figures`."""
    return _from_environment("TGKIT_FIGURES") or root() / "figures"


def notebooks_dir() -> Path:
    """The checkout's `notebooks/`; an InputError outside a checkout, since the package ships no notebooks."""
    found = checkout()
    if found is None:
        raise InputError(
            f"the notebooks belong to a checkout of the kit, and {Path.cwd()} is in none: clone the kit's "
            "repository and run the command inside it (or name the notebooks by path)"
        )
    return found / "notebooks"


def code_checkout() -> Path | None:
    """The checkout whose `tgkit/` is the package running now (an editable install, or the source run in
    place), or None for an installed copy: the code that made a result, whatever folder the command ran in."""
    package = Path(__file__).resolve().parents[1]
    found = checkout(package)
    return found if found is not None and (found / "tgkit").resolve() == package else None


def _from_environment(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def _names_the_kit(pyproject: Path) -> bool:
    try:
        return bool(_NAMES_THE_KIT.search(pyproject.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):  # absent, a folder, unreadable: not the kit's
        return False
