"""The ``model:`` section of params.yaml: a preset plus optional overrides.

``preset: paper`` gives exactly the sizes of the paper (section 3.2, "Implementation Details")
and of the official code (REFERENCE.md, "Official TriBERT model"); ``preset: tiny`` gives a model
small enough to train on 2 CPU cores in minutes. The section is defined in :mod:`pipeline.schema`
(the one params schema; :data:`PRESETS` is its ``MODEL_PRESETS``) and re-exported here.

This module must not import torch: the data stages validate every section without it.
"""
from pipeline.schema import MODEL_PRESETS as PRESETS
from pipeline.schema import Backbone, ModelParams

__all__ = ["PRESETS", "Backbone", "ModelParams"]
