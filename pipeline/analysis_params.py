"""The ``embed:``, ``probe:`` and ``attention:`` sections of params.yaml: the stages that look
into a trained TriBERT (embedding dump, supplement Table 4 probe, supplement Fig. 2 pictures).

This module must not import torch: the data stages validate every section without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.params import rng


@dataclass(frozen=True)
class EmbedParams:
    """Stage ``embed``: every clip run alone through the pre-trained model (eval mode)."""

    batch_size: int = rng(8, 1, 1024, doc="clips per forward pass")
    threads: int = rng(2, 1, 256, doc="torch CPU threads")


@dataclass(frozen=True)
class ProbeParams:
    """Stage ``probe``: an MLP instrument classifier on frozen features (supplement 2.4)."""

    hidden: int = rng(256, 1, 16384, doc="hidden units of the one-hidden-layer MLP")
    epochs: int = rng(200, 1, 100000)
    lr: float = rng(1e-3, 0.0, 10.0, lo_open=True)
    weight_decay: float = rng(1e-4, 0.0, 10.0)
    dropout: float = rng(0.2, 0.0, 0.9)
    batch_size: int = rng(32, 1, 100000)
    pooling: Literal["flatten", "mean"] = "flatten"   # tokens -> one vector per clip
    seed: int = rng(0, 0, 2**31 - 1, doc="the first seed")
    repeats: int = rng(5, 1, 100, doc="probes per entry (seeds seed..seed+repeats-1), averaged")
    threads: int = rng(1, 1, 256, doc="torch CPU threads (1 is fastest for these small MLPs)")


@dataclass(frozen=True)
class AttentionParams:
    """Stage ``attention``: visual class-attention maps over test frames (supplement Fig. 2)."""

    count: int = rng(4, 1, 1000, doc="test clips pictured")
    seed: int = rng(0, 0, 2**31 - 1, doc="which clips")
    alpha: float = rng(0.5, 0.0, 1.0, doc="opacity of the heatmap over the frame")
    dpi: int = rng(100, 20, 600)
