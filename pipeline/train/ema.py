"""An exponential moving average of the model's weights (``train.ema``), what validation scores
and the model file holds when it is on.

After every optimiser step ``w_avg <- d w_avg + (1 - d) w`` for every parameter and every
floating buffer (BatchNorm's running statistics follow the weights they belong to), with the
decay ramped in as ``d_t = min(decay, (1 + t) / (10 + t))`` at step t, so the average of a young
run is not dominated by its random initial weights. Integer buffers (BatchNorm's batch counter)
are copied. The average never feeds back into training: a run with it trains exactly the weights
of a run without it, and only what is validated and kept differs.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """The averaged copy of ``model`` (same layouts, in eval mode, no gradients)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema: the decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0

    def _pairs(self, model: nn.Module):
        mine = dict(self.model.named_parameters())
        mine.update(self.model.named_buffers())
        theirs = dict(model.named_parameters())
        theirs.update(model.named_buffers())
        if mine.keys() != theirs.keys():
            raise ValueError("train.ema: the averaged model's tensors are not the model's")
        return [(mine[k], theirs[k]) for k in mine]

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (after an optimiser step)."""
        d = self.decay_at(self.updates)
        floats_avg, floats_new = [], []
        for avg, new in self._pairs(model):
            if avg.is_floating_point():
                floats_avg.append(avg)
                floats_new.append(new.detach())
            else:
                avg.copy_(new)
        if floats_avg:
            torch._foreach_lerp_(floats_avg, floats_new, 1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates,
                "weights": {k: v.detach().clone() for k, v in self.model.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.model.load_state_dict(state["weights"])
