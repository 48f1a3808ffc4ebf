"""What every notebook does first and last, one call each.

    run = notebook.start("01_teacher_training", profile, dataset, seed, cpu_threads=cpu_threads)
    with run.clock("teacher"):
        teacher = run.experiment.teacher_result()
    run.save_figure(figure, "01_learning_curves")        PNG and PDF, its provenance printed under it
    run.save_table(table, "01_history")                  CSV
    run.finish(sparsity=0.9)                             the manifest, with whatever else it should record

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
