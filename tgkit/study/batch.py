"""Run the notebooks headless, in name order: `python -m tgkit batch --profile smoke --dataset digits`.

Each notebook of the checkout's `notebooks/` (`tgkit.util.locations`: the notebooks ship with a
checkout, not with the package) runs with papermill in a fresh kernel, its working directory
`notebooks/`, with `profile`, `dataset` and `seed` injected after its `parameters` cell. The
executed copies, with every output, go to `<figures>/<profile>/<dataset>/executed/` beside the
figures, tables and manifests the notebooks write; `notebooks/` itself is left untouched. The
notebooks share the run cache ($TGKIT_RUNS, else the checkout's `data/runs`), so a stage trained by
one notebook is read by the next. The kernels run with TGKIT_HEADLESS=1: no frontend watches them,
so they draw no widgets (`tgkit.util.progress`). The first notebook that fails, or a cell that outlives
`--cell-timeout`, stops the batch with exit status 1 and the failing cell's error; its executed copy
shows where.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from unittest import mock

import pandas as pd
import papermill
import torch
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.exceptions import PapermillExecutionError

from tgkit import hparams, report
from tgkit.util import locations, progress
from tgkit.util.errors import InputError, TgkitError, run_command

KERNEL = "python3"  # the kernelspec ipykernel installs into the venv; jupyter_client runs it with this python
# the kernel's own log (not the cells' output) only from errors up: its start-up warnings would break the progress lines
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
WALL_CLOCK_TABLE = "batch_wall_clock"  # notebook, seconds, status: one row per notebook run


class NotebookFailed(TgkitError):
    """A notebook raised an error; the message names the notebook, the failing cell and the traceback."""


def default_profile() -> str:
    """ "full" on a machine with a CUDA GPU, else "quick"."""
    return "full" if torch.cuda.is_available() else "quick"


def find_notebooks(names: list[str] | None = None) -> list[Path]:
    """The notebooks to run, in name order: all of the checkout's `notebooks/`, or those `names` give (a
    path, or a name in `notebooks/` with or without ".ipynb"). Only paths work outside a checkout."""
    if not names:
        return sorted(locations.notebooks_dir().glob("*.ipynb"))
    found = []
    for name in names:
        path = Path(name)
        found.append((path if _is_notebook(path) else _in_notebooks_folder(name)).resolve())
    return sorted(found, key=lambda path: path.name)


def _in_notebooks_folder(name: str) -> Path:
    folder = locations.notebooks_dir()
    path = next((path for path in (folder / name, folder / f"{name}.ipynb") if _is_notebook(path)), None)
    if path is None:
        available = ", ".join(notebook.stem for notebook in sorted(folder.glob("*.ipynb")))
        raise InputError(f"no notebook {name!r}; notebooks/ holds {available or 'none'}")
    return path


def _is_notebook(path: Path) -> bool:
    return path.suffix == ".ipynb" and path.is_file()


def run_notebooks(
    notebooks: list[Path],
    *,
    profile: str,
    dataset: str,
    seed: int = 0,
    figures_root: str | Path | None = None,
    cell_timeout: int | None = None,
) -> Path:
    """Execute `notebooks` one after the other; returns the folder of the executed copies.

    Prints one line per notebook with its wall-clock, and writes them (notebook, seconds, status) to
    `batch_wall_clock.csv` beside the figures, also when a notebook fails. The first notebook that
    fails, or the first cell that runs longer than `cell_timeout` seconds (None: no limit), raises
    `NotebookFailed` after the notebook's executed copy is written.
    """
    # The kernels run in the notebooks' folder, not here: the figures root is passed on, so that their
    # figures land beside the executed copies wherever either working directory lies.
    root = Path(figures_root or locations.figures_root()).resolve()
    environment = {progress.HEADLESS_VARIABLE: "1", "TGKIT_FIGURES": str(root)}
    folder = report.figures_dir(profile, dataset, root)
    executed = folder / "executed"
    executed.mkdir(exist_ok=True)
    wall_clock = []

    def record(notebook: Path, started: float, status: str) -> float:
        seconds = time.perf_counter() - started
        wall_clock.append({"notebook": notebook.name, "seconds": seconds, "status": status})
        report.save_table(pd.DataFrame(wall_clock), folder, WALL_CLOCK_TABLE)
        return seconds

    parameters = {"profile": profile, "dataset": dataset, "seed": seed}
    print(
        f"running {len(notebooks)} notebook(s), profile {profile}, dataset {dataset}, seed {seed}; "
        f"executed copies in {executed}",
        flush=True,
    )
    with mock.patch.dict(os.environ, environment):
        for number, notebook in enumerate(notebooks, 1):
            print(f"[{number}/{len(notebooks)}] {notebook.name} ...", end=" ", flush=True)
            started = time.perf_counter()
            try:
                # coalesce_streams keeps the last state of each text progress bar, not every redraw
                papermill.execute_notebook(
                    notebook,
                    executed / notebook.name,
                    parameters=parameters,
                    kernel_name=KERNEL,
                    extra_arguments=KERNEL_ARGUMENTS,
                    cwd=notebook.parent,
                    progress_bar=False,
                    coalesce_streams=True,
                    execution_timeout=cell_timeout,
                )
            except (PapermillExecutionError, CellTimeoutError, DeadKernelError) as error:
                print(f"FAILED after {record(notebook, started, 'failed'):.1f} s", flush=True)
                # a cell's own error carries its source; a timeout's or a dead kernel's message names the cell
                what = (
                    f"failed in this cell:\n\n{error.source}\n{error}"
                    if isinstance(error, PapermillExecutionError)
                    else f"{error}"
                )
                raise NotebookFailed(
                    f"{notebook.name} {what}\nThe executed copy, {executed / notebook.name}, shows the cell in place."
                ) from error
            print(f"{record(notebook, started, 'ok'):.1f} s", flush=True)
    return executed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tgkit batch",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile",
        choices=list(hparams.PROFILES),
        default=default_profile(),
        help="default: full with a CUDA GPU, else quick (now: %(default)s)",
    )
    parser.add_argument("--dataset", help="default: the profile's (digits for smoke, else cifar10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--notebooks",
        nargs="+",
        metavar="NOTEBOOK",
        help="run only these (names in notebooks/ or paths); default: every notebook in notebooks/",
    )
    parser.add_argument(
        "--figures-root",
        metavar="DIR",
        help="write figures, tables, manifests and executed copies under DIR/<profile>/<dataset>/ "
        "(default: $TGKIT_FIGURES, else figures/ of the checkout you run in)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=int,
        metavar="SECONDS",
        help="fail a cell that runs longer than this (default: no limit; a full-profile cell trains for hours)",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of a handled error too")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status 0, 1 when a notebook failed (its error printed), 2 for a kit error such as an unknown notebook."""
    args = _parser().parse_args(argv)
    failed = []

    def command() -> None:
        dataset = args.dataset or hparams.DEFAULT_DATASETS[args.profile]
        notebooks = find_notebooks(args.notebooks)
        if not notebooks:
            raise InputError(f"no notebooks in {locations.notebooks_dir()}")
        started = time.perf_counter()
        try:
            executed = run_notebooks(
                notebooks,
                profile=args.profile,
                dataset=dataset,
                seed=args.seed,
                figures_root=args.figures_root,
                cell_timeout=args.cell_timeout,
            )
        except NotebookFailed as failure:
            print(f"\nerror: {failure}", file=sys.stderr)
            failed.append(failure)
            return
        seconds = time.perf_counter() - started
        print(f"all {len(notebooks)} notebook(s) ran in {seconds:.1f} s; executed copies in {executed}")

    status = run_command(command, debug=args.debug)
    return 1 if failed else status
