"""`tgkit.report.teacher_help`: notebook 06's tables, verdicts and figures on a grid whose accuracies are set by
hand, so that every gain, the seeds' noise, the ablation and each verdict has a known answer."""

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from tgkit.report import claims
from tgkit.report import teacher_help as report

TEACHERS = {"epoch 3": (0.6, 0.03, -0.01), "trained": (0.9, 0.05, 0.02)}  # accuracy, scoring gain, KD - CE gap
VARIANTS = {"T=1": 0.005, "T=5": -0.002, "alpha=0.3": 0.001, "order=authors": 0.03, "Hinton (no normalisation)": 0.025}


def row(part, method, teacher, retraining, epochs, seed, accuracy):
    return {
        "part": part,
        "method": method,
        "teacher": teacher,
        "teacher_accuracy": TEACHERS[teacher][0] if teacher in TEACHERS else math.nan,
        "retraining": retraining,
        "epochs": epochs,
        "seed": seed,
        "test_accuracy": accuracy,
        "sparsity_all": 0.95,
        "minutes": 0.1,
        "cached": False,
    }


def known_grid(teachers: dict | None = None) -> pd.DataFrame:
    """Magnitude (CE) at 0.50 + 0.01 per epoch + 0.002 for seed 1; a teacher's masks (CE) its scoring gain above
    that; KD its gap above CE, 0.004 more for seed 1. The ablation: KD at the trained teacher, 2 epochs, seed 0,
    moved by each variant's amount."""
    teachers = TEACHERS if teachers is None else teachers
    rows = []
    for seed in (0, 1):
        for epochs in (1, 2):
            magnitude = 0.50 + 0.01 * epochs + 0.002 * seed
            rows.append(row("grid", "magnitude", "none", "CE", epochs, seed, magnitude))
            for teacher, (_, scoring, gap) in teachers.items():
                rows.append(row("grid", "teacher-guided", teacher, "CE", epochs, seed, magnitude + scoring))
                rows.append(
                    row("grid", "teacher-guided", teacher, "KD", epochs, seed, magnitude + scoring + gap + 0.004 * seed)
                )
    kd = 0.50 + 0.02 + 0.05 + 0.02
    rows += [row("ablation", "teacher-guided", "trained", name, 2, 0, kd + change) for name, change in VARIANTS.items()]
    return pd.DataFrame(rows)


def test_paired_gains_of_both_roles():
    scoring = report.paired_gain(known_grid(), "scoring")
    assert list(scoring["teacher"]) == ["epoch 3", "epoch 3", "trained", "trained"]  # weakest first
    assert scoring["gain"].tolist() == pytest.approx([3.0, 3.0, 5.0, 5.0])
    assert scoring["gain_std"].tolist() == pytest.approx([0.0] * 4, abs=1e-9)
    assert (scoring["seeds"] == 2).all()
    gap = report.paired_gain(known_grid(), "retraining")
    assert gap["gain"].tolist() == pytest.approx([-0.8, -0.8, 2.2, 2.2])  # -1 and +2, and +0.4 for seed 1
    assert gap["gain_std"].tolist() == pytest.approx([math.sqrt(0.08)] * 4)  # the std of (0, 0.4)


def test_the_noise_pools_every_cells_variance_over_the_seeds():
    # two seeds 0.2 points apart in 6 cells (variance 0.02), 0.6 apart in the 4 KD cells (variance 0.18)
    assert report.noise(known_grid()) == pytest.approx(math.sqrt((6 * 0.02 + 4 * 0.18) / 10))
    one_seed = known_grid().query("seed == 0")
    assert math.isnan(report.noise(one_seed))


def test_the_ablation_table_compares_every_variant_with_kd_and_ce():
    ablation = report.ablation_table(known_grid()).set_index("setting")
    assert list(ablation.index) == ["CE", "KD", *VARIANTS]
    assert ablation.loc["KD", "accuracy"] == pytest.approx(59.0)
    assert ablation.loc["CE", "versus_kd"] == pytest.approx(-2.0)
    assert ablation["versus_kd"][list(VARIANTS)].tolist() == pytest.approx([100 * v for v in VARIANTS.values()])
    assert ablation.loc["order=authors", "versus_ce"] == pytest.approx(5.0)
    assert ablation.attrs == {"epochs": 2, "seed": 0}


SD = math.sqrt((6 * 0.02 + 4 * 0.18) / 10)  # known_grid's pooled seed sd, in points (see the noise test)


def floor(p_a: float, p_b: float, n: int) -> float:
    """The test set's sampling error of a difference of two accuracies, in points, by hand."""
    return 100 * math.sqrt((p_a * (1 - p_a) + p_b * (1 - p_b)) / n)


def test_the_verdicts_follow_the_kits_rule_two_standard_errors():
    sentences = report.verdicts(known_grid(), test_images=10_000)
    assert len(sentences) == 4
    # scoring: 8 pairs, mean +4.00; teacher-guided CE averages 0.556, magnitude 0.516
    se = max(math.sqrt(2) * SD / math.sqrt(8), floor(0.556, 0.516, 10_000))  # 0.14 against 0.70
    assert se == pytest.approx(0.7047, abs=1e-4) and 2 * se < 4.0
    assert "scoring" in sentences[0]
    assert f"on average +4.00 points (holds: more than 2 standard errors, SE = {se:.2f})" in sentences[0]
    # retraining: mean +0.70; KD averages 0.563, CE 0.556: within 2 SE
    se = max(math.sqrt(2) * SD / math.sqrt(8), floor(0.563, 0.556, 10_000))
    assert 2 * se > 0.7
    assert (
        f"+0.70 points (cannot be told at this scale: within 2 standard errors, SE = {se:.2f}; "
        "no effect that this grid can tell)" in sentences[1]
    )
    # a stronger teacher: +2.2 (4 pairs, KD 0.588 against CE 0.566) minus -0.8 (4 pairs, 0.538 against 0.546)
    strong = max(math.sqrt(2) * SD / 2, floor(0.588, 0.566, 10_000))
    weak = max(math.sqrt(2) * SD / 2, floor(0.538, 0.546, 10_000))
    se = math.hypot(strong, weak)
    assert 2 * se < 3.0
    assert "(trained against epoch 3)" in sentences[2]
    assert f"+3.00 points (holds: more than 2 standard errors, SE = {se:.2f})" in sentences[2]
    assert "(2 epochs against 1)" in sentences[3] and "+0.00 points (cannot be told at this scale" in sentences[3]
    assert "no effect that this grid can tell" in sentences[3]


def test_a_small_test_set_leaves_the_same_gain_untold():
    # the same +4.00 points on 1000 test images: the sampling floor is sqrt(10) times larger, 2.23 > 4 / 2
    se = floor(0.556, 0.516, 1000)
    assert se == pytest.approx(2.2285, abs=1e-4)
    sentence = report.verdicts(known_grid(), test_images=1000)[0]
    assert f"+4.00 points (cannot be told at this scale: within 2 standard errors, SE = {se:.2f}" in sentence


def test_a_gain_below_minus_two_standard_errors_does_not_hold():
    # KD 3 and 5 points below CE (and 0.4 above for seed 1): retraining's mean gain is -3.80 points
    grid = known_grid({"epoch 3": (0.6, 0.0, -0.03), "trained": (0.9, 0.0, -0.05)})
    gain = report.mean_gain(report.paired_gain(grid, "retraining", accuracies=True), SD, test_images=10_000)
    se = max(math.sqrt(2) * SD / math.sqrt(8), floor(0.478, 0.516, 10_000))
    assert gain["ours"] == pytest.approx(-3.8)
    assert gain["seed_error"] == pytest.approx(math.sqrt(2) * SD / math.sqrt(8))
    assert gain["sampling_error"] == pytest.approx(floor(0.478, 0.516, 10_000))
    assert gain["standard_error"] == pytest.approx(se) and gain["pairs"] == 8
    assert gain["verdict"] == claims.DOES_NOT_HOLD
    sentence = report.verdicts(grid, test_images=10_000)[1]
    assert f"-3.80 points (does not hold: the opposite is seen, beyond 2 standard errors, SE = {se:.2f})" in sentence


def test_the_seed_part_of_a_mean_gain_over_cells_of_unequal_seeds():
    # the mean of two cell means, of 1 and 3 seeds: var = 2 sd^2 (1/1 + 1/3) / 2^2; large N: the seed part rules
    table = pd.DataFrame(
        {"gain": [1.0, 3.0], "seeds": [1, 3], "accuracy": [0.9, 0.9], "control_accuracy": [0.88, 0.88]}
    )
    gain = report.mean_gain(table, 1.5, test_images=10**9)
    expected = math.sqrt(2 * 1.5**2 * (1 + 1 / 3) / 4)
    assert gain["seed_error"] == pytest.approx(expected) and gain["standard_error"] == pytest.approx(expected)
    assert gain["ours"] == pytest.approx(2.0) and gain["pairs"] == 4
    assert expected == pytest.approx(math.sqrt(1.5)) and gain["verdict"] == claims.CANNOT_TELL  # 2.0 < 2 x 1.22
    # equal seeds: sqrt(2) sd / sqrt(m), m pairs
    equal = report.mean_gain(table.assign(seeds=[2, 2]), 1.5, test_images=10**9)
    assert equal["seed_error"] == pytest.approx(math.sqrt(2) * 1.5 / math.sqrt(4))


def test_with_one_seed_the_sampling_error_alone_judges_as_claims_compare_does():
    grid = known_grid().query("seed == 0")
    sentences = report.verdicts(grid, test_images=10_000)
    se = floor(0.555, 0.515, 10_000)  # seed 0: teacher-guided CE 0.555, magnitude 0.515
    assert f"+4.00 points (holds: more than 2 standard errors, SE = {se:.2f}; one seed" in sentences[0]
    assert all("the SE is the test set's sampling error only" in sentence for sentence in sentences)
    # the same number claims.compare gives for one run against one run
    compared = claims.compare(pd.Series([0.555]), pd.Series([0.515]), test_images=10_000)
    assert compared["standard_error"] == pytest.approx(se)


def test_the_ablation_verdict_names_the_deciding_ingredients_or_none():
    ablation = report.ablation_table(known_grid())
    gradients = pd.DataFrame(
        {"teacher": ["trained", "trained"], "retraining": ["KD", "order=authors"], "kd_share": [0.3, 0.8]}
    )
    # one run against one run: SE = max(sqrt(2) 0.5, floor(0.62, 0.59)) = 0.71; order +3.0 and Hinton +2.5 hold
    se = max(math.sqrt(2) * 0.5, floor(0.62, 0.59, 10_000))
    assert se == pytest.approx(math.sqrt(2) * 0.5)
    decided = report.ablation_verdict(ablation, 0.5, gradients, test_images=10_000)
    assert "the order moves accuracy most: order=authors gives 62.00%" in decided
    assert f"+3.00 points (holds: more than 2 standard errors, SE = {se:.2f})" in decided
    assert "T=1 +0.50 (cannot be told at this scale)" in decided and "order=authors +3.00 (holds)" in decided
    assert "The order and the normalisation decide at this scale." in decided
    assert "30% of the gradient" in decided and "80% under" in decided
    # sd 2: SE = 2 sqrt(2) = 2.83, every variant within 2 SE
    undecided = report.ablation_verdict(ablation, 2.0, test_images=10_000)
    assert "No ingredient decides that this grid can tell" in undecided and "SE = 2.83" in undecided
    # a variant 3 points worse than KD as configured: does not hold, and its ingredient decides
    worse = ablation.set_index("setting")
    worse.loc["order=authors", ["accuracy", "versus_kd"]] = [56.0, -3.0]
    worse.loc["Hinton (no normalisation)", ["accuracy", "versus_kd"]] = [59.0, 0.0]
    told = report.ablation_verdict(worse.reset_index(), 0.5, test_images=10_000)
    assert "-3.00 points (does not hold: the opposite is seen" in told and "The order decides at this scale." in told
    # one seed: the sampling error alone, 0.69
    one_seed = report.ablation_verdict(ablation, math.nan, test_images=10_000)
    assert f"SE = {floor(0.62, 0.59, 10_000):.2f}; one seed" in one_seed


def test_the_papers_claim_is_theirs_at_its_nearest_level():
    claim = report.paper_claim("cifar10", 0.98)
    assert claim.iloc[0].to_dict() == pytest.approx(
        {"sparsity_paper": 0.9841, "no_kd": 86.99, "kd": 90.79, "kd_minus_no_kd": 3.8}
    )
    assert "Alim et al." in claim.attrs["source"]
    assert report.paper_claim("digits", 0.95) is None


def test_the_figures_draw_what_the_tables_hold():
    grid = known_grid()
    panels = report.plot_grid(grid).axes
    assert [axes.get_title() for axes in panels] == ["teacher epoch 3 (60.0%)", "teacher trained (90.0%)"]
    assert all(len(axes.containers) == 3 for axes in panels)  # magnitude CE, teacher-guided CE and KD
    heatmap = report.plot_gap(report.paired_gain(grid, "retraining")).axes[0]
    assert heatmap.get_title() == "KD - CE, points: KD wins in 2 of 4 cells"
    assert sorted(text.get_text() for text in heatmap.texts) == sorted(["-0.8\n± 0.3"] * 2 + ["+2.2\n± 0.3"] * 2)
    ablation = report.ablation_table(grid)
    assert len(report.plot_ablation(ablation).axes[0].patches) == len(ablation)
    plt.close("all")


def test_the_teacher_overlap_and_entropy_figures():
    teachers = pd.DataFrame(
        {
            "teacher": ["epoch 1", "trained"],
            "teacher_epoch": pd.array([1, None], dtype="Int64"),
            "val_accuracy": [0.5, 0.9],
            "test_accuracy": [0.48, 0.88],
        }
    )
    history = pd.DataFrame({"epoch": [1, 2, 3], "val_accuracy": [0.5, 0.9, 0.8]})
    axes = report.plot_teachers(history, teachers).axes[0]
    assert len(axes.lines) == 3 and axes.get_title().endswith("48%, 88%")  # the curve and one marker per teacher
    overlap = pd.DataFrame(
        {
            "mask": ["epoch 1", "epoch 1", "magnitude", "magnitude"],
            "layer": ["a.weight", "all layers"] * 2,
            "overlap": [0.9, 0.8, 0.3, 0.2],
        }
    )
    assert len(report.plot_overlap(overlap).axes[0].texts) == 4
    entropy = pd.DataFrame(
        [
            {"teacher": t, "order": o, "temperature": x, "entropy_fraction": 0.5}
            for t in ("epoch 1", "trained")
            for o in ("paper", "authors", "plain")
            for x in (1.0, 3.0)
        ]
    )
    assert len(report.plot_entropy(entropy).axes) == 3
    plt.close("all")


def test_a_grid_of_one_teacher_and_one_length_gives_the_two_roles_only():
    grid = known_grid()
    one = grid[(grid["teacher"] != "epoch 3") & ((grid["epochs"] == 2) | (grid["part"] == "ablation"))]
    sentences = report.verdicts(one, test_images=10_000)
    assert len(sentences) == 2 and "scoring" in sentences[0] and "retraining" in sentences[1]
