"""The paper's reference numbers, as small tables that name their source.

These are what the authors reported (docs/method.md section 9), not anything this kit measured.
Each function returns a fresh DataFrame (so nobody can edit the reference by accident) with
`attrs["source"]` saying where its numbers come from. Sparsities are fractions of all weights
(conv + BatchNorm gamma + fc), accuracies are test accuracies in percent, as in the paper.

    headline()              the paper's headline table: CIFAR-10, CIFAR-100, TinyImageNet at high and ~50% sparsity
    cifar10_sweep()         the CIFAR-10 sweep of the authors' run logs: no KD, KD T=3, KD T=5
    cifar10_dense()         the dense teacher and student of those logs
    tinyimagenet_sweep()    the TinyImageNet sweep (64 px upsampled to 224)
    tinyimagenet_dense()    its dense student
    latency()               minutes of one-shot pruning (its KD retraining alone) against COLT

`sweep(dataset)` and `dense(dataset)` pick the sweep by the kit's dataset name, or return None where
the paper has none (digits, CIFAR-100 beyond the headline, image folders).
"""

from __future__ import annotations

import math

import pandas as pd

PAPER = (
    "Alim et al., Teacher-Guided One-Shot Pruning via Context-Aware Knowledge Distillation, "
    "IEEE BigData 2025, arXiv 2511.16653"
)
SETUP = "ImageNet-pretrained ResNet-50 teacher and ResNet-18 student at 224 px, the authors' hardware"
HEADLINE_SOURCE = f"{PAPER}: headline results ({SETUP}); docs/method.md section 9."
LOGS_SOURCE = (
    f"{PAPER}: the authors' released run logs (GitHub sami0055/TGOSP-CAKD; {SETUP}); docs/method.md section 9."
)
LATENCY_SOURCE = (
    f"{PAPER}: latency against COLT ({SETUP}); the one-shot minutes are its KD retraining alone; the sparsity "
    "is stated for CIFAR-10 only; docs/method.md section 9."
)

# The accuracy columns of a sweep: retraining without KD, and with KD at temperature 3 and 5.
SWEEP_COLUMNS = ("no KD", "KD T=3", "KD T=5")


def setting_label(temperature: float | None) -> str:
    """ "no KD", or "KD T=3": how the paper's sweep names its columns (`SWEEP_COLUMNS`), from the KD
    retraining temperature (None or NaN: retraining without KD)."""
    if temperature is None or math.isnan(temperature):
        return "no KD"
    return f"KD T={temperature:g}"


_NONE = float("nan")  # "-" in the paper's tables: not run

_HEADLINE = (  # dataset, sparsity, test accuracy
    ("CIFAR-10", 0.9841, 90.79),
    ("CIFAR-10", 0.5046, 96.08),
    ("CIFAR-100", 0.9801, 67.06),
    ("CIFAR-100", 0.5075, 81.01),
    ("TinyImageNet", 0.9756, 50.64),
    ("TinyImageNet", 0.5002, 59.29),
)

_CIFAR10_SWEEP = (  # sparsity over all weights, no KD, KD T=3, KD T=5
    (0.5046, 96.06, 96.08, 96.03),
    (0.7500, 95.46, 95.62, 95.60),
    (0.8000, 95.21, 95.44, 95.49),
    (0.9000, 94.12, _NONE, 94.83),
    (0.9392, 92.97, 94.28, 94.40),
    (0.9770, _NONE, 91.29, _NONE),
    (0.9841, 86.99, 90.79, 90.66),
)

_TINYIMAGENET_SWEEP = (
    (0.5002, 58.53, _NONE, 60.93),
    (0.7435, 54.39, 57.42, 58.58),
    (0.9311, 51.74, 53.79, 52.11),
    (0.9756, 47.71, 50.64, 50.07),
)

_CIFAR10_DENSE = (("teacher", "ResNet-50", 95.40), ("student", "ResNet-18", 95.92))
_TINYIMAGENET_DENSE = (("student", "ResNet-18", 62.19),)

_LATENCY_MINUTES = (  # dataset, sparsity over all weights, one-shot minutes, COLT minutes
    ("CIFAR-10", 0.977, 27.82, 276.0),
    ("CIFAR-100", _NONE, 19.76, 355.0),
    ("TinyImageNet", _NONE, 42.43, 1756.0),
)

# the kit's dataset names of the paper's datasets
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "tinyimagenet": "TinyImageNet"}


def _sourced(table: pd.DataFrame, source: str) -> pd.DataFrame:
    table.attrs["source"] = source
    return table


def headline() -> pd.DataFrame:
    """dataset, sparsity_all, test_accuracy: the paper's headline table (KD retraining)."""
    return _sourced(pd.DataFrame(_HEADLINE, columns=["dataset", "sparsity_all", "test_accuracy"]), HEADLINE_SOURCE)


def _sweep_table(rows: tuple, source: str) -> pd.DataFrame:
    return _sourced(pd.DataFrame(rows, columns=["sparsity_all", *SWEEP_COLUMNS]), source)


def cifar10_sweep() -> pd.DataFrame:
    """sparsity_all and the test accuracy without KD, with KD at T=3 and at T=5 (NaN: not run)."""
    return _sweep_table(_CIFAR10_SWEEP, LOGS_SOURCE)


def tinyimagenet_sweep() -> pd.DataFrame:
    """As `cifar10_sweep`, for TinyImageNet at 64 px upsampled to 224 px."""
    return _sweep_table(_TINYIMAGENET_SWEEP, LOGS_SOURCE + " TinyImageNet at 64 px, upsampled to 224 px.")


def cifar10_dense() -> pd.DataFrame:
    """role, arch, test_accuracy of the dense networks behind `cifar10_sweep`."""
    return _sourced(pd.DataFrame(_CIFAR10_DENSE, columns=["role", "arch", "test_accuracy"]), LOGS_SOURCE)


def tinyimagenet_dense() -> pd.DataFrame:
    """The dense student behind `tinyimagenet_sweep` (the logs give no teacher accuracy)."""
    return _sourced(pd.DataFrame(_TINYIMAGENET_DENSE, columns=["role", "arch", "test_accuracy"]), LOGS_SOURCE)


def latency() -> pd.DataFrame:
    """dataset, sparsity_all (NaN where the paper does not say), one_shot_minutes (the KD retraining
    alone, not scoring nor the teacher's or the dense student's training), colt_minutes, and their
    ratio COLT / one-shot."""
    table = pd.DataFrame(_LATENCY_MINUTES, columns=["dataset", "sparsity_all", "one_shot_minutes", "colt_minutes"])
    table["ratio"] = table["colt_minutes"] / table["one_shot_minutes"]
    return _sourced(table, LATENCY_SOURCE)


def sweep(dataset: str) -> pd.DataFrame | None:
    """The paper's sweep for the kit's `dataset` name ("cifar10", "tinyimagenet"), None where it has none."""
    return {"cifar10": cifar10_sweep, "tinyimagenet": tinyimagenet_sweep}.get(dataset.lower(), lambda: None)()


def dense(dataset: str) -> pd.DataFrame | None:
    """The paper's dense networks for the kit's `dataset` name, None where the logs give none."""
    return {"cifar10": cifar10_dense, "tinyimagenet": tinyimagenet_dense}.get(dataset.lower(), lambda: None)()
