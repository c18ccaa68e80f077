"""The ``train:`` and ``finetune:`` sections of params.yaml (paper Sec. 3.2.1 and 3.2.2).

The optimiser settings depend on the model preset: the paper trains with Adam at lr 1e-5 and
batch 12 (Sec. 3.2.1, "Implementation Details") and fine-tunes at lr 1e-7 (Sec. 3.2.2); those
rates barely move a small model in the minutes a CPU run has, so the ``tiny`` preset has its
own. Each such field defaults to ``None`` (= the preset's value, :data:`PRESETS`), so
``dvc exp run -S train.lr=3e-4`` overrides one setting of a preset.

This module must not import torch: the data stages validate every section without it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Optional

from pipeline.params import ParamsError, opt, rng

# Per model preset: the values of the ``None``-default fields below.
PRESETS: dict[str, dict] = {
    "paper": dict(lr=1e-5, batch_size=12, epochs=6000, steps_per_epoch=0,
                  finetune_lr=1e-7, finetune_epochs=1500),
    "tiny": dict(lr=1e-3, batch_size=8, epochs=16, steps_per_epoch=0,
                 finetune_lr=3e-4, finetune_epochs=2),
}






@dataclass(frozen=True)
class LossWeights:
    """Weights of the four terms of the pre-training loss (REFERENCE.md: all 1 officially)."""

    mask: float = rng(1.0, 0.0, 1000.0, doc="weighted BCE on the binary masks")
    visual: float = rng(1.0, 0.0, 1000.0, doc="WSDDN classification of the visual stream")
    pose: float = rng(1.0, 0.0, 1000.0, doc="WSDDN classification of the pose stream")
    audio: float = rng(1.0, 0.0, 1000.0, doc="multi-label audio classification")


@dataclass(frozen=True)
class TrainParams:
    """Mix-and-separate pre-training (stage ``train``). ``resolved(preset)`` gives plain values."""

    seed: int = rng(0, 0)
    # optimisation (None = the model preset's value)
    lr: Optional[float] = opt(0.0, 1.0, "Adam learning rate (paper: 1e-5)")
    batch_size: Optional[int] = opt(1, 4096, "global batch, split over the ranks (paper: 12)")
    epochs: Optional[int] = opt(1, 100000)
    steps_per_epoch: Optional[int] = opt(0, 10**9, "0 = one pass over the training mixtures")
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = rng(0.0, 0.0, 1.0)
    schedule: Literal["constant", "cosine"] = "constant"   # paper: constant
    warmup_steps: int = rng(0, 0, 10**9)
    grad_clip: float = rng(0.0, 0.0, 1e6, doc="max gradient norm; 0 = no clipping")
    loss: LossWeights = field(default_factory=LossWeights)
    # data
    workers: int = rng(0, 0, 64, doc="DataLoader worker processes per rank")
    val_mixtures: int = rng(0, 0, 10**9, doc="val mixtures scored per epoch; 0 = all")
    # numerics
    amp: Literal["auto", "off"] = "auto"   # auto: bf16 autocast on CUDA only
    mask: Literal["ratio", "binary"] = "ratio"   # val output: ratio masks | thresholded (paper)
    threshold: float = rng(0.5, 0.0, 1.0, doc="binary mask threshold (REFERENCE.md)")
    # checkpoints
    checkpoint_every: int = rng(0, 0, 10**9, doc="also save every N steps; 0 = per epoch only")

    def __post_init__(self):
        if not (0.0 <= self.betas[0] < 1.0 and 0.0 <= self.betas[1] < 1.0):
            raise ParamsError(f"betas: expected two values in [0, 1), got {list(self.betas)}")

    def resolved(self, preset: str) -> dict:
        """Every setting as plain data, ``None`` fields filled from the model preset's."""
        out = dataclasses.asdict(self)
        for key in ("lr", "batch_size", "epochs", "steps_per_epoch"):
            if out[key] is None:
                out[key] = PRESETS[preset][key]
        return out


@dataclass(frozen=True)
class FinetuneParams:
    """Fine-tuning on the 11 MUSIC classes (paper Sec. 3.2.2, stage ``finetune``): new
    classification layers, the same loss and settings as ``train`` except these."""

    lr: Optional[float] = opt(0.0, 1.0, "paper: 1e-7")
    epochs: Optional[int] = opt(1, 100000, "paper: 1500")
    seed: int = rng(0, 0)

    def resolved(self, train: TrainParams, preset: str) -> dict:
        """The train settings with this section's lr and epochs (preset defaults if ``None``)."""
        out = train.resolved(preset)
        out["lr"] = PRESETS[preset]["finetune_lr"] if self.lr is None else self.lr
        out["epochs"] = PRESETS[preset]["finetune_epochs"] if self.epochs is None else self.epochs
        out["seed"] = self.seed
        return out
