"""`tgkit.distillation`: the entropy of the teacher's targets and each loss term's share of the gradient, against
answers known by hand: uniform targets, the authors' order that cancels T, the cross-entropy's gradient
softmax(z) - onehot(y), and alpha at its ends; and the loss's variants, one ingredient each."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from tgkit.distillation import KD_VARIANTS, gradient_shares, target_entropy
from tgkit.hparams import KDConfig

TEACHER = torch.tensor([[4.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 1.0], [2.0, 2.0, 0.0, -2.0]])
STUDENT = torch.tensor([[1.0, 2.0, 0.5, 0.0], [0.0, 1.0, 0.0, 2.0], [3.0, 0.0, 1.0, 0.0]])
LABELS = torch.tensor([0, 1, 0])


def test_equal_logits_give_uniform_targets_of_entropy_log_c():
    flat = torch.zeros(5, 4)
    assert target_entropy(flat, 3.0, "plain") == pytest.approx(math.log(4))
    assert target_entropy(flat, 1.0, "paper") == pytest.approx(math.log(4))  # normalising zeros leaves zeros


def test_entropy_by_hand_and_how_each_order_treats_the_temperature():
    p = F.softmax(TEACHER.double() / 2.0, dim=-1)
    by_hand = float(-(p * p.log()).sum(-1).mean())
    assert target_entropy(TEACHER, 2.0, "plain") == pytest.approx(by_hand)
    # the authors' order divides by T before normalising: T cancels (up to eps)
    authors = [target_entropy(TEACHER, t, "authors") for t in (1.0, 3.0, 5.0)]
    assert authors == pytest.approx([authors[0]] * 3, abs=1e-6)
    # the paper's order divides the standardised logits by T: softer with every step of T, towards log C
    paper = [target_entropy(TEACHER, t, "paper") for t in (1.0, 3.0, 5.0, 100.0)]
    assert paper == sorted(paper) and paper[-1] == pytest.approx(math.log(4), rel=1e-3)


def test_the_ce_terms_gradient_is_softmax_minus_onehot_over_n():
    kd = KDConfig(alpha=0.7, temperature=3.0)
    shares = gradient_shares(STUDENT, TEACHER, LABELS, kd)
    expected = (1 - kd.alpha) * (F.softmax(STUDENT.double(), -1) - F.one_hot(LABELS, 4)) / len(LABELS)
    assert shares["ce_norm"] == pytest.approx(float(expected.norm()))
    assert shares["kd_share"] == pytest.approx(shares["kd_norm"] / (shares["kd_norm"] + shares["ce_norm"]))
    assert -1 <= shares["cosine"] <= 1


def test_alpha_at_its_ends_gives_one_term_all_the_gradient():
    labels_only = gradient_shares(STUDENT, TEACHER, LABELS, KDConfig(alpha=0.0))
    teacher_only = gradient_shares(STUDENT, TEACHER, LABELS, KDConfig(alpha=1.0))
    assert labels_only["kd_share"] == 0.0 and math.isnan(labels_only["cosine"])
    assert teacher_only["kd_share"] == 1.0 and math.isnan(teacher_only["cosine"])


def test_a_student_equal_to_its_teacher_gets_no_kd_gradient():
    """CA-KLD is zero, with a zero gradient, where the two distributions are the same."""
    shares = gradient_shares(TEACHER, TEACHER, LABELS, KDConfig(order="plain", beta=0.0))
    assert shares["kd_norm"] == pytest.approx(0.0, abs=1e-12) and shares["kd_share"] == pytest.approx(0.0, abs=1e-9)


def test_bad_settings_are_refused_as_the_loss_refuses_them():
    with pytest.raises(ValueError, match="order must be one of"):
        target_entropy(TEACHER, 3.0, "sideways")
    with pytest.raises(ValueError, match="temperature must be"):
        gradient_shares(STUDENT, TEACHER, LABELS, KDConfig(temperature=0.0))


def test_each_kd_variant_is_a_valid_loss_that_changes_only_its_own_fields():
    default = KDConfig()
    for name, (_, change) in KD_VARIANTS.items():
        variant = replace(default, **change)
        changed = {
            field
            for field in ("alpha", "temperature", "beta", "order")
            if getattr(variant, field) != getattr(default, field)
        }
        assert changed == set(change), name
    by_ingredient = {}
    for name, (ingredient, _) in KD_VARIANTS.items():
        by_ingredient.setdefault(ingredient, []).append(name)
    assert by_ingredient == {
        "the temperature": ["T=1", "T=5"],
        "alpha": ["alpha=0.3"],
        "the order": ["order=authors"],
        "the normalisation": ["Hinton (no normalisation)"],
    }
