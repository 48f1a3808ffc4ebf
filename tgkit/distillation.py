"""What the distillation loss offers a student, measured: how soft the teacher's targets are, and how much of
the gradient each term of the loss carries (notebook 06, "why KD wins or loses").

    target_entropy(teacher_logits, temperature, order)      mean entropy of the targets p_t, in nats
    gradient_shares(student_logits, teacher_logits, labels, kd)
                                                            each term's share of the gradient on the logits

Both read logits, not networks: compute them once (`train.predict`) and ask about every setting of the loss.
`KD_VARIANTS`: the loss with one ingredient changed at a time, by the ingredient each changes (notebook 06's
ablation).

Targets. The student is asked to match p_t = softmax(zt), zt the teacher's tempered logits (`losses.tempered`:
norm(z) / T in the paper's order, norm(z / T) in the authors', z / T without normalisation). Their entropy
H(p_t) = -sum_c p_t,c log p_t,c lies between 0 (one class) and log C (uniform over C classes): targets near
log C carry almost nothing about which class is right, only how the teacher ranks the others.

Gradient. The loss L = alpha * T^2 * CA-KLD + (1 - alpha) * CE has two terms; each sends the student a
gradient on its logits z_s, g_KD = d(alpha T^2 CA-KLD)/dz_s and g_CE = d((1 - alpha) CE)/dz_s (every
parameter's gradient is these, carried back through the same network). Their norms say which term drives the
step, kd_share = |g_KD| / (|g_KD| + |g_CE|), and their cosine whether the teacher pulls the same way as the labels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from tgkit.hparams import KDConfig
from tgkit.losses import PLAIN, check_loss_settings, teacher_guided_loss, tempered

# variant -> (the ingredient of the KD loss it changes, the fields of `KDConfig` it changes); plain Hinton KD
# (no logit normalisation: order "plain", beta 0) is the classic reference
KD_VARIANTS = {
    "T=1": ("the temperature", {"temperature": 1.0}),
    "T=5": ("the temperature", {"temperature": 5.0}),
    "alpha=0.3": ("alpha", {"alpha": 0.3}),
    "order=authors": ("the order", {"order": "authors"}),
    "Hinton (no normalisation)": ("the normalisation", {"order": PLAIN, "beta": 0.0}),
}


def target_entropy(teacher_logits: Tensor, temperature: float, order: str = "paper") -> float:
    """Mean over samples of H(softmax(zt)) in nats, zt the tempered logits of `order` at `temperature`.

    H(p) = -sum_c p_c log p_c,   0 <= H <= log C
    """
    check_loss_settings(temperature=temperature, order=order)
    log_p = F.log_softmax(tempered(teacher_logits.double(), temperature, order), dim=-1)
    return float(-(log_p.exp() * log_p).sum(-1).mean())


def gradient_shares(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, kd: KDConfig) -> dict[str, float]:
    """The gradients the two terms of the teacher-guided loss (with `kd`'s alpha, T, beta, order) send to the
    student's logits, over all the samples given at once (the means over the batch, as in training):

        g_KD = d(alpha * T^2 * CA-KLD(z_s, z_t)) / dz_s,   g_CE = d((1 - alpha) * CE(z_s, y)) / dz_s
        kd_share = |g_KD| / (|g_KD| + |g_CE|),   cosine = <g_KD, g_CE> / (|g_KD| |g_CE|)

    Returns {"kd_norm", "ce_norm", "kd_share", "cosine"} (cosine NaN when a term sends no gradient: alpha 0 or 1).
    """
    logits = student_logits.detach().double().requires_grad_(True)
    teacher = teacher_logits.detach().double()
    parts = teacher_guided_loss(logits, teacher, labels, kd.alpha, kd.temperature, kd.beta, kd.order)
    kd_term = kd.alpha * kd.temperature**2 * parts["kd"]
    ce_term = (1 - kd.alpha) * parts["ce"]
    (g_kd,) = torch.autograd.grad(kd_term, logits, retain_graph=True)
    (g_ce,) = torch.autograd.grad(ce_term, logits)
    kd_norm, ce_norm = float(g_kd.norm()), float(g_ce.norm())
    both = kd_norm * ce_norm
    return {
        "kd_norm": kd_norm,
        "ce_norm": ce_norm,
        "kd_share": kd_norm / (kd_norm + ce_norm) if kd_norm + ce_norm > 0 else math.nan,
        "cosine": float((g_kd * g_ce).sum()) / both if both > 0 else math.nan,
    }
