"""The command line's table of a whole run (`python -m tgkit run`): `Experiment.summary_table` calls it.

    summary_table(experiment, sparsities, over="all")

One row per network: the teacher, the dense student, the teacher-guided student with KD and without KD at
each sparsity, and the magnitude and random baselines (KD retraining) at the first sparsity, every one
through the experiment's run cache.
"""

from __future__ import annotations

import pandas as pd

from tgkit import scorer

COLUMNS = ("method", "retraining", "sparsity_all", "sparsity_prunable", "test_accuracy", "minutes")


def summary_table(experiment, sparsities: tuple[float, ...] | None = None, *, over: str = "all") -> pd.DataFrame:
    """For `experiment`, a `pipeline.Experiment` (which calls this from `Experiment.summary_table`): teacher, dense student, teacher-guided with and without KD at each of `sparsities` (None: the
    configuration's), and the magnitude and random baselines (KD retraining) at the first sparsity.
    Columns (`COLUMNS`): method, retraining ("KD", "CE", "-"), sparsity_all, sparsity_prunable,
    test_accuracy, minutes (of the stage, as the run cache timed it)."""
    config = experiment.config
    sparsities = sparsities or config.sparsities
    experiment.check_requests(sparsities, over=over)
    rows = []

    def row(method: str, kd: str, result: dict, sparsity_all: float, sparsity_prunable: float) -> None:
        rows.append(
            {
                "method": method,
                "retraining": kd,
                "sparsity_all": sparsity_all,
                "sparsity_prunable": sparsity_prunable,
                "test_accuracy": result["test_accuracy"],
                "minutes": result["seconds"] / 60,
            }
        )

    row(f"teacher ({config.teacher.arch})", "-", experiment.teacher_result(), 0.0, 0.0)
    row(f"dense student ({config.student.arch})", "-", experiment.student_result(), 0.0, 0.0)
    runs = [("teacher_guided", s, kd) for s in sparsities for kd in (True, False)]
    runs += [(criterion, sparsities[0], True) for criterion in ("magnitude", "random")]
    for criterion, sparsity, kd in runs:
        result = experiment.pruned_result(criterion, sparsity, kd=kd, over=over)
        label = scorer.criterion(criterion).label
        row(label, "KD" if kd else "CE", result, result["sparsity_all"], result["sparsity_prunable"])
    return pd.DataFrame(rows, columns=list(COLUMNS))
