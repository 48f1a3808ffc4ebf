"""`tgkit.losses`: CA-KLD and the teacher-guided loss against values computed independently with numpy and by hand."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tgkit.losses import (
    ca_kld,
    confidence_beta,
    evaluating,
    kl_divergence,
    normalize_logits,
    teacher_guided_loss,
)

STUDENT = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0], [3.0, 0.0, 0.0, -3.0]]
TEACHER = [[2.0, 1.0, 0.0, 3.0], [1.0, 1.0, -2.0, 0.5], [0.0, 4.0, 1.0, 1.0]]
TARGETS = [3, 2, 0]


def logits(values):
    return torch.tensor(values, dtype=torch.float64)


# numpy references, written from the formulas in docs/method.md section 2
def np_normalize(z, eps=1e-7):
    z = np.asarray(z, dtype=np.float64)
    return (z - z.mean(axis=1, keepdims=True)) / (z.std(axis=1, keepdims=True) + eps)


def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_kl(p, q):
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def np_ca_kld(zs, zt, temperature, beta):
    p_s = np_softmax(np_normalize(zs) / temperature)
    p_t = np_softmax(np_normalize(zt) / temperature)
    return beta * np_kl(p_s, p_t) + (1 - beta) * np_kl(p_t, p_s)


def np_cross_entropy(z, y):
    z = np.asarray(z, dtype=np.float64)
    log_p = np.log(np_softmax(z))
    return float(-np.mean(log_p[np.arange(len(y)), y]))


def test_normalize_by_hand():
    # [1, 2, 3, 4]: mean 2.5, population std sqrt(1.25)
    std = math.sqrt(1.25)
    expected = [(v - 2.5) / (std + 1e-7) for v in (1, 2, 3, 4)]
    assert normalize_logits(logits([[1, 2, 3, 4]]))[0].tolist() == pytest.approx(expected, rel=1e-12)
    assert expected[0] == pytest.approx(-1.3416407, rel=1e-6)


def test_normalize_matches_numpy_and_is_standardised():
    z = normalize_logits(logits(STUDENT))
    np.testing.assert_allclose(z.numpy(), np_normalize(STUDENT), rtol=1e-12)
    np.testing.assert_allclose(z.mean(dim=1).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(dim=1, correction=0).numpy(), 1.0, rtol=1e-6)


def test_kl_divergence_by_hand():
    # row 1: KL([1/2, 1/2] || [1/4, 3/4]) = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3); row 2: identical rows, 0
    p = torch.tensor([[0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    q = torch.tensor([[0.25, 0.75], [0.2, 0.8]], dtype=torch.float64)
    assert kl_divergence(p.log(), q.log()).item() == pytest.approx(0.5 * math.log(4 / 3) / 2, rel=1e-12)
    # and the other direction: 1/4 ln(1/2) + 3/4 ln(3/2)
    assert kl_divergence(q.log(), p.log()).item() == pytest.approx(
        (0.25 * math.log(0.5) + 0.75 * math.log(1.5)) / 2, rel=1e-12
    )


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 3.0, 5.0])
def test_ca_kld_matches_numpy(beta, temperature):
    value = ca_kld(logits(STUDENT), logits(TEACHER), temperature, beta)
    assert value.item() == pytest.approx(np_ca_kld(STUDENT, TEACHER, temperature, beta), rel=1e-10)


def test_beta_picks_each_kl_direction():
    p_s = np_softmax(np_normalize(STUDENT) / 3.0)
    p_t = np_softmax(np_normalize(TEACHER) / 3.0)
    mode_seeking, mean_seeking = np_kl(p_s, p_t), np_kl(p_t, p_s)
    assert mode_seeking != pytest.approx(mean_seeking)  # the directions really differ on these logits
    assert ca_kld(logits(STUDENT), logits(TEACHER), 3.0, beta=1.0).item() == pytest.approx(mode_seeking, rel=1e-10)
    assert ca_kld(logits(STUDENT), logits(TEACHER), 3.0, beta=0.0).item() == pytest.approx(mean_seeking, rel=1e-10)
    mixed = ca_kld(logits(STUDENT), logits(TEACHER), 3.0, beta=0.25).item()
    assert mixed == pytest.approx(0.25 * mode_seeking + 0.75 * mean_seeking, rel=1e-10)


def test_kd_is_zero_when_logits_agree():
    z = logits(STUDENT)
    assert ca_kld(z, z.clone(), 3.0).item() == 0.0
    # normalisation removes shift and scale: a positive affine copy of the logits teaches nothing new
    assert ca_kld(z, 2.5 * z + 7.0, 3.0).item() == pytest.approx(0.0, abs=1e-12)


def test_temperature_cancels_only_in_the_authors_order():
    s, t = logits(STUDENT), logits(TEACHER)
    authors = [ca_kld(s, t, temperature, order="authors").item() for temperature in (1.0, 3.0, 5.0)]
    paper = [ca_kld(s, t, temperature, order="paper").item() for temperature in (1.0, 3.0, 5.0)]
    assert authors == pytest.approx([authors[0]] * 3, rel=1e-5)
    assert authors[0] == pytest.approx(paper[0], rel=1e-5)  # at T = 1 the two orders agree
    assert paper[0] > paper[1] > paper[2]  # a higher T softens both distributions towards each other


def test_t_squared_kd_tends_to_half_the_mean_squared_gap_of_normalised_logits():
    # softmax(a / T) = (1 + a / T) / C + O(T^-2) for logits a of mean zero, so both KL directions
    # become (1 / 2C) * sum_c (a_c - b_c)^2 / T^2: times T^2 the loss stops depending on T. Normalised
    # logits have mean zero and unit std, so T = 3 is already close to that limit.
    s, t = logits(STUDENT), logits(TEACHER)
    gap = normalize_logits(s) - normalize_logits(t)
    limit = (gap.pow(2).mean(dim=-1) / 2).mean().item()
    scaled = {temperature: temperature**2 * ca_kld(s, t, temperature).item() for temperature in (3.0, 5.0, 1000.0)}
    assert scaled[1000.0] == pytest.approx(limit, rel=1e-4)
    assert scaled[3.0] == pytest.approx(scaled[5.0], rel=0.05)


def test_total_loss_by_formula():
    alpha, temperature, beta = 0.7, 3.0, 0.4
    parts = teacher_guided_loss(logits(STUDENT), logits(TEACHER), torch.tensor(TARGETS), alpha, temperature, beta)
    kd = np_ca_kld(STUDENT, TEACHER, temperature, beta)
    ce = np_cross_entropy(STUDENT, TARGETS)
    assert parts["kd"].item() == pytest.approx(kd, rel=1e-10)
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-10)
    assert parts["total"].item() == pytest.approx(alpha * 9.0 * kd + (1 - alpha) * ce, rel=1e-10)


def test_alpha_extremes_select_one_term():
    s, t, y = logits(STUDENT), logits(TEACHER), torch.tensor(TARGETS)
    only_ce = teacher_guided_loss(s, t, y, alpha=0.0)
    only_kd = teacher_guided_loss(s, t, y, alpha=1.0, temperature=5.0)
    assert only_ce["total"].item() == pytest.approx(F.cross_entropy(s, y).item(), rel=1e-12)
    assert only_kd["total"].item() == pytest.approx(25.0 * only_kd["kd"].item(), rel=1e-12)


def test_gradient_reaches_the_student_only():
    s = logits(STUDENT).requires_grad_(True)
    t = logits(TEACHER).requires_grad_(True)
    teacher_guided_loss(s, t, torch.tensor(TARGETS))["total"].backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_different_class_counts_are_rejected():
    with pytest.raises(ValueError, match="same classes"):
        ca_kld(torch.zeros(2, 4), torch.zeros(2, 5), 3.0)
    with pytest.raises(ValueError, match="same classes"):
        teacher_guided_loss(torch.zeros(2, 10), torch.zeros(2, 100), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"beta": -0.1}, r"beta must be a number in \[0, 1\]"),
        ({"beta": 1.1}, r"beta must be a number in \[0, 1\]"),
        ({"beta": "confidence"}, "confidence_beta"),
        ({"alpha": 1.5}, r"alpha must be a number in \[0, 1\]"),
        ({"alpha": -0.5}, "alpha"),
        ({"order": "bogus"}, "'paper', 'authors'"),
    ],
)
def test_invalid_settings_name_the_valid_values(settings, message):
    with pytest.raises(ValueError, match=message):
        teacher_guided_loss(logits(STUDENT), logits(TEACHER), torch.tensor(TARGETS), **settings)


def identity_teacher():
    """Logits = inputs, behind a dropout that would scramble them in train mode."""
    linear = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(2))
    return nn.Sequential(nn.Dropout(p=0.9), linear)


def test_confidence_beta_is_the_mean_true_class_probability():
    ln3, ln4 = math.log(3.0), math.log(4.0)
    batches = [
        (torch.tensor([[ln3, 0.0], [0.0, 0.0]]), torch.tensor([0, 1])),  # p(true) = 3/4 and 1/2
        (torch.tensor([[0.0, ln4]]), torch.tensor([1])),  # p(true) = 4/5
    ]
    teacher = identity_teacher().train()
    teacher[0].eval()  # a mixed state that must come back as it was
    # a mean over samples, not over batches (which would give 0.7125)
    assert confidence_beta(teacher, batches) == pytest.approx((0.75 + 0.5 + 0.8) / 3, rel=1e-6)
    assert teacher.training and teacher[1].training and not teacher[0].training


def test_confidence_beta_needs_batches():
    with pytest.raises(ValueError, match="at least one batch"):
        confidence_beta(identity_teacher(), [])


def test_evaluating_restores_flags_after_an_error():
    model = identity_teacher().train()
    with pytest.raises(RuntimeError), evaluating(model):
        assert not model.training and not model[0].training
        raise RuntimeError("boom")
    assert all(module.training for module in model.modules())


def test_plain_order_is_hintons_kd_without_normalisation():
    """order="plain" skips the normalisation: with beta = 0, CA-KLD is Hinton et al.'s KL(p_t || p_s) of
    softmax(z / T), computed here with numpy; the logits' scale now matters (it cancels in the normalised orders)."""
    zs, zt = np.asarray(STUDENT), np.asarray(TEACHER)
    expected = np_kl(np_softmax(zt / 3.0), np_softmax(zs / 3.0))
    assert ca_kld(logits(STUDENT), logits(TEACHER), 3.0, beta=0.0, order="plain").item() == pytest.approx(expected)
    doubled = ca_kld(2 * logits(STUDENT), 2 * logits(TEACHER), 3.0, beta=0.0, order="plain").item()
    assert doubled != pytest.approx(expected)
    assert ca_kld(2 * logits(STUDENT), 2 * logits(TEACHER), 3.0, order="paper").item() == pytest.approx(
        ca_kld(logits(STUDENT), logits(TEACHER), 3.0, order="paper").item(), rel=1e-6
    )
