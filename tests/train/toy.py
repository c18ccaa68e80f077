"""A small real task for testing the training loop: a two-layer network regressing a fixed
linear map of random inputs, with dropout (torch RNG) and a random input gain (numpy RNG) so
that exact resume has RNG state to restore."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset


class ToyData(Dataset):
    def __init__(self, n: int = 48, dim: int = 6, gain: bool = True):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, dim, generator=g)
        self.w = torch.randn(dim, 2, generator=g)
        self.gain = gain

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        gain = float(np.random.uniform(0.5, 1.5)) if self.gain else 1.0
        x = self.x[i] * gain
        return {"x": x, "y": x @ self.w}


def toy_model(dim: int = 6, dropout: float = 0.2) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 2))


class ToyTask:
    """loss = MSE; validation "sdr" = a scripted sequence (or -MSE on the training data)."""

    def __init__(self, data: ToyData, val_sdr=None, nan_at_call: int | None = None):
        self.data, self.val_sdr, self.nan_at_call = data, list(val_sdr or []), nan_at_call
        self.calls = 0
        self.validations = 0

    def loss(self, model, batch, device):
        self.calls += 1
        pred = model(batch["x"].to(device))
        loss = ((pred - batch["y"].to(device)) ** 2).mean()
        if self.nan_at_call is not None and self.calls >= self.nan_at_call:
            loss = loss * float("nan")
        return loss, {"mse": float(loss.detach())}

    def validate(self, model, device):
        self.validations += 1
        if self.val_sdr:
            return {"sdr": self.val_sdr[self.validations - 1], "sdr_mix": 0.0}
        pred = model(self.data.x.to(device))
        return {"sdr": -float(((pred - self.data.x @ self.data.w) ** 2).mean()), "sdr_mix": 0.0}

    def package(self, model):
        return {"args": {"dim": 6}, "state_dict": {k: v.detach().clone()
                                                   for k, v in model.state_dict().items()}}

    def load_package(self, model, package):
        model.load_state_dict(package["state_dict"])


def settings(**kw) -> dict:
    base = dict(lr=1e-2, batch_size=4, epochs=2, steps_per_epoch=0, betas=(0.9, 0.999),
                weight_decay=0.0, schedule="cosine", warmup_steps=2, grad_clip=1.0, workers=0,
                amp="auto", checkpoint_every=0, seed=7)
    base.update(kw)
    return base


def record_validated(task) -> list:
    """Make ``task.validate`` also keep a copy of the weights it scores; returns that list."""
    seen = []
    original = task.validate

    def validate(model, device):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return original(model, device)

    task.validate = validate
    return seen
