"""The ``evaluate:`` section of params.yaml (stages ``evaluate`` and ``evaluate_music11``).

Kept apart from :mod:`pipeline.evaluate` so that validating params.yaml never imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from pipeline.params import opt, rng


@dataclass(frozen=True)
class EvaluateParams:
    """Fixed, seeded test mixtures and how they are scored (paper Sec. 4.1, Table 1)."""

    seed: int = rng(0, 0, doc="seed of the test pairs (numpy default_rng)")
    mixtures: int = rng(0, 0, 10**7, doc="single-source mixtures; 0 = each solo clip once "
                                         "as the first member")
    multi_mixtures: Optional[int] = opt(0, 10**7, "multi-source mixtures (null: as mixtures)")
    swap: bool = True   # also score the model with each mixture's two videos swapped
    backend: Literal["fast", "fast_bss_eval", "mir_eval"] = "fast"   # BSS Eval (pipeline/metrics.py)
    mask: Literal["ratio", "binary"] = "ratio"   # the model's output: ratio | thresholded (paper)
    threshold: float = rng(0.5, 0.0, 1.0, doc="binary mask threshold (REFERENCE.md inference)")
    batch_size: int = rng(4, 1, 4096, doc="mixtures per forward pass")
    examples: int = rng(4, 0, 1000, doc="mixtures per set written as wavs and pictures")
    qualitative: int = rng(3, 0, 20, doc="rows (mixtures) of qualitative.png (paper Fig. 3)")
    threads: int = rng(2, 1, 256, doc="torch CPU threads")
