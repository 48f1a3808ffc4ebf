"""Importance scores for one-shot pruning: teacher-guided, and the baselines behind the same interface.

Teacher-guided importance (docs/method.md section 3). The student sees E epochs of training batches with
the total teacher-guided loss L (see `tgkit.losses`); nothing is updated. Per mini-batch t and weight W

    g_t = |W * dL/dW|        variant "taylor" (default): first-order estimate of the loss change
                             when W is set to zero
    g_t = |dL/dW|            variant "grad_abs"   (earlier versions of the authors' code)
    g_t = (dL/dW)^2          variant "grad_sq"

and the score is the bias-corrected exponential moving average of g_t over all batches (m = 0.9):

    S_0 = 0,   S_t = m * S_{t-1} + (1 - m) * g_t,   score = S_N / (1 - m^N)

Baselines: SNIP |W * dCE/dW| (the same machinery with cross-entropy and no teacher), magnitude |W|,
and seeded uniform random scores. Every scorer returns name -> float32 CPU tensor shaped like the
parameter, for `tgkit.masker.global_masks`; the default parameters are
`tgkit.masker.prunable_parameters(model)`. The registry `CRITERIA` puts the four behind one signature,
`score(name, student, teacher=, batches=, settings=, seed=)`, and says what each one's scores depend on.

The data-passing scorers run their forward passes (student and teacher) at `precision`, as training
does (`ScoringConfig.precision`, `device.autocast_dtype`): "bf16" autocasts them, "auto" where the device
multiplies bf16 natively, "fp32" (the default) never. Only the forward passes change: the weights, the
gradients dL/dW (autograd hands them back in the weights' fp32), the saliency and its EMA stay fp32.

Scoring leaves the student exactly as it found it: parameters untouched (gradients are taken with
`torch.autograd.grad`, so no `.grad` is ever written and nothing steps), BatchNorm running statistics
restored, training and requires_grad flags restored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tgkit.hparams import PRECISIONS, ScoringConfig
from tgkit.losses import check_loss_settings, confidence_beta, evaluating, teacher_guided_loss
from tgkit.masker import prunable_parameters
from tgkit.models import logits_of
from tgkit.util.device import autocast
from tgkit.util.errors import InputError
from tgkit.util.progress import progress_bar

Batches = Iterable[tuple[Tensor, Tensor]]


class BiasCorrectedEMA:
    """Exponential moving average with Adam's bias correction.

        S_0 = 0,   S_t = m * S_{t-1} + (1 - m) * g_t,   value = S_t / (1 - m^t)

    Starting from zero shrinks S_t by exactly 1 - m^t, the sum of the weights (1 - m) * m^(t-i) it
    gives g_1..g_t; dividing by it makes `value` a proper weighted average: a constant g gives back g
    after any number of steps, and few batches are not biased towards zero. (Starting from S_1 = g_1
    instead, as the authors' code does, makes the same correction wrong.)
    """

    def __init__(self, momentum: float = 0.9):
        _check_momentum(momentum)
        self.momentum = momentum
        self.steps = 0
        self._average: Tensor | None = None

    def update(self, sample: Tensor) -> None:
        """S_t = m * S_{t-1} + (1 - m) * g_t"""
        if self._average is None:
            self._average = torch.zeros_like(sample)
        self._average.mul_(self.momentum).add_(sample, alpha=1 - self.momentum)
        self.steps += 1

    @property
    def value(self) -> Tensor:
        """S_t / (1 - m^t)"""
        if self.steps == 0:
            raise ValueError("the moving average has no samples yet.")
        return self._average / (1 - self.momentum**self.steps)


def _taylor(weight: Tensor, grad: Tensor) -> Tensor:
    """|W * dL/dW|"""
    return (weight * grad).abs()


def _grad_abs(weight: Tensor, grad: Tensor) -> Tensor:
    """|dL/dW|"""
    return grad.abs()


def _grad_sq(weight: Tensor, grad: Tensor) -> Tensor:
    """(dL/dW)^2"""
    return grad * grad


SALIENCIES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "taylor": _taylor,
    "grad_abs": _grad_abs,
    "grad_sq": _grad_sq,
}


def teacher_guided_scores(
    student: nn.Module,
    teacher: nn.Module,
    batches: Batches,
    *,
    epochs: int = 3,
    ema: float = 0.9,
    alpha: float = 0.7,
    temperature: float = 3.0,
    beta: float | str = 0.5,
    order: str = "paper",
    variant: str = "taylor",
    precision: str = "fp32",
    params: dict[str, nn.Parameter] | None = None,
    progress: bool = True,
) -> dict[str, Tensor]:
    """Bias-corrected EMA of the saliency of the total teacher-guided loss over `epochs` passes.

        L = alpha * T^2 * CA-KLD(z_s, z_t) + (1 - alpha) * CE(z_s, y),   g_t = |W * dL/dW| (variant "taylor")

    `batches`: a re-iterable of (inputs, targets) on the student's device. beta="confidence" first
    measures the teacher's mean true-class probability over `batches` (`confidence_beta`). The
    teacher runs in eval mode under no_grad and is given back in its modes; the student runs in
    train mode (batch statistics, as in training) and is given back exactly as found. `precision`:
    of every forward pass, teacher's and student's ("fp32", "bf16", "auto": see the module docstring).
    """
    confidence = isinstance(beta, str) and beta == "confidence"
    _check_accumulation_settings(epochs, ema, variant, precision)
    # any valid beta stands in for the measured one, so that bad settings fail before the teacher's pass
    check_loss_settings(alpha, temperature, 0.5 if confidence else beta, order)
    _check_reiterable(batches, passes=epochs + 1 if confidence else epochs)
    if confidence:
        with autocast(next(teacher.parameters()).device, precision):
            beta = confidence_beta(teacher, batches)

    def total_loss(inputs: Tensor, targets: Tensor) -> Tensor:
        with torch.no_grad():
            teacher_logits = logits_of(teacher(inputs))
        return teacher_guided_loss(
            logits_of(student(inputs)), teacher_logits, targets, alpha, temperature, beta, order
        )["total"]

    with evaluating(teacher):
        return _accumulate_saliency(
            student,
            batches,
            total_loss,
            epochs=epochs,
            ema=ema,
            variant=variant,
            precision=precision,
            params=params,
            progress=progress,
            description="teacher-guided scores",
        )


def snip_scores(
    model: nn.Module,
    batches: Batches,
    *,
    epochs: int = 1,
    ema: float = 0.9,
    precision: str = "fp32",
    params: dict[str, nn.Parameter] | None = None,
    progress: bool = True,
) -> dict[str, Tensor]:
    """SNIP-style connection sensitivity |W * dCE/dW|, averaged like the teacher-guided score; no teacher."""
    _check_accumulation_settings(epochs, ema, "taylor", precision)
    _check_reiterable(batches, passes=epochs)

    def cross_entropy(inputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits_of(model(inputs)), targets)

    return _accumulate_saliency(
        model,
        batches,
        cross_entropy,
        epochs=epochs,
        ema=ema,
        variant="taylor",
        precision=precision,
        params=params,
        progress=progress,
        description="SNIP scores",
    )


def magnitude_scores(model: nn.Module, params: dict[str, nn.Parameter] | None = None) -> dict[str, Tensor]:
    """|W|: the classic magnitude criterion."""
    params = prunable_parameters(model) if params is None else params
    return {name: param.detach().abs().to(device="cpu", dtype=torch.float32) for name, param in params.items()}


def random_scores(model: nn.Module, seed: int = 0, params: dict[str, nn.Parameter] | None = None) -> dict[str, Tensor]:
    """Uniform [0, 1) scores from a private generator: the same seed gives the same masks, whatever
    the global random state."""
    params = prunable_parameters(model) if params is None else params
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.rand(param.shape, generator=generator) for name, param in params.items()}


# --------------------------------------------------------------------------------------------------
# the registry: every criterion behind one signature


@dataclass(frozen=True)
class Criterion:
    """A pruning criterion: its scorer above and what that scorer needs.

    needs_teacher: the scorer takes the teacher after the student.
    needs_data: it passes over training batches, with keyword arguments `options(settings)` read from
        the `ScoringConfig`; its scores depend on the data and on those settings.
    uses_seed: its scores depend on `seed` (a keyword argument), and on nothing else.
    """

    label: str  # how tables and figures name it
    scorer: Callable[..., dict[str, Tensor]]
    needs_teacher: bool = False
    needs_data: bool = False
    uses_seed: bool = False
    options: Callable[[ScoringConfig], dict] = lambda settings: {}


CRITERIA: dict[str, Criterion] = {
    "teacher_guided": Criterion(
        "teacher-guided",
        teacher_guided_scores,
        needs_teacher=True,
        needs_data=True,
        options=lambda s: dict(
            epochs=s.epochs,
            ema=s.ema,
            alpha=s.kd.alpha,
            temperature=s.kd.temperature,
            beta=s.kd.beta,
            order=s.kd.order,
            variant=s.variant,
            precision=s.precision,
        ),
    ),
    "snip": Criterion(
        "SNIP",
        snip_scores,
        needs_data=True,
        options=lambda s: dict(epochs=s.snip_epochs, ema=s.ema, precision=s.precision),
    ),
    "magnitude": Criterion("magnitude", magnitude_scores),
    "random": Criterion("random", random_scores, uses_seed=True),
}


def criterion(name: str) -> Criterion:
    """The registry's entry for `name`; an unknown name raises a ValueError that lists the known ones."""
    if name not in CRITERIA:
        raise InputError(f"unknown criterion {name!r}; choose one of {', '.join(CRITERIA)}")
    return CRITERIA[name]


def score(
    name: str,
    student: nn.Module,
    *,
    teacher: nn.Module | None = None,
    batches: Batches | None = None,
    settings: ScoringConfig | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Tensor]:
    """The scores of every prunable weight of `student` by the criterion `name`, one signature for all:
    each criterion takes what it needs (`Criterion`) and ignores the rest."""
    chosen = criterion(name)
    settings = ScoringConfig() if settings is None else settings
    if chosen.needs_teacher and teacher is None:
        raise InputError(f"the {chosen.label} criterion needs the teacher: pass teacher=")
    if chosen.needs_data and batches is None:
        raise InputError(f"the {chosen.label} criterion passes over training batches: pass batches=")
    arguments = [student] + [teacher] * chosen.needs_teacher + [batches] * chosen.needs_data
    options = chosen.options(settings) | ({"progress": progress} if chosen.needs_data else {})
    return chosen.scorer(*arguments, **options, **({"seed": seed} if chosen.uses_seed else {}))


def _accumulate_saliency(
    model: nn.Module,
    batches: Batches,
    loss_of: Callable[[Tensor, Tensor], Tensor],
    *,
    epochs: int,
    ema: float,
    variant: str,
    precision: str,
    params: dict[str, nn.Parameter] | None,
    progress: bool,
    description: str,
) -> dict[str, Tensor]:
    """The loop every gradient-based scorer shares: per batch, the saliency of `loss_of(inputs, targets)`
    for each parameter, folded into a bias-corrected EMA; the model is given back exactly as found.
    The loss's forward passes run at `precision`, the backward pass and everything after it in fp32."""
    params = prunable_parameters(model) if params is None else params
    _check_parameters_of(model, params)
    saliency = SALIENCIES[variant]
    weights = list(params.values())
    averages = [BiasCorrectedEMA(ema) for _ in weights]
    with _left_as_found(model), torch.enable_grad():
        model.train()
        for weight in weights:
            weight.requires_grad_(True)
        for inputs, targets in progress_bar(
            _repeat(batches, epochs), total=_passes_length(batches, epochs), desc=description, disable=not progress
        ):
            with autocast(weights[0].device, precision):
                loss = loss_of(inputs, targets)
            grads = torch.autograd.grad(loss, weights)  # dL/dW in each weight's dtype: fp32
            for average, weight, grad in zip(averages, weights, grads):
                average.update(saliency(weight.detach(), grad))
    if averages[0].steps == 0:
        raise InputError("scoring got no batches: pass a non-empty re-iterable of (inputs, targets).")
    return {name: average.value.to(device="cpu", dtype=torch.float32) for name, average in zip(params, averages)}


@contextmanager
def _left_as_found(model: nn.Module) -> Iterator[nn.Module]:
    """Give `model` back with its buffers bit-identical and its training and requires_grad flags as they were.

    Parameters need no copy: gradients come from `torch.autograd.grad` and nothing steps. Buffers
    do: a train-mode forward moves BatchNorm's running statistics and num_batches_tracked.
    """
    buffers = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    training = [(module, module.training) for module in model.modules()]
    requires_grad = [(param, param.requires_grad) for param in model.parameters()]
    try:
        yield model
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        for module, was_training in training:
            module.training = was_training
        for param, flag in requires_grad:
            param.requires_grad_(flag)


def _repeat(batches: Batches, epochs: int) -> Iterator[tuple[Tensor, Tensor]]:
    for _ in range(epochs):
        yield from batches


def _passes_length(batches: Batches, epochs: int) -> int | None:
    try:
        return epochs * len(batches)
    except TypeError:  # an iterable without a length: the bar counts without a total
        return None


def _check_accumulation_settings(epochs: int, ema: float, variant: str, precision: str) -> None:
    if variant not in SALIENCIES:
        raise InputError(f"variant must be one of {tuple(SALIENCIES)}, got {variant!r}.")
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    if not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"epochs must be a whole number >= 1, got {epochs!r}.")
    _check_momentum(ema)


def _check_momentum(momentum: float) -> None:
    if isinstance(momentum, str) or not 0 <= momentum < 1:
        raise InputError(f"ema momentum must be in [0, 1) (the paper uses 0.9), got {momentum!r}.")


def _check_reiterable(batches: Batches, passes: int) -> None:
    # asking for a fresh iterator could start loader workers, so look at the type instead
    if passes > 1 and isinstance(batches, Iterator):
        raise InputError(
            "batches is a one-shot iterator but scoring passes over it more than once; pass a list or a "
            "re-iterable batches object (e.g. ImageData.batches(...))."
        )


def _check_parameters_of(model: nn.Module, params: dict[str, nn.Parameter]) -> None:
    if not params:
        raise InputError("no parameters to score: params is empty (is the prunable set empty for this model?).")
    own = {id(param) for param in model.parameters()}
    foreign = [name for name, param in params.items() if id(param) not in own]
    if foreign:
        raise InputError(f"params {foreign} are not parameters of the scored model.")
