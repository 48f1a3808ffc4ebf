"""Lookahead averaging, airbench94's (Keller Jordan, 2024, MIT licence; README "The CPU recipe"): every few
steps the weights move to a slow average of themselves, which smooths the last, noisy steps of a short
training at a high learning rate. `train.fit` runs it after each optimizer step when
`TrainConfig.lookahead_every` is set.
"""

from __future__ import annotations

import torch
from torch import nn

from tgkit.util.errors import InputError


class Lookahead:
    """airbench's lookahead: every `every` steps the weights move to a slow average of themselves,

        slow <- d * slow + (1 - d) * fast,   fast <- slow,   d = 0.95^every * (step / total)^3

    over every floating-point tensor of the state dict (BatchNorm's running statistics too). d grows from 0
    (no averaging while the lr is high) to 0.95^every at the end, so the late, noisy steps are averaged.
    A pruned weight is zero in both fast and slow from the start (the slow copy is taken after the masks
    are applied), so the average keeps it zero: averaging never revives a pruned weight (tested).
    """

    def __init__(self, model: nn.Module, every: int, total_steps: int):
        if total_steps < 1:
            raise InputError(
                "lookahead needs the number of training steps: train with a loader that has a length "
                "(a DataLoader or a list), or set lookahead_every=0"
            )
        self.model, self.every, self.total = model, every, total_steps
        self.steps = 0
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        if self.steps % self.every:
            return
        decay = 0.95**self.every * min(1.0, self.steps / self.total) ** 3
        fast = self.model.state_dict()
        for name, slow in self.slow.items():
            slow.lerp_(fast[name], 1 - decay)
            fast[name].copy_(slow)

    def state_dict(self) -> dict:
        return {"steps": self.steps, "slow": self.slow}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]
        for name, slow in self.slow.items():
            slow.copy_(state["slow"][name])
