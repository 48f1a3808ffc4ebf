"""Notebook 06's study, "When does the teacher help?": teachers of graded strength (the snapshots of one teacher
training, `config.teacher_help`) against retraining lengths at one high sparsity, and why KD wins or loses.

    runs = plan(config)                       every pruned-and-retrained student, once (`HelpRun`)
    plan_table(experiment, runs)              the runs, whether each is cached, and what the rest costs (estimated)
    grid = run_grid(experiment, runs)         one row per run (`COLUMNS`), through the run cache
    teachers(experiment)                      each snapshot and the trained teacher, with their accuracies
    overlap_table(experiment)                 per layer: each mask's overlap with the trained teacher's mask
    entropy_table(experiment)                 the entropy of each teacher's targets under each order and T
    gradient_table(experiment)                each loss term's share of the gradient, per teacher and setting

The grid, for each teacher (every snapshot, and the trained teacher), each length E of
`teacher_help.retraining_epochs` and each seed of `teacher_help.seeds`, at `teacher_help.sparsity`:

    teacher-guided masks scored with that teacher, retrained E epochs with CE     the teacher's worth in scoring:
    magnitude masks (no teacher at all), retrained E epochs with CE               the first against this
    the same teacher-guided masks, retrained E epochs with KD from that teacher   its worth in retraining: against CE

A length is whole epochs or a fraction of one (one epoch drawing that share of the training split: the quick
profile's grid is a fifth of an epoch at most, to fit a laptop's budget). The ablation, at the trained teacher,
the grid's longest length and the first seed: KD with one ingredient of `config.kd` changed at a time
(`distillation.KD_VARIANTS`: the temperature, alpha, the order of normalising and dividing by T, and plain Hinton
KD without normalisation as the reference), beside KD as configured and CE.
"""

from __future__ import annotations

import copy
import math
import statistics
from dataclasses import asdict, dataclass, replace

import pandas as pd

from tgkit import distillation, mask_analysis, masker
from tgkit.distillation import KD_VARIANTS
from tgkit.hparams import KDConfig, RunConfig
from tgkit.losses import ORDERS, PLAIN
from tgkit.scorer import CRITERIA
from tgkit.study import snapshots
from tgkit.study.pipeline import Experiment
from tgkit.train import evaluate, predict
from tgkit.util.device import stopwatch
from tgkit.util.progress import progress_bar

TRAINED = "trained"  # the label of the trained teacher (its best-validation epoch), beside "epoch k" of a snapshot
ENTROPY_TEMPERATURES = (1.0, 2.0, 3.0, 5.0)
COLUMNS = (
    "part",
    "method",
    "teacher",
    "teacher_accuracy",
    "retraining",
    "epochs",
    "seed",
    "test_accuracy",
    "sparsity_all",
    "minutes",
    "cached",
)


@dataclass(frozen=True)
class HelpRun:
    """One pruned-and-retrained student. `teacher_epoch`: the snapshot that scores and distils (None: the trained
    teacher; for magnitude masks with CE, no teacher at all). `retraining`: "CE", "KD" (`config.kd`) or a
    variant of `distillation.KD_VARIANTS`."""

    part: str  # "grid" or "ablation"
    criterion: str
    teacher_epoch: int | None
    retraining: str
    epochs: float  # whole epochs, or a fraction of one
    seed: int

    def kd_settings(self, config: RunConfig) -> KDConfig | None:
        if self.retraining == "CE":
            return None
        return replace(config.kd, **(KD_VARIANTS[self.retraining][1] if self.retraining in KD_VARIANTS else {}))

    def options(self, config: RunConfig) -> dict:
        """The keyword arguments of `Experiment.pruned_result` and `pruned_stage` for this run."""
        kd = self.kd_settings(config)
        return dict(
            kd=kd is not None,
            seed=self.seed,
            teacher_epoch=self.teacher_epoch,
            retraining_epochs=self.epochs,
            kd_settings=kd,
        )


def snapshot_epochs(config: RunConfig) -> list[int]:
    """The epochs the teacher keeps (`snapshots.kept_epochs`), in order."""
    return list(snapshots.kept_epochs(config))


def plan(config: RunConfig) -> list[HelpRun]:
    """Every run of the grid, seed by seed, then the ablation's variants (see the module docstring), each once."""
    settings, teachers = config.teacher_help, [*snapshot_epochs(config), None]
    runs = []
    for seed in settings.seeds:
        for epochs in settings.retraining_epochs:
            runs.append(HelpRun("grid", "magnitude", None, "CE", epochs, seed))
            for teacher in teachers:
                runs += [HelpRun("grid", "teacher_guided", teacher, kd, epochs, seed) for kd in ("CE", "KD")]
    # the ablation's CE and KD runs are the grid's at the trained teacher, the longest length and the first seed
    epochs, seed = max(settings.retraining_epochs), settings.seeds[0]
    ablation = [
        HelpRun("ablation", "teacher_guided", None, name, epochs, seed)
        for name, (_, change) in KD_VARIANTS.items()
        if replace(config.kd, **change) != config.kd
    ]
    return runs + ablation


def teachers(experiment: Experiment) -> pd.DataFrame:
    """One row per teacher, weakest first: teacher ("epoch k", or "trained" for the teacher the training
    selected), teacher_epoch (None for the trained one), val_accuracy, test_accuracy."""
    rows = [
        {"teacher": label(s["epoch"]), "teacher_epoch": s["epoch"], **_accuracies(s)}
        for s in experiment.teacher_snapshots()
    ]
    trained = experiment.teacher_result()
    best = max(epoch["val_accuracy"] for epoch in trained["history"])
    rows.append({"teacher": TRAINED, "teacher_epoch": None, "val_accuracy": best, **_accuracies(trained)})
    return pd.DataFrame(rows).astype({"teacher_epoch": "Int64"})


def _accuracies(result: dict) -> dict:
    return {key: result[key] for key in ("val_accuracy", "test_accuracy") if key in result}


def label(teacher_epoch: int | None) -> str:
    return TRAINED if teacher_epoch is None else f"epoch {teacher_epoch}"


def plan_table(experiment: Experiment, runs: list[HelpRun]) -> pd.DataFrame:
    """The runs of `plan` with whether each is in the run cache, and an estimate of the minutes of the rest: each
    retraining epoch (or fraction of one) at the training seconds per epoch the dense student took (it learned
    with KD: an upper bound for CE retraining), each teacher-guided scoring epoch the same, and each run's
    evaluations (the validation split after every epoch begun, the test split at the end) at the time of one
    evaluation of the dense student (`evaluation_seconds`). `attrs["estimated_minutes"]`: their sum."""
    config, sparsity = experiment.config, experiment.config.teacher_help.sparsity
    val_seconds, test_seconds = evaluation_seconds(experiment)
    history = experiment.student_result()["history"]
    epoch_seconds = statistics.median(epoch["seconds"] for epoch in history)
    train_seconds = max(epoch_seconds - val_seconds, 0.0)  # an epoch's time includes its validation
    rows = []
    for run in runs:
        done = experiment.pruned_stage(run.criterion, sparsity, **run.options(config)).done
        seconds = run.epochs * train_seconds + math.ceil(run.epochs) * val_seconds + test_seconds
        rows.append({**asdict(run), "cached": done, "estimated_minutes": 0.0 if done else seconds / 60})
    table = pd.DataFrame(rows).astype({"teacher_epoch": "Int64"})
    unscored = [t for t in [*snapshot_epochs(config), None] if not _scored(experiment, t)]
    table.attrs["scoring_minutes"] = len(unscored) * config.scoring.epochs * epoch_seconds / 60
    table.attrs["estimated_minutes"] = table["estimated_minutes"].sum() + table.attrs["scoring_minutes"]
    return table


def evaluation_seconds(experiment: Experiment) -> tuple[float, float]:
    """(validation, test): the seconds of one pass of the dense student over each split, timed on the validation
    split and scaled to the test split's images."""
    student, data = experiment.student(), experiment.data
    with stopwatch(experiment.device) as timer:
        evaluate(student, data, "val", device=experiment.device)
    return timer.seconds, timer.seconds * len(data.test_y) / len(data.val_y)


def _scored(experiment: Experiment, teacher_epoch: int | None) -> bool:
    return experiment.scores_stage("teacher_guided", teacher_epoch=teacher_epoch).done


def run_grid(experiment: Experiment, runs: list[HelpRun], *, progress: bool = True) -> pd.DataFrame:
    """Run (or read from the run cache) every run; one row per run. Columns (`COLUMNS`): part, method (the
    criterion's label), teacher (`label`; "none" for magnitude masks retrained with CE), teacher_accuracy (its
    test accuracy; NaN for none), retraining ("CE", "KD" or a `distillation.KD_VARIANTS` variant), epochs, seed, test_accuracy,
    sparsity_all, minutes (of the stage, as the run cache timed it), cached."""
    config, accuracy = experiment.config, teachers(experiment).set_index("teacher")["test_accuracy"]
    rows = []
    with progress_bar(runs, desc="teacher help", unit="run", disable=not progress) as bar:
        for run in bar:
            result = experiment.pruned_result(run.criterion, config.teacher_help.sparsity, **run.options(config))
            teacher = (
                label(run.teacher_epoch) if run.criterion == "teacher_guided" or run.retraining != "CE" else "none"
            )
            rows.append(
                {
                    "part": run.part,
                    "method": CRITERIA[run.criterion].label,
                    "teacher": teacher,
                    "teacher_accuracy": accuracy.get(teacher, math.nan),
                    "retraining": run.retraining,
                    "epochs": run.epochs,
                    "seed": run.seed,
                    "test_accuracy": result["test_accuracy"],
                    "sparsity_all": result["sparsity_all"],
                    "minutes": result["seconds"] / 60,
                    "cached": result["cached"],
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def overlap_table(experiment: Experiment) -> pd.DataFrame:
    """How far the masks move with the teacher: per prunable layer (and over "all layers"), the Jaccard overlap of
    the weights each mask keeps with those the trained teacher's teacher-guided mask keeps, at the grid's
    sparsity. One row per (mask, layer): mask ("epoch k" for a snapshot's teacher-guided mask, "magnitude" for
    the teacher-free one), layer, overlap, kept (weights the mask keeps), weights."""
    sparsity = experiment.config.teacher_help.sparsity
    reference = experiment.masks("teacher_guided", sparsity)
    others = {
        label(epoch): experiment.masks("teacher_guided", sparsity, teacher_epoch=epoch)
        for epoch in snapshot_epochs(experiment.config)
    }
    others["magnitude"] = experiment.masks("magnitude", sparsity)
    rows = []
    for name, masks in others.items():
        for layer, keep in masks.items():
            overlap = mask_analysis.mask_overlap(keep, reference[layer])
            rows.append(
                {"mask": name, "layer": layer, "overlap": overlap, "kept": int(keep.sum()), "weights": keep.numel()}
            )
        total = {
            "overlap": mask_analysis.mask_overlap(masks, reference),
            "kept": masker.count_weights(masks) - masker.count_pruned(masks),
        }
        rows.append({"mask": name, "layer": "all layers", **total, "weights": masker.count_weights(masks)})
    return pd.DataFrame(rows)


def _teacher_models(experiment: Experiment) -> dict:
    models = {label(s["epoch"]): s["model"] for s in experiment.teacher_snapshots()}
    return {**models, TRAINED: experiment.teacher()}


def entropy_table(experiment: Experiment, temperatures: tuple[float, ...] = ENTROPY_TEMPERATURES) -> pd.DataFrame:
    """The entropy of each teacher's targets on the validation split (`distillation.target_entropy`), for each
    order ("paper", "authors", and "plain": no normalisation) and temperature. Columns: teacher, order,
    temperature, entropy (nats), entropy_fraction (entropy / log C: 1 is uniform over the C classes)."""
    data, rows = experiment.data, []
    for teacher, model in _teacher_models(experiment).items():
        logits, _ = predict(model, data, "val", device=experiment.device)
        for order in (*ORDERS, PLAIN):
            for temperature in temperatures:
                entropy = distillation.target_entropy(logits, temperature, order)
                rows.append(
                    {
                        "teacher": teacher,
                        "order": order,
                        "temperature": temperature,
                        "entropy": entropy,
                        "entropy_fraction": entropy / math.log(data.num_classes),
                    }
                )
    return pd.DataFrame(rows)


def gradient_table(experiment: Experiment) -> pd.DataFrame:
    """Each loss term's share of the gradient on the student's logits (`distillation.gradient_shares`), where
    retraining starts: the dense student under each teacher's teacher-guided mask, before any retraining, on the
    validation split. One row per teacher with `config.kd` (part "grid"), and per `distillation.KD_VARIANTS` variant at the
    trained teacher (part "ablation"). Columns: part, teacher, retraining, alpha, temperature, order, beta,
    kd_share, cosine, kd_norm, ce_norm."""
    config, models = experiment.config, _teacher_models(experiment)
    settings = [("grid", teacher, "KD", config.kd) for teacher in models]
    settings += [("ablation", TRAINED, name, replace(config.kd, **change)) for name, (_, change) in KD_VARIANTS.items()]
    dense = experiment.student()  # read once: each teacher's mask prunes a copy of it
    logits = {
        teacher: _logits_before_retraining(experiment, dense, teacher, model) for teacher, model in models.items()
    }
    rows = []
    for part, teacher, retraining, kd in settings:
        student, teacher_logits, labels = logits[teacher]
        rows.append(
            {
                "part": part,
                "teacher": teacher,
                "retraining": retraining,
                **{field: getattr(kd, field) for field in ("alpha", "temperature", "order", "beta")},
                **distillation.gradient_shares(student, teacher_logits, labels, kd),
            }
        )
    return pd.DataFrame(rows)


def _logits_before_retraining(experiment: Experiment, dense, teacher: str, model) -> tuple:
    """(student logits, teacher logits, labels) on the validation split: the dense student pruned by `teacher`'s
    teacher-guided mask at the grid's sparsity, not retrained, and the teacher."""
    epoch = None if teacher == TRAINED else int(teacher.removeprefix("epoch "))
    masks = experiment.masks("teacher_guided", experiment.config.teacher_help.sparsity, teacher_epoch=epoch)
    pruned = masker.apply_masks(copy.deepcopy(dense), masks)
    student_logits, labels = predict(pruned, experiment.data, "val", device=experiment.device)
    return student_logits, predict(model, experiment.data, "val", device=experiment.device)[0], labels
