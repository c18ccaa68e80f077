"""The schema of params.yaml: every section is a frozen pydantic model, in this one module.

Each top-level section of params.yaml loads into one model below (:class:`ParamsFile` lists
them). A model is frozen and refuses unknown keys; types are strict (``"2"`` is not an integer,
``true`` is not a number, NaN and infinities are refused); ranges are ``Field`` bounds and choices
are ``Literal`` types; checks that span several keys are ``model_validator`` s that raise
:class:`KeyProblem` naming the key. :func:`pipeline.params.load_params` validates a file against
:class:`ParamsFile` and turns the first problem into a one-line error with the file and dotted key.

The JSON Schema of :class:`ParamsFile` is committed as ``params.schema.json`` (params.yaml points
editors at it); ``python -m pipeline.schema`` or ``tribert params schema`` rewrites it.

This module must not import torch: the data stages validate every section without it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from model.presets import PRESETS

SCHEMA_FILE = "params.schema.json"

# Audio constants of pipeline.data.spectrogram, repeated here because validating params.yaml must not
# import torch (tests check that the two agree). pipeline.data.decode re-exports them.
SAMPLE_RATE = 11025
CLIP_SAMPLES = 65535


class KeyProblem(ValueError):
    """A check of a section that spans several keys failed; ``key`` is the one to blame."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


class Section(BaseModel):
    """A params.yaml section: frozen, no unknown keys, strict types, defaults validated too."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False,
                              validate_default=True)

    def replace(self, **changes) -> "Section":
        """A validated copy with ``changes`` (what ``dataclasses.replace`` did for the
        dataclasses these sections were)."""
        return type(self)(**{**dict(self), **changes})


def _as_tuple(value):
    """YAML gives lists; the sections hold tuples (hashable, immutable)."""
    return tuple(value) if isinstance(value, list) else value


def _as_pair(value):
    if isinstance(value, (list, tuple)) and len(value) != 2:
        raise ValueError(f"expected 2 items, got {len(value)}")
    return _as_tuple(value)


def _off_word(value):
    """YAML 1.1 reads an unquoted ``off`` as false (``amp: off``, ``-S train.amp=off``)."""
    return "off" if value is False else value


IntTuple = Annotated[tuple[int, ...], BeforeValidator(_as_tuple)]
StrTuple = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
FloatTuple = Annotated[tuple[float, ...], BeforeValidator(_as_tuple)]
FloatPair = Annotated[tuple[float, float], BeforeValidator(_as_pair)]


# --------------------------------------------------------------------------------------------
# sections owned by the data stages


class ExecutorParams(Section):
    """How per-video work is mapped: a local process pool or a Ray cluster."""

    backend: Literal["local", "ray"] = Field("local", description="local (process pool) | ray")
    jobs: int = Field(2, ge=1, le=1024, description="worker processes (local) or concurrent "
                                                     "tasks (ray)")
    ray_address: Optional[str] = Field(None, description='null starts a local Ray instance; '
                                                         '"auto" joins a cluster')


class SynthParams(Section):
    """The embedded performer dataset (``data.source: synthetic``)."""

    videos_per_class: int = Field(3, ge=1, le=10000, description="solo videos per class")
    duets: int = Field(16, ge=0, le=100000, description="duet videos (pairs of classes, some "
                                                         "the same class)")
    same_class_duets: float = Field(0.25, ge=0.0, le=1.0, description="share of duets whose "
                                    "two performers share a class")
    duration: float = Field(12.0, ge=6.0, le=600.0, description="seconds per video (a clip "
                            "window is ~5.94 s)")
    fps: int = Field(8, ge=8, le=60)
    size: int = Field(256, ge=224, le=1080, description="square frame side in pixels")
    sample_rate: int = Field(22050, ge=11025, le=48000)
    unplayed_instrument: float = Field(0.3, ge=0.0, le=1.0, description="share of scenes with "
                                       "an idle instrument")
    keypoint_jitter: float = Field(1.5, ge=0.0, le=50.0, description="pixels of detector-like "
                                   "noise")
    keypoint_dropout: float = Field(0.03, ge=0.0, le=0.9, description="share of joints "
                                    "reported with score 0")
    soundfont: str = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
    classes: StrTuple = Field((), description="a subset of the 21 classes (empty: all), for "
                              "tiny runs")
    styles: Literal["fixed", "mixed"] = Field("fixed", description="fixed: every class is "
                                               "composed in its own style (melody, chords, ...); "
                                               "mixed: each part draws one of its class's styles")

    @model_validator(mode="after")
    def _known_classes(self):
        from pipeline.classes import CLASS_INDEX

        bad = [c for c in self.classes if c not in CLASS_INDEX]
        if bad:
            raise KeyProblem("classes", f"unknown class {bad[0]!r}")
        return self


class DownloadParams(Section):
    """The YouTube source (``data.source: music21`` or ``music``)."""

    lists: str = Field("https://raw.githubusercontent.com/roudimit/MUSIC_dataset/master",
                       description="directory or URL of the MUSIC video lists")
    duets: bool = Field(True, description="also fetch MUSIC_duet_videos.json")
    limit_per_class: int = Field(0, ge=0, le=100000, description="0 = all IDs; otherwise the "
                                 "first N per class")
    retries: int = Field(3, ge=0, le=20)
    backoff: float = Field(2.0, ge=0.0, le=600.0, description="seconds, doubled after each "
                           "failed attempt")
    max_height: int = Field(360, ge=144, le=2160, description="yt-dlp format cap (frames are "
                            "resized to 224 anyway)")
    timeout: float = Field(60.0, ge=1.0, le=3600.0, description="socket timeout per request")
    cookies: str = Field("", description="Netscape cookies file for yt-dlp, for when YouTube "
                         "asks to sign in")


class SplitParams(Section):
    """Train/val/test split by video ID, decided once in ``acquire``."""

    mode: Literal["random", "official"] = "random"
    val: float = Field(0.1, ge=0.0, le=0.5)
    test: float = Field(0.2, ge=0.0, le=0.5)
    seed: int = Field(0, ge=0)
    official_train: str = Field("", description="with mode: official, the "
                                "tribert_music21_{train,val}.csv lists")
    official_test: str = ""

    @model_validator(mode="after")
    def _consistent(self):
        if self.val + self.test >= 1.0:
            raise KeyProblem("test", f"val + test must be < 1, got {self.val} + {self.test}")
        if self.mode == "official" and not (self.official_train and self.official_test):
            raise KeyProblem("official_train", "mode 'official' needs official_train and "
                             "official_test list paths")
        return self


class DataParams(Section):
    """Where the videos come from and how they are split (stage ``acquire``)."""

    source: Literal["synthetic", "music21", "music"] = Field(
        "synthetic", description="synthetic (embedded, offline) | music21 | music (YouTube)")
    seed: int = Field(0, ge=0)
    synthetic: SynthParams = Field(default_factory=SynthParams)
    download: DownloadParams = Field(default_factory=DownloadParams)
    split: SplitParams = Field(default_factory=SplitParams)


class DecodeParams(Section):
    """The ``decode`` section of params.yaml."""

    fps: int = Field(8, ge=1, le=60, description="frame rate of the sampled frames")
    size: int = Field(224, ge=32, le=1024, description="square frame side after resizing")
    resize: Literal["center_crop", "pad", "stretch"] = "center_crop"
    sample_rate: int = Field(SAMPLE_RATE, ge=SAMPLE_RATE, le=SAMPLE_RATE,
                             description="fixed by the audio front end")
    clip_samples: int = Field(CLIP_SAMPLES, ge=CLIP_SAMPLES, le=CLIP_SAMPLES)
    window_stride: float = Field(3.0, ge=0.5, le=600.0, description="seconds between window "
                                 "starts")
    max_windows: int = Field(0, ge=0, le=100000, description="per video; 0 = all")
    frames_per_clip: int = Field(3, ge=1, le=16)
    frame_stride: int = Field(1, ge=1, le=16, description="8-fps frames between sampled frames")
    vfr: Literal["skip", "resample"] = "skip"
    vfr_tolerance: float = Field(0.01, ge=0.0, le=1.0, description="relative "
                                 "r_frame_rate/avg_frame_rate gap")
    min_side: int = Field(32, ge=1, le=4096, description="smaller source frames are skipped")
    min_rms: float = Field(1e-4, ge=0.0, le=1.0, description="windows with quieter audio are "
                           "dropped")
    max_clips_per_shard: int = Field(64, ge=1, le=100000)
    compression: Literal["none", "lzf", "gzip"] = "lzf"
    gzip_level: int = Field(4, ge=0, le=9)
    scale_flags: str = Field("bicubic", description="ffmpeg scaler")

    @model_validator(mode="after")
    def _frames_fit_a_clip(self):
        span = (self.frames_per_clip - 1) * self.frame_stride / self.fps
        if span > self.clip_samples / self.sample_rate:
            raise KeyProblem("frames_per_clip", f"{self.frames_per_clip} frames "
                             f"{self.frame_stride} apart span {span:.2f} s, longer than a clip")
        return self

    @property
    def clip_seconds(self) -> float:
        return self.clip_samples / self.sample_rate


# --------------------------------------------------------------------------------------------
# pose stages: keypoints, stgcn, pose_features


class MediapipeParams(Section):
    """MediaPipe (legacy ``mp.solutions``) BlazePose body + hands, see mediapipe_backend.py."""

    model_complexity: int = Field(1, ge=0, le=2)
    min_detection_confidence: float = Field(0.5, ge=0.0, le=1.0)
    min_visibility: float = Field(0.3, ge=0.0, le=1.0, description="BlazePose joints below "
                                  "this get score 0")
    second_person: bool = Field(True, description="look for a second performer "
                                "(mask-and-rerun)")
    max_overlap: float = Field(0.3, ge=0.0, le=1.0, description="IoU above which the 2nd find "
                               "is the 1st again")
    min_second_area: float = Field(0.1, ge=0.0, le=10.0, description="2nd box area / 1st box "
                                   "area, below = phantom")
    hands: bool = Field(True, description="run the hand model (joints 26..67)")


class AlphaposeParams(Section):
    """A user's own AlphaPose installation (needs its weights, usually a CUDA build)."""

    script: str = Field("", description="path to AlphaPose's scripts/demo_inference.py "
                        '("" = not installed)')
    cfg: str = Field("", description="a Halpe-68 config, e.g. configs/halpe_68_noface/.../*.yaml")
    checkpoint: str = Field("", description="the matching pretrained_models/*.pth")
    python: str = Field("python", description="the interpreter of the AlphaPose environment")
    gpus: str = Field("-1", description='AlphaPose\'s --gpus ("-1" = CPU)')
    timeout: float = Field(3600.0, ge=1.0, le=86400.0, description="seconds per video")


class KeypointsParams(Section):
    """Stage ``keypoints``: Halpe-68 keypoints of up to 2 persons per frame at the decode fps."""

    backend: Literal["annotations", "mediapipe", "alphapose"] = "annotations"
    mediapipe: MediapipeParams = Field(default_factory=MediapipeParams)
    alphapose: AlphaposeParams = Field(default_factory=AlphaposeParams)


class StgcnParams(Section):
    """Stage ``stgcn_train``: ST-GCN (Yan et al. 2018) re-trained to classify the instrument."""

    width: float = Field(0.25, ge=0.0625, le=4.0, description="channel multiplier of blocks "
                         "1-9 (1.0 = the paper)")
    window: int = Field(16, ge=8, le=512, description="frames per training sample (multiple "
                        "of 4)")
    epochs: int = Field(10, ge=1, le=1000)
    windows_per_video: int = Field(4, ge=1, le=1000, description="random windows drawn per "
                                   "video per epoch")
    batch_size: int = Field(8, ge=1, le=1024)
    lr: float = Field(3e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0)
    dropout: float = Field(0.2, ge=0.0, le=0.9)
    threads: int = Field(2, ge=1, le=256)
    seed: int = Field(0, ge=0)
    hands: bool = Field(True, description="the hand joints (26..67) enter ST-GCN; false: body "
                        "joints only, here and wherever the checkpoint is used (pose_features, "
                        "tribert separate), for keypoints whose hands the detector misses")

    @model_validator(mode="after")
    def _window_stride(self):
        if self.window % 4:
            raise KeyProblem("window", f"must be a multiple of 4 (the network's stride), got "
                             f"{self.window}")
        return self


class PoseFeaturesParams(Section):
    """Stage ``pose_features``: per clip frame, 2 x 256 x 68 ST-GCN features (paper: T=256)."""

    context: int = Field(32, ge=4, le=1024, description="frames of temporal context centred "
                         "on each frame")
    batch_size: int = Field(16, ge=1, le=4096)
    threads: int = Field(2, ge=1, le=256)

    @model_validator(mode="after")
    def _context_stride(self):
        if self.context % 4:
            raise KeyProblem("context", f"must be a multiple of 4 (the network's stride), got "
                             f"{self.context}")
        return self


# --------------------------------------------------------------------------------------------
# the model: a preset plus optional overrides (pipeline/schema.py re-exports these)
#
# ``preset: paper`` gives exactly the sizes of the paper (section 3.2, "Implementation Details")
# and of the official code (REFERENCE.md, "Official TriBERT model"); ``preset: tiny`` gives a
# model small enough to train on 2 CPU cores in minutes. Every size field defaults to ``None``
# (= the preset's value) so ``dvc exp run -S model.hidden_visual=256`` overrides one size of a
# preset, and a bad value fails at load time with its key.

Backbone = Literal["resnet50", "resnet18", "resnet_tiny"]

# The sizes each preset fixes (model/presets.py: plain data beside the networks they size).
MODEL_PRESETS = PRESETS

_PRESET_VALUE = "null = the preset's value"


class ModelParams(Section):
    """Which model to build and its sizes. ``resolved()`` gives the constructor arguments."""

    arch: Literal["tribert", "sop"] = Field("tribert", description="sop = the Sound-of-Pixels "
                                            "baseline (Table 1)")
    preset: Literal["paper", "tiny"] = "tiny"
    # sizes (None = the preset's value)
    backbone: Optional[Backbone] = Field(None, description=_PRESET_VALUE)
    image_size: Optional[int] = Field(None, ge=32, le=448, description="frames are resized to "
                                      f"this side inside the model; {_PRESET_VALUE}")
    hidden_visual: Optional[int] = Field(None, ge=8, le=4096, description=_PRESET_VALUE)
    hidden_pose: Optional[int] = Field(None, ge=8, le=4096, description=_PRESET_VALUE)
    hidden_audio: Optional[int] = Field(None, ge=8, le=4096, description=_PRESET_VALUE)
    hidden_coattention: Optional[int] = Field(None, ge=8, le=4096, description=_PRESET_VALUE)
    heads: Optional[int] = Field(None, ge=1, le=64, description=_PRESET_VALUE)
    ffn: Optional[int] = Field(None, ge=8, le=16384, description=_PRESET_VALUE)
    layers: Optional[int] = Field(None, ge=1, le=24, description="co-attention layers (and as "
                                  f"many self-attention layers); {_PRESET_VALUE}")
    dropout: Optional[float] = Field(None, ge=0.0, le=0.9, description=_PRESET_VALUE)
    vggish_channels: Optional[IntTuple] = Field(None, description="7 channel counts of the "
                                                f"VGG-style audio network; {_PRESET_VALUE}")
    unet_depth: Optional[int] = Field(None, ge=2, le=8, description=_PRESET_VALUE)
    unet_channels: Optional[int] = Field(None, ge=4, le=256, description=_PRESET_VALUE)
    unet_max_channels: Optional[int] = Field(None, ge=4, le=2048, description=_PRESET_VALUE)
    sop_channels: Optional[int] = Field(None, ge=1, le=256, description="Sound-of-Pixels K; "
                                        f"{_PRESET_VALUE}")
    sop_classifier: bool = Field(False, description="the Sound-of-Pixels baseline with "
                                 "TriBERT's weak labels: a linear instrument classifier on its "
                                 "frames network (trained by train.loss.visual); off = the "
                                 "original SoP")
    sop_crop: Optional[float] = Field(None, ge=0.0, le=2.0, description="Sound-of-Pixels "
                                      "frames network on each clip's playing area (a square "
                                      "around the arms and hands from the keypoints, widened "
                                      "by this share of its side: model/crop.py) instead of "
                                      "the whole frame; null = whole frames (the original)")
    # behaviour (the same in both presets)
    coattention: Literal["concat_features", "union_tokens"] = "concat_features"
    fusion: Literal["concat", "multiply"] = "concat"
    mask_rate: float = Field(0.15, ge=0.0, le=0.9, description="share of visual/pose tokens "
                             "masked in training")
    erase: Literal["none", "visual", "pose"] = Field(
        "none", description="supplement Table 1: a stream whose tokens are all the mask token, "
        "in training and inference")
    temporal_pos_emb: bool = Field(False, description="learned per-frame position embeddings "
                                   "(paper: future work)")
    # the separation U-Net (both off = the paper's; docs/experiments.md measures them)
    film: bool = Field(False, description="the fused feature also modulates every decoder "
                       "level (FiLM)")
    input_norm: bool = Field(False, description="BatchNorm over the input log spectrogram "
                             "(Sound-of-Pixels' bn0)")
    unet_up: Literal["upsample", "transpose"] = Field(
        "upsample", description="each U-Net up level (TriBERT's and Sound-of-Pixels'): "
        "upsample (bilinear 2x, then a 3x3 convolution: Sound-of-Pixels') | transpose (a 4x4 "
        "stride-2 transposed convolution: 2.25x less work on the up path, worse masks measured: "
        "docs/experiments.md section 73; model/unet.py)")
    unet_harmonics: FloatTuple = Field(
        (), max_length=16, description="frequency ratios (e.g. [0.5, 1, 2, 3, 4, 5]) at which "
        "the U-Net's input spectrogram is stacked into channels, so the first convolution sees "
        "a note's partials at its fundamental's row (model/unet.py HarmonicStack; TriBERT's and "
        "Sound-of-Pixels'); empty = the spectrogram alone (the paper's)")
    synthesizer: int = Field(0, ge=0, le=1024, description="K > 0: SoP's synthesizer head "
                             "instead of the bottleneck fusion (the decoder runs once per "
                             "mixture)")
    motion: int = Field(0, ge=0, le=4096, description="width of the pose-motion branch: the "
                        "window's keypoint trajectory changes the synthesizer's weights per time "
                        "frame, or with synthesizer 0 modulates every level of the per-source "
                        "decoder per time frame (model/motion.py); 0 = off (the paper's)")
    motion_bands: int = Field(0, ge=0, le=256, description="with motion > 0: the branch also "
                              "gives each source a frequency profile per time frame in this "
                              "many bands, added to its mask logits minus the other sources' "
                              "(model/motion.py); 0 = off")
    motion_pitch: int = Field(0, ge=0, le=96, description="with motion > 0: the branch also "
                              "gives each source an activation per semitone (MIDI 28 up) per "
                              "time frame, each adding its harmonic series to the source's mask "
                              "logits (model/motion.py PitchComb); 0 = off")
    motion_fps: float = Field(8.0, gt=0.0, le=240.0, description="frame rate of the pose "
                              "shards' trajectory (= decode.fps)")
    critic: int = Field(0, ge=0, le=1024, description="training only: width of the instrument "
                        "classifier of separated spectrograms that train.loss.separated trains "
                        "with (model/heads.py SpectrogramCritic); 0 = none (the paper's)")
    bin_classes: bool = Field(False, description="training only: a linear map of the "
                              "synthesizer's K maps to class logits per time-frequency bin that "
                              "train.loss.bins trains (needs synthesizer > 0; not the paper's)")
    oracle: bool = Field(False, description="diagnostic: the U-Net conditioned on each source's "
                         "true class instead of the fused feature (the ceiling of recognising "
                         "the instrument; evaluate only: `tribert separate` refuses it)")
    num_classes: int = Field(21, ge=1, le=1000)
    frames: int = Field(3, ge=1, le=64, description="sampled frames per clip")
    persons: int = Field(2, ge=1, le=8, description="pose tokens per frame (= visual tokens "
                         "per frame)")
    pose_channels: int = Field(256, ge=1, le=4096, description="ST-GCN feature channels per "
                               "joint")
    pose_joints: int = Field(68, ge=1, le=256)
    backbone_weights: str = Field("", description='a torchvision ResNet state_dict file ("" = '
                                  "random init)")
    vggish_weights: str = Field("", description="a VGG-style audio network state_dict file")

    @model_validator(mode="after")
    def _sizes_fit(self):
        r = self.resolved()
        if len(r["vggish_channels"]) != 7 or min(r["vggish_channels"]) < 1:
            raise KeyProblem("vggish_channels", f"expected 7 positive channel counts, got "
                             f"{r['vggish_channels']!r}")
        for name in ("hidden_visual", "hidden_pose", "hidden_audio", "hidden_coattention"):
            if r[name] % r["heads"]:
                raise KeyProblem(name, f"{r[name]} is not a multiple of heads={r['heads']}")
        if self.coattention == "concat_features" and r["hidden_coattention"] % (2 * r["heads"]):
            raise KeyProblem("hidden_coattention", f"concat_features splits it between two "
                             f"streams: {r['hidden_coattention']} is not a multiple of "
                             f"2 * heads = {2 * r['heads']}")
        if any(not 0 < h <= 64 for h in self.unet_harmonics):
            raise KeyProblem("unet_harmonics", f"expected ratios in (0, 64], got "
                             f"{list(self.unet_harmonics)!r}")
        if self.motion_bands and not (self.motion and self.synthesizer) \
                and self.arch == "tribert":
            raise KeyProblem("motion_bands", "motion_bands > 0 needs motion > 0 and "
                             "synthesizer > 0 (the motion branch gives the bands beside the "
                             "synthesizer's terms)")
        if self.motion_pitch and not self.motion and self.arch == "tribert":
            raise KeyProblem("motion_pitch", "motion_pitch > 0 needs motion > 0 (the motion "
                             "branch gives the activations)")
        if self.bin_classes and not (self.synthesizer and self.arch == "tribert"):
            raise KeyProblem("bin_classes", "bin_classes needs arch tribert and synthesizer > 0 "
                             "(it reads the synthesizer's K maps)")
        if self.oracle and self.arch != "tribert":
            raise KeyProblem("oracle", "oracle conditioning is TriBERT's (arch: tribert)")
        if 256 % (2 ** r["unet_depth"]):
            raise KeyProblem("unet_depth", f"256 bins are not divisible by 2^{r['unet_depth']}")
        return self

    def resolved(self) -> dict:
        """The preset's sizes with this section's overrides applied (plain data)."""
        out = dict(MODEL_PRESETS[self.preset])
        for key in out:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["vggish_channels"] = tuple(out["vggish_channels"])
        for name in type(self).model_fields:
            if name not in out and name != "preset":
                out[name] = getattr(self, name)
        return out


# --------------------------------------------------------------------------------------------
# train and finetune (paper Sec. 3.2.1 and 3.2.2; pipeline/schema.py re-exports these)
#
# The optimiser settings depend on the model preset: the paper trains with Adam at lr 1e-5 and
# batch 12 (Sec. 3.2.1, "Implementation Details") and fine-tunes at lr 1e-7 (Sec. 3.2.2); those
# rates barely move a small model in the minutes a CPU run has, so the ``tiny`` preset has its
# own. Each such field defaults to ``None`` (= the preset's value, :data:`TRAIN_PRESETS`), so
# ``dvc exp run -S train.lr=3e-4`` overrides one setting of a preset.

# Per model preset: the values of the ``None``-default fields below.
TRAIN_PRESETS: dict[str, dict] = {
    "paper": dict(lr=1e-5, batch_size=12, epochs=6000, steps_per_epoch=0,
                  finetune_lr=1e-7, finetune_epochs=1500),
    "tiny": dict(lr=1e-3, batch_size=8, epochs=20, steps_per_epoch=0,
                 finetune_lr=3e-4, finetune_epochs=2),
}


class LossWeights(Section):
    """Weights of the terms of the pre-training loss (REFERENCE.md: the four official ones all 1)."""

    mask: float = Field(1.0, ge=0.0, le=1000.0, description="weighted BCE on the binary masks")
    visual: float = Field(1.0, ge=0.0, le=1000.0, description="WSDDN classification of the "
                          "visual stream")
    pose: float = Field(1.0, ge=0.0, le=1000.0, description="WSDDN classification of the pose "
                        "stream")
    audio: float = Field(1.0, ge=0.0, le=1000.0, description="multi-label audio classification")
    signal: float = Field(0.0, ge=0.0, le=1000.0, description="negative SNR (dB) of the output "
                          "waveforms (train.mask's masks, iSTFT with the mixture phase; not the "
                          "paper's); 0 = off (pipeline/train/losses.py)")
    separated: float = Field(0.0, ge=0.0, le=1000.0, description="instrument classification of "
                             "each separated spectrogram as its own video's class by model.critic "
                             "(trained on the true sources; not the paper's, after "
                             "Co-Separation); 0 = off (pipeline/train/losses.py)")
    pitch: float = Field(0.0, ge=0.0, le=1000.0, description="the weighted BCE of the mask "
                         "term on model.motion_pitch's harmonic term alone: the pose's "
                         "per-semitone activations trained to predict each source's mask by "
                         "themselves (not the paper's); 0 = off (pipeline/train/losses.py)")
    bins: float = Field(0.0, ge=0.0, le=1000.0, description="every time-frequency bin "
                        "classified by model.bin_classes as the instrument of the source that "
                        "dominates it (not the paper's); 0 = off (pipeline/train/losses.py)")


class TrainParams(Section):
    """Mix-and-separate pre-training (stage ``train``). ``resolved(preset)`` gives plain values."""

    seed: int = Field(0, ge=0)
    # optimisation (None = the model preset's value)
    lr: Optional[float] = Field(None, ge=0.0, le=1.0, description="Adam learning rate (paper: "
                                "1e-5); null = the model preset's")
    batch_size: Optional[int] = Field(None, ge=1, le=4096, description="global batch, split "
                                      "over the ranks (paper: 12); null = the model preset's")
    epochs: Optional[int] = Field(None, ge=1, le=100000, description="null = the model "
                                  "preset's")
    steps_per_epoch: Optional[int] = Field(None, ge=0, le=10**9, description="0 = one pass over "
                                           "the training mixtures; null = the model preset's")
    betas: FloatPair = Field((0.9, 0.999), description="Adam betas, each in [0, 1)")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    schedule: Literal["constant", "cosine"] = Field("constant", description="paper: constant")
    warmup_steps: int = Field(0, ge=0, le=10**9)
    grad_clip: float = Field(0.0, ge=0.0, le=1e6, description="max gradient norm; 0 = no "
                             "clipping")
    loss: LossWeights = Field(default_factory=LossWeights)
    signal_cap: float = Field(30.0, ge=1.0, le=100.0, description="dB: the SNR past which a "
                              "source stops taking the gradient of train.loss.signal (soft cap)")
    ema: float = Field(0.0, ge=0.0, lt=1.0, description="decay of an exponential moving average "
                       "of the weights, which validation scores and the model file holds "
                       "(pipeline/train/ema.py); 0 = off, the trained weights themselves")
    backbone_lr: float = Field(1.0, ge=0.0, le=1e3, description="learning rate of the frames "
                               "backbone, as a multiple of lr (Sound-of-Pixels: 0.1, its lr_frame "
                               "1e-4 against lr_sound 1e-3; 0 freezes its weights, its BatchNorm "
                               "statistics still update)")
    frames_pretrain: int = Field(0, ge=0, le=10**6, description="epochs of instrument "
                                 "classification of the training solo clips' frames by the "
                                 "frames backbone before mix-and-separate "
                                 "(pipeline/train/frames_pretrain.py); 0 = none")
    # data
    workers: int = Field(0, ge=0, le=64, description="DataLoader worker processes per rank")
    augment: bool = Field(False, description="frame augmentation of training batches: random "
                          "crop, flip and colour jitter per video, boxes moved to match "
                          "(pipeline/train/augment.py)")
    augment_trajectory: bool = Field(False, description="augmentation of the keypoint "
                                     "trajectories that model.motion reads: random scale, "
                                     "stretch, rotation and shift per person, joint noise and "
                                     "dropout (pipeline/train/augment.py trajectories)")
    val_mixtures: int = Field(0, ge=0, le=10**9, description="val mixtures scored per epoch; "
                              "0 = all")
    similar_partners: float = Field(0.0, ge=0.0, le=1.0, description="share of the training "
                                    "mixtures whose partner is drawn among the first clip's "
                                    "similar_k spectrally most similar clips of other videos and "
                                    "classes (pipeline/data/dataset.py); 0 = uniform pairs")
    similar_k: int = Field(16, ge=1, le=10**6, description="how many similar clips each "
                           "training clip's partner is drawn from (similar_partners)")
    same_class_partners: float = Field(0.0, ge=0.0, le=1.0, description="share of the training "
                                       "mixtures whose partner is a clip of another video of the "
                                       "first clip's class")
    same_style_partners: float = Field(0.0, ge=0.0, le=1.0, description="share of the training "
                                       "mixtures whose partner is a clip of another video and "
                                       "class of the same composer style (two melodies, two "
                                       "arpeggios; pipeline/data/dataset.py style_pools)")

    @model_validator(mode="after")
    def _partner_shares(self):
        if self.similar_partners + self.same_class_partners > 1.0:
            raise KeyProblem("same_class_partners", "similar_partners + same_class_partners must "
                             f"be <= 1, got {self.similar_partners} + {self.same_class_partners}")
        total = self.similar_partners + self.same_class_partners + self.same_style_partners
        if total > 1.0:
            raise KeyProblem("same_style_partners", "similar_partners + same_class_partners + "
                             f"same_style_partners must be <= 1, got {total:g}")
        return self
    # numerics
    amp: Annotated[Literal["auto", "bf16", "off"], BeforeValidator(_off_word)] = Field(
        "off", description="off: float32; auto: bf16 autocast on CUDA only; bf16: on any device "
        "(CPU too)")
    mask: Literal["normalized", "ratio", "binary"] = Field(
        "normalized", description="val output (chooses the checkpoint): normalized (ratio masks "
        "divided by their sum over the sources) | ratio | binary (thresholded, paper)")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="binary mask threshold "
                             "(REFERENCE.md)")
    memory_format: Literal["auto", "channels_last", "contiguous"] = Field(
        "auto", description="layout of the convolutional networks: auto = the faster per network "
        "on this machine, measured once and cached (model/layout.py); speed only")
    # checkpoints
    checkpoint_every: int = Field(0, ge=0, le=10**9, description="also save every N steps; "
                                  "0 = per epoch only")

    @model_validator(mode="after")
    def _betas_below_one(self):
        if not (0.0 <= self.betas[0] < 1.0 and 0.0 <= self.betas[1] < 1.0):
            raise KeyProblem("betas", f"expected two values in [0, 1), got {list(self.betas)}")
        return self

    def resolved(self, preset: str) -> dict:
        """Every setting as plain data, ``None`` fields filled from the model preset's."""
        out = self.model_dump()
        for key in ("lr", "batch_size", "epochs", "steps_per_epoch"):
            if out[key] is None:
                out[key] = TRAIN_PRESETS[preset][key]
        return out


class FinetuneParams(Section):
    """Fine-tuning on the 11 MUSIC classes (paper Sec. 3.2.2, stage ``finetune``): new
    classification layers, the same loss and settings as ``train`` except these."""

    lr: Optional[float] = Field(None, ge=0.0, le=1.0, description="paper: 1e-7; null = the "
                                "model preset's")
    epochs: Optional[int] = Field(None, ge=1, le=100000, description="paper: 1500; null = the "
                                  "model preset's")
    seed: int = Field(0, ge=0)

    def resolved(self, train: TrainParams, preset: str) -> dict:
        """The train settings with this section's lr and epochs (preset defaults if ``None``)."""
        out = train.resolved(preset)
        out["lr"] = TRAIN_PRESETS[preset]["finetune_lr"] if self.lr is None else self.lr
        out["epochs"] = (TRAIN_PRESETS[preset]["finetune_epochs"] if self.epochs is None
                         else self.epochs)
        out["seed"] = self.seed
        return out


# --------------------------------------------------------------------------------------------
# evaluation and analysis stages


class EvaluateParams(Section):
    """Fixed, seeded test mixtures and how they are scored (paper Sec. 4.1, Table 1)."""

    seed: int = Field(0, ge=0, description="seed of the test pairs (numpy default_rng)")
    mixtures: int = Field(0, ge=0, le=10**7, description="single-source mixtures; 0 = each solo "
                          "clip once as the first member")
    multi_mixtures: Optional[int] = Field(None, ge=0, le=10**7, description="multi-source "
                                          "mixtures (null: as mixtures)")
    swap: bool = Field(True, description="also score the model with each mixture's two videos "
                       "swapped")
    backend: Literal["fast", "fast_bss_eval", "mir_eval"] = Field(
        "fast", description="BSS Eval implementation (pipeline/separation/metrics.py)")
    mask: Literal["normalized", "ratio", "binary"] = Field(
        "normalized", description="the model's output: normalized (ratio masks divided by their "
        "sum over the sources) | ratio | binary (thresholded, paper)")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="binary mask threshold "
                             "(REFERENCE.md inference)")
    batch_size: int = Field(4, ge=1, le=4096, description="mixtures per forward pass")
    examples: int = Field(4, ge=0, le=1000, description="mixtures per set written as wavs and "
                          "pictures")
    qualitative: int = Field(3, ge=0, le=20, description="rows (mixtures) of qualitative.png "
                             "(paper Fig. 3)")
    threads: int = Field(2, ge=1, le=256, description="torch CPU threads")


class EmbedParams(Section):
    """Stage ``embed``: every clip run alone through the pre-trained model (eval mode)."""

    batch_size: int = Field(8, ge=1, le=1024, description="clips per forward pass")
    threads: int = Field(2, ge=1, le=256, description="torch CPU threads")


class ProbeParams(Section):
    """Stage ``probe``: an MLP instrument classifier on frozen features (supplement 2.4)."""

    hidden: int = Field(256, ge=1, le=16384, description="hidden units of the one-hidden-layer "
                        "MLP")
    epochs: int = Field(200, ge=1, le=100000)
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(1e-4, ge=0.0, le=10.0)
    dropout: float = Field(0.2, ge=0.0, le=0.9)
    batch_size: int = Field(32, ge=1, le=100000)
    pooling: Literal["flatten", "mean"] = Field("flatten", description="tokens -> one vector "
                                                "per clip")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="the first seed")
    repeats: int = Field(5, ge=1, le=100, description="probes per entry (seeds "
                         "seed..seed+repeats-1), averaged")
    threads: int = Field(1, ge=1, le=256, description="torch CPU threads per worker (1 is "
                         "fastest for these small MLPs)")
    jobs: int = Field(2, ge=1, le=1024, description="worker processes the probes are spread "
                      "over (each probe is seeded on its own: the figures do not depend on it)")


class AttentionParams(Section):
    """Stage ``attention``: visual class-attention maps over test frames (supplement Fig. 2)."""

    count: int = Field(4, ge=1, le=1000, description="test clips pictured")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="which clips")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="opacity of the heatmap over the "
                         "frame")
    dpi: int = Field(100, ge=20, le=600)


class RetrievalParams(Section):
    """Stage ``retrieval``. The paper trains each scorer with Adam lr 2e-5, batch 64 for 750
    epochs on 8192-wide flattened embeddings; these CPU-sized defaults (lr 1e-3, 60 epochs,
    width 256) converge on the embedded data in seconds per model. The epoch is chosen on val."""

    width: int = Field(256, ge=8, le=16384, description="common width of the query and result "
                       "projections; the 4-layer tanh scorer narrows it by 2 per layer "
                       "(official: 8192)")
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="Adam learning rate (paper 2e-5)")
    epochs: int = Field(60, ge=1, le=100000, description="paper 750")
    batch_size: int = Field(64, ge=1, le=100000, description="anchors per step (paper 64)")
    neighbours: int = Field(25, ge=1, le=100000, description="hard negatives are drawn from "
                            "this many nearest neighbours of the anchor (supplement: 25)")
    exclude_same_video: bool = Field(True, description="negatives never come from the anchor's "
                                     "own video")
    pool: Literal["videos", "clips"] = Field("videos", description="eval pool: one clip per "
                                             "video | every clip")
    standardize: bool = Field(True, description="z-score each flattened embedding with train "
                              "statistics")
    repeats: int = Field(3, ge=1, le=100, description="scorers per entry (seeds seed, seed+5, "
                         "...): the metrics are their mean and std (a small test pool is noisy)")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    threads: int = Field(1, ge=1, le=256, description="torch CPU threads per worker")
    jobs: int = Field(2, ge=1, le=1024, description="worker processes the scorers are spread "
                      "over (each scorer is seeded on its own: the figures do not depend on it)")

    @model_validator(mode="after")
    def _width_halves(self):
        if self.width % 8:
            raise KeyProblem("width", f"must be a multiple of 8 (the scorer halves it three "
                             f"times), got {self.width}")
        return self


# --------------------------------------------------------------------------------------------
# the whole file


class ParamsFile(Section):
    """params.yaml: one section per stage; each loads into the model of the same name."""

    model_config = ConfigDict(title="TriBERT params.yaml")

    executor: ExecutorParams = Field(default_factory=ExecutorParams)
    data: DataParams = Field(default_factory=DataParams)
    decode: DecodeParams = Field(default_factory=DecodeParams)
    keypoints: KeypointsParams = Field(default_factory=KeypointsParams)
    stgcn: StgcnParams = Field(default_factory=StgcnParams)
    pose_features: PoseFeaturesParams = Field(default_factory=PoseFeaturesParams)
    model: ModelParams = Field(default_factory=ModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    finetune: FinetuneParams = Field(default_factory=FinetuneParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    embed: EmbedParams = Field(default_factory=EmbedParams)
    probe: ProbeParams = Field(default_factory=ProbeParams)
    attention: AttentionParams = Field(default_factory=AttentionParams)
    retrieval: RetrievalParams = Field(default_factory=RetrievalParams)

    @model_validator(mode="after")
    def _pitch_for_pitch_loss(self):
        # ModelParams already refuses motion_pitch without motion for tribert
        if self.train.loss.pitch and not (self.model.arch == "tribert"
                                          and self.model.motion_pitch):
            raise KeyProblem("train.loss.pitch", "a weight > 0 needs model.arch tribert, "
                             "model.motion > 0 and model.motion_pitch > 0 (the term it trains)")
        return self

    @model_validator(mode="after")
    def _bin_classes_for_bins(self):
        if self.train.loss.bins and not (self.model.arch == "tribert" and self.model.bin_classes):
            raise KeyProblem("train.loss.bins", "a weight > 0 needs model.arch tribert and "
                             "model.bin_classes true (the head it trains)")
        return self

    @model_validator(mode="after")
    def _critic_for_separated(self):
        if self.train.loss.separated and not (
                self.model.arch == "tribert" and self.model.critic):
            raise KeyProblem("train.loss.separated", "a weight > 0 needs "
                             "model.arch tribert and model.critic > 0 (the classifier it trains "
                             "with)")
        return self


def json_schema() -> dict:
    """The JSON Schema of params.yaml (draft 2020-12), as written to ``params.schema.json``."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **ParamsFile.model_json_schema()}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def write_json_schema(path: str | Path = SCHEMA_FILE) -> Path:
    """Write :func:`json_schema` to ``path`` (default: params.schema.json in the working dir)."""
    path = Path(path)
    path.write_text(json_schema_text())
    return path


if __name__ == "__main__":  # python -m pipeline.schema [PATH]
    import sys

    print(write_json_schema(*sys.argv[1:2]))
