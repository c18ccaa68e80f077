"""The ``evaluate:`` section of params.yaml, defined in :mod:`pipeline.schema` (the one params
schema) and re-exported here for the stages' imports."""
from pipeline.schema import EvaluateParams

__all__ = ["EvaluateParams"]
