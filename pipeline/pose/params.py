"""params.yaml sections of the pose stages: ``keypoints``, ``stgcn`` and ``pose_features``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.params import ParamsError, rng, sub


@dataclass(frozen=True)
class MediapipeParams:
    """MediaPipe (legacy ``mp.solutions``) BlazePose body + hands, see mediapipe_backend.py."""

    model_complexity: int = rng(1, 0, 2)
    min_detection_confidence: float = rng(0.5, 0.0, 1.0)
    min_visibility: float = rng(0.3, 0.0, 1.0)   # BlazePose joints below this get score 0
    second_person: bool = True                   # look for a second performer (mask-and-rerun)
    max_overlap: float = rng(0.3, 0.0, 1.0)      # IoU above which the 2nd find is the 1st again
    min_second_area: float = rng(0.1, 0.0, 10.0)  # 2nd box area / 1st box area, below = phantom
    hands: bool = True                           # run the hand model (joints 26..67)


@dataclass(frozen=True)
class AlphaposeParams:
    """A user's own AlphaPose installation (needs its weights, usually a CUDA build)."""

    script: str = ""        # path to AlphaPose's scripts/demo_inference.py ("" = not installed)
    cfg: str = ""           # a Halpe-68 config, e.g. configs/halpe_68_noface/.../*.yaml
    checkpoint: str = ""    # the matching pretrained_models/*.pth
    python: str = "python"  # the interpreter of the AlphaPose environment
    gpus: str = "-1"        # AlphaPose's --gpus ("-1" = CPU)
    timeout: float = rng(3600.0, 1.0, 86400.0)  # seconds per video


@dataclass(frozen=True)
class KeypointsParams:
    """Stage ``keypoints``: Halpe-68 keypoints of up to 2 persons per frame at the decode fps."""

    backend: Literal["annotations", "mediapipe", "alphapose"] = "annotations"
    mediapipe: MediapipeParams = sub(MediapipeParams)
    alphapose: AlphaposeParams = sub(AlphaposeParams)


@dataclass(frozen=True)
class StgcnParams:
    """Stage ``stgcn_train``: ST-GCN (Yan et al. 2018) re-trained to classify the instrument."""

    width: float = rng(0.25, 0.0625, 4.0, doc="channel multiplier of blocks 1-9 (1.0 = the paper)")
    window: int = rng(16, 8, 512, doc="frames per training sample (multiple of 4)")
    epochs: int = rng(10, 1, 1000)
    windows_per_video: int = rng(4, 1, 1000, doc="random windows drawn per video per epoch")
    batch_size: int = rng(8, 1, 1024)
    lr: float = rng(3e-3, 0.0, 10.0, lo_open=True)
    weight_decay: float = rng(1e-4, 0.0, 1.0)
    dropout: float = rng(0.2, 0.0, 0.9)
    threads: int = rng(2, 1, 256)
    seed: int = rng(0, 0)

    def __post_init__(self):
        if self.window % 4:
            raise ParamsError(f"window: must be a multiple of 4 (the network's stride), got {self.window}")


@dataclass(frozen=True)
class PoseFeaturesParams:
    """Stage ``pose_features``: per clip frame, 2 x 256 x 68 ST-GCN features (paper: T=256)."""

    context: int = rng(32, 4, 1024, doc="frames of temporal context centred on each frame")
    batch_size: int = rng(16, 1, 4096)
    threads: int = rng(2, 1, 256)

    def __post_init__(self):
        if self.context % 4:
            raise ParamsError(f"context: must be a multiple of 4 (the network's stride), got {self.context}")
