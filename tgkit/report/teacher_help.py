"""Notebook 06's tables, figures and verdicts, "When does the teacher help?", from `study.teacher_help`'s tables.

    worth = paired_gain(grid, "scoring")      teacher-guided masks (CE) minus magnitude masks (CE), per teacher and length
    gap = paired_gain(grid, "retraining")     KD minus CE on the same teacher-guided masks, per teacher and length
    noise(grid)                               the seeds' pooled standard deviation of one run's accuracy
    mean_gain(table, sd, test_images=N)       a mean of paired gains, its standard error and its verdict
    ablation = ablation_table(grid)           KD at the trained teacher with one ingredient changed at a time
    verdicts(grid, test_images=N) + [ablation_verdict(ablation, noise(grid), gradients, test_images=N)]
                                              what the data show, in sentences computed from the tables
    paper_claim(dataset, sparsity)            the paper's KD and no-KD accuracies at its nearest level, labelled
    plot_teachers(history, teachers)          the teacher's validation accuracy per epoch, its snapshots marked
    plot_grid(grid)                           per teacher: accuracy against retraining epochs, both roles
    plot_gap(gap)                             the KD - CE gap as a heatmap over (teacher, retraining epochs)
    plot_overlap(overlap)                     each mask's overlap with the trained teacher's, per layer
    plot_entropy(entropy)                     how soft the targets are, per order and T
    plot_ablation(ablation, gradients)        accuracy of each KD variant, and the KD term's share of the gradient

Accuracies are shown in percent and differences in points (percentage points). Every verdict follows the kit's
one rule, that of `report.claims` (docs/method.md section 11): a difference d with standard error SE **holds**
when d > 2 SE, **does not hold** (the opposite is seen) when d < -2 SE, and **cannot be told at this scale** in
between: no effect that this grid can tell. SE is the larger of the seeds' part and the test set's sampling error
(`claims.sampling_error` over the N test images: a floor no number of seeds removes). With sd the seeds' pooled
standard deviation of one run's accuracy (`noise`), the seeds' part is

    a mean of paired gains over m (teacher, length, seed) pairs   sqrt(2) sd / sqrt(m)  (a gain is a difference of
        two runs; over cells of unequal seeds n_i, the mean of the k cell means has sqrt(2) sd sqrt(sum 1/n_i) / k),
        the sampling error being that of the two mean accuracies;
    a difference of two such means (the strongest teacher against the weakest, the longest length against the
        shortest): the two means' SEs combined in quadrature;
    one run against one run (the ablation, one seed): sqrt(2) sd.

With one seed sd is unknown (NaN): as `claims.compare` does, SE is then the test set's sampling error alone, a
lower bound, and each sentence says so.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from tgkit.distillation import KD_VARIANTS
from tgkit.report import claims, palette, paper
from tgkit.report.sweep import nearest_level

NONE, TRAINED = "none", "trained"  # the teacher column's labels for no teacher and for the trained teacher
TEACHER_COLOURS = "cividis"  # weak to strong teachers: a sequential map, readable with any colour vision


def _teacher_order(table: pd.DataFrame) -> list[str]:
    """The teachers of a table, weakest (by test accuracy) first."""
    teachers = table[table["teacher"] != NONE].drop_duplicates("teacher")
    return list(teachers.sort_values("teacher_accuracy", kind="stable")["teacher"])


def teacher_colours(teachers: list[str]) -> dict[str, tuple]:
    """One colour per teacher, weakest the darkest, along `TEACHER_COLOURS`."""
    cmap = colormaps[TEACHER_COLOURS]
    return {t: cmap(0.15 + 0.7 * i / max(1, len(teachers) - 1)) for i, t in enumerate(teachers)}


def paired_gain(grid: pd.DataFrame, role: str, *, accuracies: bool = False) -> pd.DataFrame:
    """The teacher's worth in one `role`, from the grid part of a `run_grid` table, seed by seed:

        "scoring":    acc(teacher-guided masks of teacher k, CE) - acc(magnitude masks, CE)
        "retraining": acc(teacher-guided masks of k, KD from k) - acc(the same masks, CE)

    at the same retraining length and seed, in points. One row per (teacher, epochs): teacher,
    teacher_accuracy, epochs, gain (mean), gain_std (sample std over seeds; NaN with one), seeds; with
    `accuracies`, also accuracy and control_accuracy (each side's mean test accuracy over the seeds, fractions),
    what `mean_gain` needs for the test set's sampling error."""
    runs = grid[grid["part"] == "grid"]
    guided = runs[runs["teacher"] != NONE]
    treated = guided[guided["retraining"] == "KD"] if role == "retraining" else guided[guided["retraining"] == "CE"]
    if role == "retraining":
        control = guided[guided["retraining"] == "CE"][["teacher", "epochs", "seed", "test_accuracy"]]
        keys = ["teacher", "epochs", "seed"]
    else:
        control = runs[runs["teacher"] == NONE][["epochs", "seed", "test_accuracy"]]
        keys = ["epochs", "seed"]
    paired = treated.merge(control, on=keys, suffixes=("", "_control"))
    paired = paired.assign(gain=100 * (paired["test_accuracy"] - paired["test_accuracy_control"]))
    table = paired.groupby(["teacher", "teacher_accuracy", "epochs"], as_index=False).agg(
        gain=("gain", "mean"),
        gain_std=("gain", "std"),
        seeds=("seed", "nunique"),
        accuracy=("test_accuracy", "mean"),
        control_accuracy=("test_accuracy_control", "mean"),
    )
    if not accuracies:
        table = table.drop(columns=["accuracy", "control_accuracy"])
    order = {teacher: i for i, teacher in enumerate(_teacher_order(grid))}
    return table.sort_values(["teacher", "epochs"], key=lambda c: c.map(order) if c.name == "teacher" else c)


def noise(grid: pd.DataFrame) -> float:
    """The seeds' pooled standard deviation of test accuracy, in points: sqrt(mean over grid cells of each cell's
    variance over its seeds), every (method, teacher, retraining, epochs) cell with two seeds or more; NaN
    when the grid has one seed."""
    runs = grid[grid["part"] == "grid"]
    variances = runs.groupby(["method", "teacher", "retraining", "epochs"])["test_accuracy"].var().dropna()
    return 100 * math.sqrt(variances.mean()) if len(variances) else math.nan


def ablation_table(grid: pd.DataFrame) -> pd.DataFrame:
    """The ablation's cell (the trained teacher, its retraining length, its seed), from a `run_grid` table: one
    row per retraining: setting ("CE", "KD" as configured, or a variant), accuracy (%), versus_kd and
    versus_ce (points against those two)."""
    ablation = grid[grid["part"] == "ablation"].iloc[0]
    cell = grid[
        (grid["teacher"] == TRAINED) & (grid["epochs"] == ablation["epochs"]) & (grid["seed"] == ablation["seed"])
    ]
    table = cell.drop_duplicates("retraining")[["retraining", "test_accuracy"]].rename(
        columns={"retraining": "setting"}
    )
    table = table.assign(accuracy=100 * table.pop("test_accuracy")).set_index("setting")
    kd, ce = table.loc["KD", "accuracy"], table.loc["CE", "accuracy"]
    table = table.assign(versus_kd=table["accuracy"] - kd, versus_ce=table["accuracy"] - ce)
    table.attrs.update(epochs=float(ablation["epochs"]), seed=int(ablation["seed"]))
    return table.reset_index()


def mean_gain(table: pd.DataFrame, sd: float, *, test_images: int) -> dict:
    """The mean gain of some rows of a `paired_gain(grid, role, accuracies=True)` table, in points, judged by
    the kit's rule (`report.claims`, module docstring), with `sd` the seeds' pooled standard deviation (`noise`)
    and `test_images` the size of the test set. Returns

        ours            the mean of the rows' gains
        seed_error      sqrt(2) sd sqrt(sum over rows of 1 / seeds) / rows: sqrt(2) sd / sqrt(m) over m pairs
                        when every row has as many seeds; NaN with one seed (sd NaN)
        sampling_error  `claims.sampling_error` of the rows' mean accuracy and mean control accuracy
        standard_error  the larger of the two; the sampling error alone with one seed, as `claims.compare` does
        pairs           m, the (teacher, length, seed) pairs
        verdict         `claims.verdict(ours, standard_error)`"""
    rows = len(table)
    seed_error = math.sqrt(2) * sd * math.sqrt(float((1 / table["seeds"]).sum())) / rows
    floor = claims.sampling_error(float(table["accuracy"].mean()), float(table["control_accuracy"].mean()), test_images)
    return _judged(float(table["gain"].mean()), seed_error, floor, pairs=int(table["seeds"].sum()))


def _judged(ours: float, seed_error: float, sampling_error: float, **more) -> dict:
    """A difference judged by the kit's rule: its standard error the larger of the seeds' part and the test
    set's sampling error (the latter alone where the seeds' part is NaN, as `claims.compare` does)."""
    standard_error = float(np.nanmax([seed_error, sampling_error]))
    return {
        "ours": ours,
        "seed_error": seed_error,
        "sampling_error": sampling_error,
        "standard_error": standard_error,
        "verdict": claims.verdict(ours, standard_error),
        **more,
    }


def difference_of_gains(a: dict, b: dict) -> dict:
    """`a` minus `b`, two `mean_gain` results over disjoint pairs: ours, their standard errors (and seed and
    sampling parts) combined in quadrature, and the verdict (`claims.verdict`); no pairs."""
    ours = a["ours"] - b["ours"]
    standard_error = math.hypot(a["standard_error"], b["standard_error"])
    return {
        "ours": ours,
        "seed_error": math.hypot(a["seed_error"], b["seed_error"]),
        "sampling_error": math.hypot(a["sampling_error"], b["sampling_error"]),
        "standard_error": standard_error,
        "verdict": claims.verdict(ours, standard_error),
    }


def _words(judged: dict, *, one_seed: bool) -> str:
    """A judged difference (`mean_gain`, `difference_of_gains`) in words, e.g. "+1.23 points (holds: more than 2
    standard errors, SE = 0.40)"; "cannot be told" adds "no effect that this grid can tell"."""
    said, standard_error, margin = judged["verdict"], judged["standard_error"], claims.MARGIN
    if not math.isfinite(standard_error):
        why = "no standard error"
    elif said == claims.HOLDS:
        why = f"more than {margin:g} standard errors, SE = {standard_error:.2f}"
    elif said == claims.DOES_NOT_HOLD:
        why = f"the opposite is seen, beyond {margin:g} standard errors, SE = {standard_error:.2f}"
    else:
        why = f"within {margin:g} standard errors, SE = {standard_error:.2f}; no effect that this grid can tell"
    if one_seed:
        why += "; one seed: the seeds' spread is unknown, the SE is the test set's sampling error only"
    return f"{judged['ours']:+.2f} points ({said}: {why})"


def verdicts(grid: pd.DataFrame, *, test_images: int) -> list[str]:
    """What the grid shows, one sentence per claim, each judged by the kit's rule (module docstring) with
    `test_images` the size of the test set: the teacher helps in scoring and in retraining (the mean gain over
    every teacher, length and seed, `mean_gain`), and a stronger teacher, or longer retraining, raises KD - CE,
    what KD retraining gains over CE (its mean at the strongest teacher against the weakest, at the longest length against the shortest,
    `difference_of_gains`; where the grid has two teachers or two lengths at least)."""
    sd, sentences = noise(grid), []
    one_seed = math.isnan(sd)
    for role, what in (
        ("scoring", "teacher-guided masks against magnitude masks, both retrained with CE"),
        ("retraining", "KD retraining against CE on the same teacher-guided masks"),
    ):
        gain = paired_gain(grid, role, accuracies=True)
        mean = mean_gain(gain, sd, test_images=test_images)
        best = gain.loc[gain["gain"].idxmax()]
        sentences.append(
            f"The teacher helps in {role} ({what}): on average {_words(mean, one_seed=one_seed)} over "
            f"{mean['pairs']} paired runs; from {gain['gain'].min():+.2f} to {gain['gain'].max():+.2f} over teachers "
            f"and lengths, the best with the {best['teacher']} teacher after {best['epochs']:g} epochs."
        )
    gap = paired_gain(grid, "retraining", accuracies=True)
    teachers, lengths = _teacher_order(gap), sorted(gap["epochs"].unique())

    def moved(column: str, high, low) -> dict:
        means = [mean_gain(gap[gap[column] == value], sd, test_images=test_images) for value in (high, low)]
        return difference_of_gains(*means)

    if len(teachers) > 1:
        sentences.append(
            f"A stronger teacher raises KD - CE, what KD retraining gains over CE ({teachers[-1]} against {teachers[0]}): "
            f"{_words(moved('teacher', teachers[-1], teachers[0]), one_seed=one_seed)}."
        )
    if len(lengths) > 1:
        sentences.append(
            f"Longer retraining raises KD - CE, what KD retraining gains over CE ({lengths[-1]:g} epochs against "
            f"{lengths[0]:g}): "
            f"{_words(moved('epochs', lengths[-1], lengths[0]), one_seed=one_seed)}."
        )
    return sentences


def ablation_verdict(
    ablation: pd.DataFrame, sd: float, gradients: pd.DataFrame | None = None, *, test_images: int
) -> str:
    """Which ingredient of the KD loss decides, computed from an `ablation_table`, by the kit's rule (module
    docstring): each variant is one run against one run of KD as configured (one seed), so its difference d
    (points) has SE = max(sqrt(2) sd, `claims.sampling_error` of the two accuracies over `test_images`), `sd`
    the seeds' pooled standard deviation (`noise`; NaN with one seed: the sampling error alone, as
    `claims.compare` does). An ingredient decides when one of its variants holds or does not hold against KD
    as configured (better or worse beyond 2 SE); the ingredient whose variant moves accuracy most is quoted.
    With a `gradient_table`, the KD term's share of the gradient under that variant is quoted beside the
    configured one's."""
    table = ablation.set_index("setting")
    present = {}  # ingredient -> its variants in the table
    for variant, (ingredient, _) in KD_VARIANTS.items():
        if variant in table.index:
            present.setdefault(ingredient, []).append(variant)
    if not present:
        return "The ablation has no variant to compare."
    one_seed = math.isnan(sd)
    kd = table.loc["KD", "accuracy"]

    def judged(variant: str) -> dict:
        floor = claims.sampling_error(table.loc[variant, "accuracy"] / 100, kd / 100, test_images)
        return _judged(float(table.loc[variant, "versus_kd"]), math.sqrt(2) * sd, floor)

    judgements = {variant: judged(variant) for variants in present.values() for variant in variants}
    size = {ingredient: max(abs(judgements[v]["ours"]) for v in variants) for ingredient, variants in present.items()}
    ingredient = max(size, key=size.get)
    variant = max(present[ingredient], key=lambda v: abs(judgements[v]["ours"]))
    head = (
        f"Of {_listed(list(present))}, {ingredient} moves accuracy most: {variant} gives "
        f"{table.loc[variant, 'accuracy']:.2f}% against {kd:.2f}% for KD as configured and "
        f"{table.loc['CE', 'accuracy']:.2f}% for CE, {variant} against KD as configured: "
        f"{_words(judgements[variant], one_seed=one_seed)}."
    )
    head += (
        " Each variant against KD as configured (holds: the variant is better; does not hold: worse): "
        + "; ".join(f"{v} {j['ours']:+.2f} ({j['verdict']})" for v, j in judgements.items())
        + "."
    )
    deciding = sorted(
        (i for i, variants in present.items() if any(judgements[v]["verdict"] != claims.CANNOT_TELL for v in variants)),
        key=lambda i: -size[i],
    )
    if not deciding:
        head += (
            f" No ingredient decides that this grid can tell: every variant lies within {claims.MARGIN:g} standard "
            f"errors of KD as configured."
        )
    else:
        listed = _listed(deciding)
        head += f" {listed[0].upper()}{listed[1:]} {'decides' if len(deciding) == 1 else 'decide'} at this scale."
    if gradients is not None:
        shares = gradients[gradients["teacher"] == TRAINED].drop_duplicates("retraining").set_index("retraining")
        if variant in shares.index:
            head += (
                f" The KD term carries {shares.loc['KD', 'kd_share']:.0%} of the gradient as configured and "
                f"{shares.loc[variant, 'kd_share']:.0%} under {variant}."
            )
    return head


def _listed(names: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def paper_claim(dataset: str, sparsity: float) -> pd.DataFrame | None:
    """The paper's own numbers (`report.paper`, never ours) at its level nearest to `sparsity` among those where it
    ran both KD (T=3) and no KD: one row with sparsity_paper, no_kd and kd (test accuracy in %) and kd_minus_no_kd
    (points); None where the paper has no sweep on `dataset`. `attrs["source"]` names them."""
    reference = paper.sweep(dataset)
    if reference is None:
        return None
    both = reference.dropna(subset=["no KD", "KD T=3"])
    row = both.loc[nearest_level(sparsity, both["sparsity_all"])]
    claim = pd.DataFrame(
        [
            {
                "sparsity_paper": row["sparsity_all"],
                "no_kd": row["no KD"],
                "kd": row["KD T=3"],
                "kd_minus_no_kd": row["KD T=3"] - row["no KD"],
            }
        ]
    )
    claim.attrs["source"] = reference.attrs["source"]
    return claim


# --------------------------------------------------------------------------------------------------
# figures


def plot_teachers(history: pd.DataFrame, teachers: pd.DataFrame) -> Figure:
    """The teacher's validation accuracy per epoch (`history`: its per-epoch history), each snapshot marked in
    its teacher colour, the trained teacher (the best epoch) too; the title names the strengths."""
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(history["epoch"], 100 * history["val_accuracy"], color=palette.color("teacher"), label="validation")
    colours = teacher_colours(list(teachers["teacher"]))
    best = history.loc[history["val_accuracy"].idxmax(), "epoch"]
    for row in teachers.itertuples():
        epoch = best if pd.isna(row.teacher_epoch) else row.teacher_epoch
        axes.plot(epoch, 100 * row.val_accuracy, "o", markersize=9, color=colours[row.teacher])
        axes.annotate(
            f"{row.teacher}: test {row.test_accuracy:.1%}",
            (epoch, 100 * row.val_accuracy),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize="small",
        )
    axes.set(
        xlabel="epoch of the teacher's training",
        ylabel="validation accuracy (%)",
        title="teachers of graded strength from one training: "
        + ", ".join(f"{a:.0%}" for a in teachers["test_accuracy"]),
    )
    axes.grid(alpha=0.3)
    return figure


def plot_grid(grid: pd.DataFrame) -> Figure:
    """One panel per teacher, weakest first: test accuracy against retraining epochs of its teacher-guided masks
    retrained with KD (solid) and with CE (dashed), and of the magnitude masks retrained with CE (the same in
    every panel); mean over the seeds, bars of one standard deviation."""
    runs = grid[grid["part"] == "grid"]
    teachers = _teacher_order(runs)
    figure, axes_row = plt.subplots(1, len(teachers), figsize=(4.2 * len(teachers), 3.8), sharey=True, squeeze=False)
    magnitude = runs[runs["teacher"] == NONE]
    for axes, teacher in zip(axes_row[0], teachers):
        curves = [(magnitude, "magnitude", "no KD", "magnitude, CE")]
        for setting, name in (("CE", "no KD"), ("KD", "KD")):
            rows = runs[(runs["teacher"] == teacher) & (runs["retraining"] == setting)]
            curves.append((rows, "teacher-guided", name, f"teacher-guided, {setting}"))
        for rows, method, setting, label in curves:
            stats = rows.groupby("epochs")["test_accuracy"].agg(["mean", "std"]).reset_index()
            axes.errorbar(
                stats["epochs"],
                100 * stats["mean"],
                yerr=100 * stats["std"].fillna(0),
                capsize=3,
                label=label,
                **palette.curve_style(method, setting),
            )
        accuracy = runs.loc[runs["teacher"] == teacher, "teacher_accuracy"].iloc[0]
        axes.set(
            title=f"teacher {teacher} ({accuracy:.1%})",
            xlabel="retraining epochs",
            xticks=sorted(runs["epochs"].unique()),
        )
        axes.grid(alpha=0.3)
    axes_row[0][0].set_ylabel("test accuracy (%)")
    axes_row[0][-1].legend(fontsize="small")
    seeds = runs["seed"].nunique()
    figure.suptitle(
        f"both roles of the teacher, at {runs['sparsity_all'].mean():.2%} sparsity "
        f"(mean of {seeds} seed{'s' * (seeds > 1)}, bars: one std)"
    )
    figure.tight_layout()
    return figure


def plot_gap(gap: pd.DataFrame) -> Figure:
    """The KD - CE gap (a `paired_gain(grid, "retraining")` table) as a heatmap: teachers (weakest at the bottom)
    against retraining epochs, each cell its mean and, with several seeds, its standard deviation; blue where KD
    wins, red where CE does, on a scale symmetric about 0."""
    teachers = list(dict.fromkeys(gap["teacher"]))
    mean = gap.pivot(index="teacher", columns="epochs", values="gain").loc[teachers[::-1]]
    spread = gap.pivot(index="teacher", columns="epochs", values="gain_std").loc[teachers[::-1]]
    limit = max(0.5, float(np.nanmax(np.abs(mean.to_numpy()))))
    figure, axes = plt.subplots(figsize=(1.6 * mean.shape[1] + 3, 0.8 * mean.shape[0] + 1.6))
    image = axes.imshow(mean.to_numpy(), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), value in np.ndenumerate(mean.to_numpy()):
        sd = spread.to_numpy()[i, j]
        text = f"{value:+.1f}" + ("" if np.isnan(sd) else f"\n± {sd:.1f}")
        axes.text(j, i, text, ha="center", va="center", color="white" if abs(value) > 0.6 * limit else "black")
    accuracy = gap.drop_duplicates("teacher").set_index("teacher")["teacher_accuracy"]
    axes.set_yticks(range(len(mean)), [f"{t} ({accuracy[t]:.1%})" for t in mean.index])
    axes.set_xticks(range(mean.shape[1]), [f"{e:g}" for e in mean.columns])
    axes.set(xlabel="retraining epochs", ylabel="teacher (test accuracy)")
    wins = int((mean.to_numpy() > 0).sum())
    axes.set_title(f"KD - CE, points: KD wins in {wins} of {mean.size} cells")
    figure.colorbar(image, ax=axes, label="KD - CE (points)")
    figure.tight_layout()
    return figure


def plot_overlap(overlap: pd.DataFrame) -> Figure:
    """Heatmap of each mask's Jaccard overlap with the trained teacher's mask (an `overlap_table`), per layer:
    a row per mask (the snapshots' teacher-guided masks, then magnitude's), a column per layer and "all layers"."""
    table = overlap.pivot(index="mask", columns="layer", values="overlap")
    table = table.loc[list(dict.fromkeys(overlap["mask"])), list(dict.fromkeys(overlap["layer"]))]
    figure, axes = plt.subplots(figsize=(0.75 * table.shape[1] + 2.5, 0.6 * table.shape[0] + 2.2))
    image = axes.imshow(table.to_numpy(), cmap=TEACHER_COLOURS, vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        axes.text(
            j,
            i,
            f"{value:.2f}",
            ha="center",
            va="center",
            fontsize="x-small",
            color="white" if value < 0.6 else "black",
        )
    axes.set_yticks(range(len(table)), table.index)
    axes.set_xticks(range(table.shape[1]), [c.removesuffix(".weight") for c in table.columns], rotation=45, ha="right")
    axes.set_title("Jaccard overlap of the kept weights with the trained teacher's mask")
    figure.colorbar(image, ax=axes, label="overlap")
    figure.tight_layout()
    return figure


def plot_entropy(entropy: pd.DataFrame) -> Figure:
    """One panel per order (paper, authors, plain): the entropy of each teacher's targets as a fraction of log C
    (1: uniform, no information on the right class) against the temperature, a line per teacher."""
    orders = list(dict.fromkeys(entropy["order"]))
    colours = teacher_colours(list(dict.fromkeys(entropy["teacher"])))
    figure, axes_row = plt.subplots(1, len(orders), figsize=(4 * len(orders), 3.6), sharey=True, squeeze=False)
    names = {"paper": "paper: norm(z) / T", "authors": "authors: norm(z / T)", "plain": "plain: z / T (Hinton)"}
    for axes, order in zip(axes_row[0], orders):
        for teacher, rows in entropy[entropy["order"] == order].groupby("teacher", sort=False):
            axes.plot(rows["temperature"], rows["entropy_fraction"], "o-", color=colours[teacher], label=teacher)
        axes.axhline(1.0, color=palette.GREY, linestyle=":", linewidth=1)
        axes.set(title=names.get(order, order), xlabel="temperature T", ylim=(0, 1.05))
        axes.grid(alpha=0.3)
    axes_row[0][0].set_ylabel("entropy of the targets / log C")
    axes_row[0][-1].legend(title="teacher", fontsize="small")
    figure.suptitle("how soft the teacher's targets are (1 = uniform over the classes)")
    figure.tight_layout()
    return figure


def plot_ablation(ablation: pd.DataFrame, gradients: pd.DataFrame | None = None) -> Figure:
    """Bars of test accuracy per retraining setting of an `ablation_table` (CE in its palette colour, KD as
    configured and every variant in teacher-guided's), a line at KD as configured; beside it, with a
    `gradient_table`, the KD term's share of the gradient under each setting at the trained teacher."""
    panels = 2 if gradients is not None else 1
    figure, axes_row = plt.subplots(1, panels, figsize=(6 * panels, 0.5 * len(ablation) + 2), squeeze=False)
    axes = axes_row[0][0]
    colours = [palette.color("no KD") if s == "CE" else palette.color("teacher-guided") for s in ablation["setting"]]
    axes.barh(ablation["setting"], ablation["accuracy"], color=colours)
    axes.axvline(ablation.set_index("setting").loc["KD", "accuracy"], color=palette.BLACK, linestyle="--", linewidth=1)
    low = ablation["accuracy"].min()
    axes.set(
        xlim=(max(0, low - 5), min(100, ablation["accuracy"].max() + 2)),
        xlabel="test accuracy (%)",
        title=f"the trained teacher, {ablation.attrs.get('epochs', math.nan):g} retraining epochs",
    )
    axes.invert_yaxis()
    axes.grid(alpha=0.3, axis="x")
    if gradients is not None:
        shares = gradients[gradients["teacher"] == TRAINED].drop_duplicates("retraining").set_index("retraining")
        settings = [s for s in ablation["setting"] if s in shares.index]
        share_axes = axes_row[0][1]
        share_axes.barh(settings, [shares.loc[s, "kd_share"] for s in settings], color=palette.color("teacher-guided"))
        share_axes.set(
            xlim=(0, 1),
            xlabel="KD term's share of the gradient, |g_KD| / (|g_KD| + |g_CE|)",
            title="where retraining starts",
        )
        share_axes.invert_yaxis()
        share_axes.grid(alpha=0.3, axis="x")
    figure.tight_layout()
    return figure
