"""Context-aware knowledge distillation (CA-KLD) on normalised logits, and the total teacher-guided loss.

The student learns from the labels (cross-entropy) and from the teacher's whole output distribution
(CA-KLD). Both networks' logits are first normalised per sample, so the student copies the *shape*
of the teacher's logits, not their scale:

    norm(z)  = (z - mean(z)) / (std(z) + eps)            per sample, over the classes
    zt       = norm(z) / T                               order="paper" (default)
    zt       = norm(z / T)                               order="authors" (their notebooks)
    zt       = z / T                                     order="plain": no normalisation, Hinton et al.'s KD
                                                         (with beta = 0, the mean-seeking KL alone)
    p        = softmax(zt)
    CA-KLD   = beta * KL(p_s || p_t) + (1 - beta) * KL(p_t || p_s)
    L        = alpha * T^2 * CA-KLD + (1 - alpha) * CE(z_s, y)

With order="authors" the temperature cancels inside the normalisation (norm(z / T) = norm(z) up to
eps), so T only acts through the T^2 factor; the notebooks show the difference.

KL(p_s || p_t) is mode-seeking (the student concentrates on the teacher's main classes) and
KL(p_t || p_s) is mean-seeking (it covers every class the teacher gives mass to); beta mixes them.
The confidence-aware rule of BitDistiller sets beta to the teacher's mean probability on the true
class (`confidence_beta`): a confident teacher makes the student mode-seeking.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tgkit.models import logits_of
from tgkit.util.errors import InputError

ORDERS = ("paper", "authors")  # the two orders of normalising and dividing by T
PLAIN = "plain"  # no normalisation: the reference the normalised orders are measured against


def normalize_logits(z: Tensor, eps: float = 1e-7) -> Tensor:
    """Standardise each sample's logits over the class dimension (the last one).

    norm(z) = (z - mean(z)) / (std(z) + eps),   std the population standard deviation
    """
    mean = z.mean(dim=-1, keepdim=True)
    std = z.std(dim=-1, correction=0, keepdim=True)
    return (z - mean) / (std + eps)


def kl_divergence(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p || q) from log-probabilities, summed over the classes and averaged over the batch.

    KL(p || q) = sum_c p_c * (log p_c - log q_c)
    """
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()


def ca_kld(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float,
    beta: float = 0.5,
    order: str = "paper",
) -> Tensor:
    """Context-aware KL divergence between the tempered, normalised distributions.

        CA-KLD = beta * KL(p_s || p_t) + (1 - beta) * KL(p_t || p_s)

    with p = softmax(norm(z) / T) (order="paper") or softmax(norm(z / T)) (order="authors").
    Gradients flow into whichever logits require them; `teacher_guided_loss` detaches the teacher's.
    """
    _check_same_classes(student_logits, teacher_logits)
    _check_ca_kld_settings(temperature, beta, order)
    log_p_student = F.log_softmax(tempered(student_logits, temperature, order), dim=-1)
    log_p_teacher = F.log_softmax(tempered(teacher_logits, temperature, order), dim=-1)
    mode_seeking = kl_divergence(log_p_student, log_p_teacher)
    mean_seeking = kl_divergence(log_p_teacher, log_p_student)
    return beta * mode_seeking + (1 - beta) * mean_seeking


def teacher_guided_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    alpha: float = 0.7,
    temperature: float = 3.0,
    beta: float = 0.5,
    order: str = "paper",
) -> dict[str, Tensor]:
    """The total loss used for importance scoring and for retraining with KD.

        L = alpha * T^2 * CA-KLD + (1 - alpha) * CE(z_s, y)

    The T^2 factor keeps the distillation gradients at the scale of the cross-entropy's as T grows.
    Returns {"total": L, "ce": CE, "kd": CA-KLD (without alpha * T^2)} for logging and plotting.
    """
    _check_unit_interval("alpha", alpha)
    kd = ca_kld(student_logits, teacher_logits.detach(), temperature, beta, order)
    ce = F.cross_entropy(student_logits, targets)
    total = alpha * temperature**2 * kd + (1 - alpha) * ce
    return {"total": total, "ce": ce, "kd": kd}


def check_loss_settings(alpha: float = 0.7, temperature: float = 3.0, beta: float = 0.5, order: str = "paper") -> None:
    """Raise the `ValueError` that `teacher_guided_loss` would, before any batch is computed."""
    _check_unit_interval("alpha", alpha)
    _check_ca_kld_settings(temperature, beta, order)


def confidence_beta(teacher: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> float:
    """beta for the confidence-aware rule: the teacher's mean softmax probability on the true class.

        beta = (1 / N) * sum_i softmax(teacher(x_i))[y_i]        over every sample of `batches`

    The teacher runs in eval mode under no_grad and is given back in the modes it had.
    """
    # a 0-d CPU tensor adds onto any device: the sum stays on the GPU and the loop never waits for it
    confidence_sum, samples = torch.zeros((), dtype=torch.float64), 0
    with evaluating(teacher), torch.no_grad():
        for inputs, targets in batches:
            probabilities = logits_of(teacher(inputs)).softmax(dim=-1)
            confidence_sum = confidence_sum + probabilities.gather(-1, targets.view(-1, 1)).double().sum()
            samples += targets.numel()
    if samples == 0:
        raise InputError("confidence_beta needs at least one batch of (inputs, targets).")
    return confidence_sum.item() / samples


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Run `model` in eval mode inside the block, then give every submodule back its own training flag.

    Restoring flag by flag (not `model.train(was_training)`) keeps a deliberately mixed state, such
    as a frozen BatchNorm inside a training network, exactly as it was.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, was_training in flags:
            module.training = was_training


def tempered(logits: Tensor, temperature: float, order: str) -> Tensor:
    """zt of the module docstring: norm(z) / T ("paper"), norm(z / T) ("authors") or z / T ("plain")."""
    if order == PLAIN:
        return logits / temperature
    if order == "paper":
        return normalize_logits(logits) / temperature
    return normalize_logits(logits / temperature)


def _check_same_classes(student_logits: Tensor, teacher_logits: Tensor) -> None:
    if student_logits.shape != teacher_logits.shape:
        raise InputError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} "
            f"differ in shape: teacher and student must be trained on the same classes and see the same batch."
        )


def _check_ca_kld_settings(temperature: float, beta: float, order: str) -> None:
    if isinstance(temperature, str) or not 0 < temperature < math.inf:
        raise InputError(f"temperature must be a finite number > 0 (the paper uses 3 or 5), got {temperature!r}.")
    if isinstance(beta, str):
        raise InputError(
            f"beta must be a number in [0, 1], got {beta!r}; for the confidence rule compute it first "
            f"with confidence_beta(teacher, batches)."
        )
    _check_unit_interval("beta", beta)
    if order not in (*ORDERS, PLAIN):
        raise InputError(
            f"order must be one of {ORDERS} ('paper': norm(z) / T, 'authors': norm(z / T)) or {PLAIN!r} "
            f"(z / T, no normalisation), got {order!r}."
        )


def _check_unit_interval(name: str, value: float) -> None:
    if isinstance(value, str) or not 0 <= value <= 1:
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}.")
