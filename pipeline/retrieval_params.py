"""The ``retrieval:`` section of params.yaml, defined in :mod:`pipeline.schema` (the one params
schema) and re-exported here for the stages' imports."""
from pipeline.schema import RetrievalParams

__all__ = ["RetrievalParams"]
