"""The ``embed:``, ``probe:`` and ``attention:`` sections of params.yaml, defined in
:mod:`pipeline.schema` (the one params schema) and re-exported here for the stages' imports."""
from pipeline.schema import AttentionParams, EmbedParams, ProbeParams

__all__ = ["AttentionParams", "EmbedParams", "ProbeParams"]
