"""The ``train:`` and ``finetune:`` sections of params.yaml (paper Sec. 3.2.1 and 3.2.2).

Defined in :mod:`pipeline.schema` (the one params schema; :data:`PRESETS` is its
``TRAIN_PRESETS``, the per-preset optimiser settings) and re-exported here.

This module must not import torch: the data stages validate every section without it.
"""
from pipeline.schema import TRAIN_PRESETS as PRESETS
from pipeline.schema import FinetuneParams, LossWeights, TrainParams

__all__ = ["PRESETS", "FinetuneParams", "LossWeights", "TrainParams"]
