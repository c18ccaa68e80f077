"""The ``retrieval:`` section of params.yaml: cross-modal retrieval on dumped embeddings (paper
Sec. 4.2, supplement Sec. 1). See pipeline/retrieval.py.

This module must not import torch: the data stages validate every section without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.params import ParamsError, rng


@dataclass(frozen=True)
class RetrievalParams:
    """Stage ``retrieval``. The paper trains each scorer with Adam lr 2e-5, batch 64 for 750
    epochs on 8192-wide flattened embeddings; these CPU-sized defaults (lr 1e-3, 60 epochs,
    width 256) converge on the embedded data in seconds per model. The epoch is chosen on val."""

    width: int = rng(256, 8, 16384, doc="common width of the query and result projections; "
                     "the 4-layer tanh scorer narrows it by 2 per layer (official: 8192)")
    lr: float = rng(1e-3, 0.0, 1.0, lo_open=True, doc="Adam learning rate (paper 2e-5)")
    epochs: int = rng(60, 1, 100000, doc="paper 750")
    batch_size: int = rng(64, 1, 100000, doc="anchors per step (paper 64)")
    neighbours: int = rng(25, 1, 100000, doc="hard negatives are drawn from this many nearest "
                          "neighbours of the anchor (supplement: 25)")
    exclude_same_video: bool = True   # negatives never come from the anchor's own video
    pool: Literal["videos", "clips"] = "videos"  # eval pool: one clip per video | every clip
    standardize: bool = True          # z-score each flattened embedding with train statistics
    repeats: int = rng(3, 1, 100, doc="scorers per entry (seeds seed, seed+5, ...): the "
                       "metrics are their mean and std (a small test pool is noisy)")
    seed: int = rng(0, 0, 2**31 - 1)
    threads: int = rng(2, 1, 256, doc="torch CPU threads")

    def __post_init__(self):
        if self.width % 8:
            raise ParamsError(f"width: must be a multiple of 8 (the scorer halves it three "
                              f"times), got {self.width}")
