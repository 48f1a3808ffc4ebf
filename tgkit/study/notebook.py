"""What every notebook does first and last, one call each.

    run = notebook.start("01_teacher_training", profile, dataset, seed, cpu_threads=cpu_threads)
    with run.clock("teacher"):
        teacher = run.experiment.teacher_result()
    run.save_figure(figure, "01_learning_curves")        PNG and PDF, its provenance printed under it
    run.save_table(table, "01_history")                  CSV
    run.finish(sparsity=0.9)                             the manifest, with whatever else it should record

Before it, `check_parameters(profile=profile, ...)` refuses a parameter of the wrong type (papermill's
`-p sparsity abc` gives the string "abc") in one line that names it, what it got and what it takes.

`start` sets torch's CPU threads (before the run cache keys anything by them), builds the profile's
configuration and its `pipeline.Experiment`, and prints what the notebook runs on and where its
figures go (`figures/<profile>/<dataset>/`). `finish` writes `<notebook>.manifest.json` there: git
commit, package versions, device (and what changes its numbers: threads, bf16 units, the autocast
of training), profile, seed, the configuration, the wall-clock of every step of
the notebook, and every pipeline stage it used (computed now or read from the run cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from tgkit import hparams, report
from tgkit.hparams import RunConfig
from tgkit.study.pipeline import Experiment
from tgkit.util import flags
from tgkit.util.device import numerics, precision_name
from tgkit.util.errors import InputError

# What each notebook parameter takes: the type of its default in the notebooks' `parameters` cells (None:
# None is taken too), and a value of it for papermill's command line. tests/test_notebook.py holds every
# parameters cell to this table.
PARAMETERS = {
    "profile": (str, "-p profile quick"),
    "dataset": (str, "-p dataset cifar10"),
    "seed": (int, "-p seed 1"),
    "cpu_threads": (int, "-p cpu_threads 1"),
    "sparsity": (float, "-p sparsity 0.9"),
    "target_sparsity": (float, "-p target_sparsity 0.977"),
    "include_lth": (bool, "-p include_lth True"),
    "time_in_this_process": ((bool, None), "-p time_in_this_process True"),
    "settings": (list, "-y \"settings: ['sweep=(0.9,)']\""),
}
_WORDS = {str: "a string", int: "a whole number", float: "a number", bool: "True or False", list: "a list"}


@dataclass
class NotebookRun:
    """One notebook's run: its configuration, experiment, output folder and clock."""

    notebook: str
    config: RunConfig
    experiment: Experiment
    folder: Path
    clock: report.StageClock

    @property
    def source(self) -> str:
        """The provenance line printed under every figure: commit, profile, dataset, device."""
        return report.provenance(self.config.profile, self.config.dataset, self.experiment.device_name)

    def save_figure(self, figure, name: str) -> list[Path]:
        return report.save_figure(figure, self.folder, name, source=self.source)

    def save_table(self, table: pd.DataFrame, name: str) -> Path:
        return report.save_table(table, self.folder, name)

    def finish(self, **extra) -> Path:
        """Write the manifest (with `extra` recorded in it) and print where."""
        c = self.config
        manifest = report.write_manifest(
            self.folder,
            f"{self.notebook}.ipynb",
            profile=c.profile,
            dataset=c.dataset,
            seed=c.seed,
            device=self.experiment.device_name,
            clock=self.clock,
            config=c,
            numerics=numerics(self.experiment.device),
            training_precision=precision_name(self.experiment.device, c.student_training.precision),
            pipeline_stages=self.experiment.timings,
            **extra,
        )
        print(f"manifest written to {manifest}")
        return manifest


def _fits(value: object, kind: type | None) -> bool:
    if kind is None:
        return value is None
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, kind)


def check_parameters(**parameters: object) -> None:
    """Refuse a notebook parameter whose value is not of its default's type (`PARAMETERS`), naming it,
    what it got and what it takes; every notebook calls it first, with each of its parameters."""
    for name, value in parameters.items():
        if name not in PARAMETERS:
            raise TypeError(f"check_parameters: no type is recorded for {name!r}; add it to notebook.PARAMETERS")
        takes, example = PARAMETERS[name]
        kinds = takes if isinstance(takes, tuple) else (takes,)
        if any(_fits(value, kind) for kind in kinds):
            continue
        words = " or ".join(_WORDS[kind] if kind else "None" for kind in kinds)
        raise InputError(
            f"notebook parameter {name} got {value!r} ({type(value).__name__}) but takes {words}; "
            f"set it in the parameters cell, or with papermill: {example}"
        )


def start(
    notebook: str,
    profile: str,
    dataset: str,
    seed: int,
    *,
    cpu_threads: int = 0,
    settings: list[str] | tuple[str, ...] = (),
    runs_dir: str | Path | None = None,
    progress: bool = True,
) -> NotebookRun:
    """Set up a notebook's run (see the module docstring); `cpu_threads` 0 keeps torch's default;
    `settings`: "KEY=VALUE" strings applied to the profile, as `python -m tgkit run --set` takes them."""
    if cpu_threads:
        torch.set_num_threads(cpu_threads)
    config = flags.apply_settings(hparams.profile(profile, dataset, seed=seed), list(settings))
    experiment = Experiment(config, runs_dir=runs_dir, progress=progress)
    run = NotebookRun(
        notebook, config, experiment, report.figures_dir(profile, dataset), report.StageClock(experiment.device)
    )
    print(f"profile {profile}, dataset {dataset}, seed {seed}, device {experiment.device_name}")
    print(
        f"teacher {config.teacher.arch} (width {config.teacher.width}), "
        f"student {config.student.arch} (width {config.student.width})"
    )
    print(f"figures and tables go to {run.folder}")
    print(report.dataset_note(dataset) or "(no caveat about this copy of the data)")
    return run
