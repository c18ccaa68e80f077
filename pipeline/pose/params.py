"""params.yaml sections of the pose stages (``keypoints``, ``stgcn`` and ``pose_features``),
defined in :mod:`pipeline.schema` (the one params schema) and re-exported here."""
from pipeline.schema import (AlphaposeParams, KeypointsParams, MediapipeParams,
                             PoseFeaturesParams, StgcnParams)

__all__ = ["AlphaposeParams", "KeypointsParams", "MediapipeParams", "PoseFeaturesParams",
           "StgcnParams"]
