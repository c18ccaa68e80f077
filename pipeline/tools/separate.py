"""``tribert separate``: separate the sound of each performer of one or two videos with a trained
TriBERT package (issue 7, point 7; paper Sec. 3.2.1 mix-and-separate, 3.3 inference).

    tribert separate VIDEO --checkpoint models/tribert.pt --out DIR
    tribert separate VIDEO_A VIDEO_B --audio MIX.wav --checkpoint models/tribert.pt --out DIR

One video: its own soundtrack is the mixture, separated into the sound of each visible performer.
Two videos and ``--audio``: the given mixture is separated into the sounds of the performers of
both videos. The Python API is :func:`separate`.

The same code as the pipeline runs: audio and frames are decoded by :mod:`pipeline.data.decode` (mono
11025 Hz; 8 fps frames resized to 224 x 224 by the decode section's ``resize``), keypoints by a
backend of :mod:`pipeline.pose.keypoints` (MediaPipe by default for user videos, or the
AlphaPose-format JSON given with ``--keypoints``, one file per video), with its two person slots
and left/right identity rule, and per-frame ST-GCN features with temporal context by
:mod:`pipeline.pose.features`. The masks are turned into waveforms by
:func:`pipeline.separation.infer.estimate_waveforms` (unwarp, the output masks: by default the
ratio masks divided by their sum over the performers, so the parts add up to the audio; mixture
phase, iSTFT), as in validation and ``evaluate``, and the windows are overlap-added by the same
module.

Decisions:

- Performers: the keypoint slots that hold a person in at least ``min_presence`` of the video's
  frames (shorter appearances are passers-by or detector phantoms), ordered left to right by the
  median centre of their boxes. The keypoint stage keeps at most two persons per frame, so a video
  has one or two performers; two videos give up to four sources. A second find counts only in
  frames where it and the first are two people (:func:`two_people`): both bodies (8 of the 17
  body joints seen, both shoulders among them), the smaller box at most 25% inside the larger,
  at least 0.3 of its area, with shoulders 0.4-2.5 times as wide; and only when such frames make
  ``min_presence`` of the video (:func:`keep_people`). Otherwise each frame keeps its largest
  body. Measured on MediaPipe's finds: in 12 rendered one-performer videos (``tribert synth
  render``, 8 s) its second pass found a second "person" in 1-12 frames of 64 and three videos
  got a phantom second performer; such pairs pass the test in at most 1 frame of 64, while the
  real pairs of 6 rendered duets pass in 14-61 frames of 64: 0 phantoms, 6 of 6 duets kept.
- A file cut short (its container declares more than it decodes, by over 1 s and 10%) gets a
  warning naming it; what decodes is separated.
- Conditioning: source k is the whole clip frame (exactly what training clips show) with the pose
  stream holding performer k alone, in the first person slot, every other slot absent - the way a
  solo training clip looks. Whole frames are kept rather than crops around the performer because
  training never showed the model a crop (a crop changes the scale and, upscaled from the clip,
  the sharpness of everything the visual stream sees); the performer is singled out by its pose
  tokens, whose box embedding also says where in the frame it stands. Measured with the default
  pipeline's trained tiny model on the 5 test and val duets of the synthetic set (per-performer
  SDR against the stems, 12-s videos): whole frames 1.57 dB mean, square crops around the
  performer (1.4 x its box, resized to 224) 0.98 dB; mixture baseline 0.06 dB.
  A model with the motion branch (``model.motion``) also gets performer k's keypoint
  trajectory over each window in slot 0 (:func:`trajectory_window`), as the pose shards store it.
- Sources per mixture: the model was trained with N = 2, but it conditions every source's mask
  on that source's video and the shared mixture independently (model/tribert.py; the
  synthesizer's weights, or the per-source decoder, per source), so N = 1..4 sources run in one
  forward pass, with no pairing; with ``model.motion_bands`` each source's band term also
  subtracts the mean of the others' in that same pass.
- Long inputs: windows of 65535 samples (the model's input), each giving an estimate of 65280
  samples, placed inside the input: the first at 0, the last ending at the input's end, evenly
  spaced at most 32640 samples apart (:func:`pipeline.separation.infer.window_starts`); an input
  of at most one window is one window, padded with zeros at its end. Each sample is the weighted
  mean of the windows over it, Hann cross-fades between neighbours, so an all-ones mask gives
  back the input exactly (tested). Windows centred on the input's edges, half filled with
  zeros, are inputs the model never trained on: measured with ``tribert bench separate`` (20
  rendered pairs, 6-s inputs) they cost 2.9 dB [1.8, 4.0] per part against windows inside the
  input. A window's frames are the ``frames_per_clip`` frames at its centre, as the decode
  stage picks them, clamped to the video's frames.
- Output rate: 11025 Hz, the model's rate. The masks carry nothing above 5.5 kHz, so resampling
  back to the source rate would add samples but no sound; the wav has exactly the input's
  duration (the mixture's, with ``--audio``).
- Checkpoints: a TriBERT model package (or a training checkpoint holding one). A Sound-of-Pixels
  package is refused: it sees frames only, so it cannot tell two performers of one video apart
  (its masks would be identical). A package whose pose input is not the ST-GCN's 256 x 68 or whose
  frame count differs from ``decode.frames_per_clip`` is refused, naming the file.

Every error is a :class:`SeparateError` (a ``click.ClickException``) naming the file concerned.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import click
import numpy as np
import torch
from tqdm import tqdm

from pipeline import atomic, cmdpath
from pipeline.data import checks
from pipeline.data.decode import DecodeParams, Skip, decode_audio, decode_frames
from pipeline.pose import keypoints as kpio
from pipeline.pose.halpe import NUM_JOINTS
from pipeline.schema import KeypointsParams, PoseFeaturesParams
from pipeline.separation.infer import (MASKS, SPAN, check_mask, cut_windows, estimate_waveforms,
                                       overlap_add, window_starts)

DEFAULT_STGCN = Path("models/stgcn.pt")


class SeparateError(click.ClickException):
    """A problem with one of the inputs; the message names the file."""


def params_sections(path: Path | None):
    """(decode, keypoints, pose_features) sections of the params file at ``path``, what
    :func:`separate` takes to read videos as a model was trained; ``(None, None, None)`` (the
    built-in defaults) without one; a :class:`SeparateError` naming the file if it is invalid."""
    if path is None:
        return None, None, None
    from pipeline.params import ParamsError, load_params

    try:
        params = load_params(path)
    except ParamsError as e:
        raise SeparateError(str(e)) from None
    return params.decode, params.keypoints, params.pose_features


def frame_indices(starts: np.ndarray, p: DecodeParams, n_frames: int) -> np.ndarray:
    """(K, frames_per_clip) frames at each window's centre, as :func:`pipeline.data.decode.plan_windows`
    picks them, clamped to the video's ``n_frames`` frames."""
    half = ((p.frames_per_clip - 1) * p.frame_stride) // 2
    offsets = np.arange(p.frames_per_clip) * p.frame_stride - half
    centre = (starts + p.clip_samples / 2) / p.sample_rate
    idx = np.round(centre * p.fps).astype(np.int64)[:, None] + offsets
    return np.clip(idx, 0, n_frames - 1)


# --------------------------------------------------------------------------------------------
# inputs


@dataclass
class Video:
    """One input video: its pose, its performers (slots, left to right) and the decoded pieces."""

    path: Path
    n_frames: int
    pose: object                      # pipeline.pose.features.VideoPose
    performers: list[int]
    frames: dict[int, np.ndarray] = field(default_factory=dict)
    features: dict[int, np.ndarray] = field(default_factory=dict)   # frame -> (2, 256, 68)

    def output_names(self) -> list[str]:
        """``<stem>`` for one performer, ``<stem>-<k>`` (k from 1, left to right) for several."""
        stem = self.path.stem
        if len(self.performers) == 1:
            return [stem]
        return [f"{stem}-{k}" for k in range(1, len(self.performers) + 1)]


def find_performers(boxes: np.ndarray, absent: np.ndarray, min_presence: float) -> list[int]:
    """Slots present in at least ``min_presence`` of the frames, left to right by the median
    centre x of their boxes (source pixels)."""
    assert boxes.shape == (*absent.shape, 4), (boxes.shape, absent.shape)
    if not len(absent):
        return []
    shares = (~absent).mean(axis=0)
    slots = [s for s in range(absent.shape[1]) if shares[s] > 0 and shares[s] >= min_presence]
    centre = {s: float(np.median((boxes[~absent[:, s], s, 0] + boxes[~absent[:, s], s, 2]) / 2))
              for s in slots}
    return sorted(slots, key=lambda s: centre[s])


# A second find is a second person only if it and the first form two bodies side by side
# (measured on MediaPipe's finds in 12 rendered one-performer and 6 two-performer videos; see
# the module docstring, "Performers").
BODY_JOINTS = 8           # of the 17 body joints (Halpe 0..16), seen, shoulders included
MAX_CONTAINED = 0.25      # share of the smaller box inside the larger one
MIN_AREA_RATIO = 0.3      # smaller box area / larger box area
SHOULDER_RATIO = (0.4, 2.5)   # shoulder width of the smaller / of the larger


def is_body(kp: np.ndarray) -> bool:
    """Joints ``(68, 3)`` that form a body: at least BODY_JOINTS of the 17 body joints seen,
    both shoulders among them."""
    seen = kp[:17, 2] > 0
    return bool(seen.sum() >= BODY_JOINTS and seen[5] and seen[6])


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0) * max(box[3] - box[1], 0))


def two_people(a, b) -> bool:
    """Whether detections ``a`` and ``b`` of one frame are two people: both bodies, the
    smaller box not mostly inside the larger (a part of the same person, or the instrument),
    of a plausible size next to it, with shoulders of a plausible width next to its."""
    if not (is_body(a.keypoints) and is_body(b.keypoints)):
        return False
    big, small = (a, b) if _area(a.box) >= _area(b.box) else (b, a)
    if _area(small.box) <= 0:
        return False
    ix = max(0.0, min(big.box[2], small.box[2]) - max(big.box[0], small.box[0]))
    iy = max(0.0, min(big.box[3], small.box[3]) - max(big.box[1], small.box[1]))
    if ix * iy / _area(small.box) > MAX_CONTAINED:
        return False
    if _area(small.box) / _area(big.box) < MIN_AREA_RATIO:
        return False
    width = lambda kp: float(np.hypot(*(kp[5, :2] - kp[6, :2])))  # noqa: E731
    ratio = width(small.keypoints) / max(width(big.keypoints), 1e-6)
    return SHOULDER_RATIO[0] <= ratio <= SHOULDER_RATIO[1]


def keep_people(frames: list, min_presence: float) -> tuple[list, int]:
    """Per-frame detections -> (the detections kept, 1 or 2 people). Two people when the two
    best finds of a frame are :func:`two_people` in at least ``min_presence`` of the frames:
    then those frames keep both and the others their best find; otherwise every frame keeps its
    largest body (a phantom is smaller than, or part of, the performer), or its best find when
    it has no body."""
    top = [sorted(d, key=lambda x: -x.score)[:2] for d in frames]
    pairs = [len(d) == 2 and two_people(*d) for d in top]
    if frames and sum(pairs) >= max(1, min_presence * len(frames)):
        return [d if pair else d[:1] for d, pair in zip(top, pairs)], 2
    kept = []
    for d in frames:
        bodies = [x for x in d if is_body(x.keypoints)]
        kept.append([max(bodies, key=lambda x: _area(x.box))] if bodies else
                    sorted(d, key=lambda x: -x.score)[:1])
    return kept, 1


def load_video(path: Path, annotations: Optional[Path], kp_params: KeypointsParams,
               p: DecodeParams, min_presence: float, work_file: Path):
    """Keypoints of ``path`` (backend ``kp_params.backend``) -> a :class:`Video`."""
    from pipeline.pose.features import VideoPose

    try:
        dets, info = kpio.detect(kp_params.backend, path, annotations, p.fps, kp_params)
    except (ValueError, FileNotFoundError) as e:
        raise SeparateError(_naming(path, e)) from None
    dets, _ = keep_people(dets, min_presence)
    kp, boxes, absent = kpio.assign_slots(dets)
    performers = find_performers(boxes, absent, min_presence)
    if not performers:
        raise SeparateError(f"{path}: no performer found (no person in at least "
                            f"{min_presence:.0%} of its frames; keypoints: {kp_params.backend}"
                            f"{f' {annotations}' if annotations else ''})")
    kpio.save(work_file, kp, boxes, absent, fps=p.fps, width=info.width, height=info.height,
              backend=kp_params.backend)
    return Video(path, kpio.output_frames(info, p.fps), VideoPose(work_file, p.size, p.resize),
                 performers)


def _reason(path: Path, e: Exception, limit: int = 400) -> str:
    """The first line of ``e``'s message without a leading ``<path>: `` (the caller names it)."""
    lines = str(e).strip().splitlines() or [type(e).__name__]
    msg = lines[0].replace(f"{path}: ", "")
    return msg if len(msg) <= limit else msg[:limit] + "..."


def _naming(path: Path, e: Exception) -> str:
    return f"{path}: {_reason(path, e)}"


def read_audio(path: Path, p: DecodeParams) -> np.ndarray:
    """Mono float32 at 11025 Hz (:func:`pipeline.data.decode.decode_audio`), or a SeparateError."""
    import ffmpeg

    if not path.is_file():
        raise SeparateError(f"{path}: no such file")
    try:
        streams = ffmpeg.probe(cmdpath.arg(path)).get("streams", [])
    except ffmpeg.Error as e:
        last = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        why = _reason(path, ValueError(last[-1] if last else "ffprobe failed"))
        raise SeparateError(f"{path}: unreadable ({why})") from None
    if not any(s.get("codec_type") == "audio" for s in streams):
        raise SeparateError(f"{path}: no audio track")
    try:
        wave = decode_audio(str(path), p)
    except Skip as e:
        raise SeparateError(f"{path}: cannot read its audio ({_reason(path, e)})") from None
    if not len(wave):
        raise SeparateError(f"{path}: the audio track is empty")
    return wave


def container_seconds(path: Path) -> Optional[float]:
    """The duration the container declares (ffprobe's format duration), if it declares one."""
    import ffmpeg

    try:
        return float(ffmpeg.probe(cmdpath.arg(path))["format"]["duration"])
    except (ffmpeg.Error, KeyError, TypeError, ValueError):
        return None


def warn_if_truncated(path: Path, decoded: float, what: str, log) -> None:
    """Warn when ``decoded`` seconds fall well short (over 1 s and over 10%) of what the
    container of ``path`` declares: a file cut short (a download or copy that stopped) still
    opens, but only its beginning is there to separate."""
    declared = container_seconds(path)
    if declared and decoded < declared - max(1.0, 0.1 * declared):
        log(f"warning: {path}: the container says {declared:.1f} s but its {what} decodes to "
            f"{decoded:.1f} s (a truncated file?); separating the {decoded:.1f} s there are")


def decode_video_frames(video: Video, wanted: set[int], p: DecodeParams) -> int:
    """The wanted 8-fps frames of ``video``; a frame past what ffmpeg produced takes the last.
    Returns how many frames ffmpeg produced."""
    try:
        kept, n = decode_frames(str(video.path), p, wanted)
    except Skip as e:
        raise SeparateError(_naming(video.path, e)) from None
    if not n:
        raise SeparateError(f"{video.path}: no video frames decoded")
    if len(kept) < len(wanted):
        missing = wanted - set(kept)
        last, _ = decode_frames(str(video.path), p, {n - 1})
        kept.update({i: last[n - 1] for i in missing})
    video.frames = kept
    return n


@torch.no_grad()
def pose_features(video: Video, wanted: set[int], stgcn, pf: PoseFeaturesParams) -> None:
    """ST-GCN features of the wanted frames (:func:`pipeline.pose.features.centre_features`,
    ``context`` frames around each); zero for absent persons, as in the pose shards."""
    from pipeline.pose.features import centre_features

    order = sorted(wanted)
    for i in range(0, len(order), pf.batch_size):
        chunk = order[i:i + pf.batch_size]
        wins = np.stack([video.pose.window(t, pf.context) for t in chunk])
        for t, feat in zip(chunk, centre_features(stgcn, wins)):
            feat[video.pose.at(t)[2]] = 0.0
            video.features[t] = feat


def source_inputs(video: Video, slot: int, frames: np.ndarray, persons: int,
                  first: int = 0, length: int = 0) -> dict:
    """Model inputs of one source (module docstring, "Conditioning") at clip frames ``frames``:
    frames (T, H, W, 3) uint8, pose (T, P, 256, 68), boxes (T, P, 5), keypoints (T, P, 68, 3)
    in clip-frame pixels, absent (T, P) with the performer in slot 0 and the other slots
    absent; with ``length`` > 0 also the trajectory (length, P, 68, 3) of the frames from
    ``first`` (:meth:`pipeline.pose.features.VideoPose.trajectory`), the performer's in slot 0
    and zeros in the others."""
    t_len = len(frames)
    feat0 = next(iter(video.features.values()))
    pose = np.zeros((t_len, persons, *feat0.shape[1:]), np.float32)
    boxes = np.zeros((t_len, persons, 5), np.float32)
    keypoints = np.zeros((t_len, persons, *video.pose.keypoints.shape[2:]), np.float32)
    absent = np.ones((t_len, persons), bool)
    for j, t in enumerate(frames):
        b, k, a = video.pose.at(int(t))
        pose[j, 0], boxes[j, 0], absent[j, 0] = video.features[int(t)][slot], b[slot], a[slot]
        keypoints[j, 0] = k[slot]
    out = {"frames": np.stack([video.frames[int(t)] for t in frames]), "pose": pose,
           "boxes": boxes, "keypoints": keypoints, "absent": absent}
    if length:
        traj = np.zeros((length, persons, *video.pose.keypoints.shape[2:]), np.float32)
        traj[:, 0] = video.pose.trajectory(first, length)[:, slot]
        out["trajectory"] = traj
    return out


# --------------------------------------------------------------------------------------------
# models


def load_tribert(path: Path, p: DecodeParams):
    """A TriBERT package that fits the pipeline's pose features and clip frames (eval mode)."""
    from model import checkpoint
    from pipeline.pose.stgcn import FEATURE_CHANNELS

    if not Path(path).is_file():
        raise SeparateError(f"{path}: no such checkpoint")
    try:
        model = checkpoint.load(path)
    except (ValueError, TypeError, KeyError, RuntimeError, AttributeError) as e:
        why = _reason(path, e)
        raise SeparateError(f"{path}: not a usable model package: {why}") from None
    kw = model.init_kwargs
    if type(model).__name__ != "TriBERT":
        raise SeparateError(f"{path}: a {type(model).__name__} package; separating the "
                            f"performers of a video needs TriBERT's pose stream")
    if kw.get("oracle"):
        raise SeparateError(f"{path}: an oracle-conditioned model (model.oracle): it needs each "
                            "performer's true class, which a video does not give")
    want = {"pose_channels": FEATURE_CHANNELS, "pose_joints": NUM_JOINTS,
            "frames": p.frames_per_clip}
    bad = {k: (kw.get(k), v) for k, v in want.items() if kw.get(k) != v}
    if bad:
        raise SeparateError(f"{path}: the model does not match the pipeline's inputs: " + ", ".join(
            f"{k} {got} (inputs have {v})" for k, (got, v) in bad.items()))
    return model.eval()


def load_stgcn(path: Path):
    from pipeline.pose.stgcn import load_checkpoint

    if not Path(path).is_file():
        raise SeparateError(f"{path}: no such ST-GCN checkpoint (option --stgcn)")
    try:
        return load_checkpoint(path)
    except ValueError as e:
        raise SeparateError(_naming(Path(path), e)) from None


# --------------------------------------------------------------------------------------------
# the API


def _check_arguments(videos: list[Path], audio: Optional[Path], keypoints) -> None:
    if not 1 <= len(videos) <= 2:
        raise SeparateError(f"expected one or two videos, got {len(videos)}")
    if len(videos) == 1 and audio is not None:
        raise SeparateError(f"{audio}: --audio is the mixture of two videos; with one video its "
                            f"own soundtrack is separated (give a second video or drop --audio)")
    if len(videos) == 2 and audio is None:
        raise SeparateError(f"{videos[0]} and {videos[1]}: two videos need --audio, the mixture "
                            f"to separate")
    if keypoints is not None and len(keypoints) != len(videos):
        raise SeparateError(f"{len(keypoints)} keypoint files for {len(videos)} videos "
                            f"(one --keypoints per video, in order)")
    if len(videos) == 2 and videos[0].stem == videos[1].stem:
        raise SeparateError(f"{videos[1]}: same name as {videos[0]}; outputs would collide")
    for v in videos:
        if not v.is_file():
            raise SeparateError(f"{v}: no such video")


def separate(videos: Sequence[str | Path], checkpoint: str | Path, out: str | Path,
             audio: str | Path | None = None, stgcn: str | Path = DEFAULT_STGCN,
             keypoints: Optional[Sequence[str | Path]] = None, backend: str = "mediapipe",
             decode: DecodeParams | None = None, keypoint_params: KeypointsParams | None = None,
             pose_params: PoseFeaturesParams | None = None, threshold: float = 0.5,
             mask: str = "normalized", min_presence: float = 0.1, batch_size: int = 4, with_video: bool = False,
             progress: bool = True, log=None) -> list[Path]:
    """Separate the performers of ``videos`` (module docstring); returns the written wavs
    (``out/<stem>.wav`` or ``out/<stem>-<k>.wav``, video by video, left to right), followed by
    the muxed videos with ``with_video``. ``keypoints``: one AlphaPose-format JSON per video
    (backend ``annotations``); otherwise ``backend`` (mediapipe | alphapose) finds them.
    ``log``: where warnings go (default: stderr)."""
    log = log or (lambda m: click.echo(m, err=True))
    videos = [Path(v) for v in videos]
    audio = Path(audio) if audio is not None else None
    _check_arguments(videos, audio, keypoints)
    try:
        checks.output_path(out, folder=True)
    except checks.InputError as e:
        raise SeparateError(e.message) from None
    p = decode or DecodeParams()
    kp_params = (keypoint_params or KeypointsParams()).replace(
        backend="annotations" if keypoints else backend)
    pf = pose_params or PoseFeaturesParams()
    model = load_tribert(Path(checkpoint), p)
    st = load_stgcn(Path(stgcn))
    mix = read_audio(audio or videos[0], p)
    warn_if_truncated(audio or videos[0], len(mix) / p.sample_rate, "sound", log)
    with tempfile.TemporaryDirectory(prefix="tribert-separate-") as work:
        loaded = [load_video(v, Path(keypoints[i]) if keypoints else None, kp_params, p,
                             min_presence, Path(work) / f"{i}.npz")
                  for i, v in enumerate(videos)]
    starts = window_starts(len(mix))
    fidx = [frame_indices(starts, p, v.n_frames) for v in loaded]
    for v, idx in zip(loaded, fidx):
        wanted = set(idx.ravel().tolist())
        n = decode_video_frames(v, wanted, p)
        warn_if_truncated(v.path, n / p.fps, "picture", log)
        pose_features(v, wanted, st, pf)
    pieces = run_windows(model, mix, starts, loaded, fidx, threshold, batch_size, progress,
                         mask, trajectory_window(model, starts, p))
    estimates = overlap_add(pieces, starts, len(mix))
    return write_outputs(estimates, loaded, Path(out), p.sample_rate, with_video)


def trajectory_window(model, starts: np.ndarray, p: DecodeParams) -> tuple[np.ndarray, int]:
    """(first frame per window, frames) of the windows' trajectories, as the pose shards take
    them (:func:`pipeline.pose.trajectory.first_frame`); (starts' frames, 0) for a model without
    the motion branch, which reads none."""
    from pipeline.pose.trajectory import first_frame, trajectory_frames

    first = first_frame(starts, p.sample_rate, p.fps)
    if not model.init_kwargs.get("motion"):
        return first, 0
    if float(model.init_kwargs.get("motion_fps", p.fps)) != float(p.fps):
        raise SeparateError(f"the model reads trajectories at {model.init_kwargs['motion_fps']} "
                            f"fps, decode.fps is {p.fps}")
    return first, trajectory_frames(p.clip_samples, p.sample_rate, p.fps)


@torch.no_grad()
def run_windows(model, mix: np.ndarray, starts: np.ndarray, videos: list[Video],
                fidx: list[np.ndarray], threshold: float, batch_size: int,
                progress: bool, mask: str = "normalized",
                trajectory: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """Masked estimates ``(K, S, 65280)`` of every window for the S performers of ``videos``;
    ``trajectory``: (first frame per window, frames) of :func:`trajectory_window`."""
    from pipeline.data import spectrogram as sp

    check_mask(mask)     # an unknown mask kind fails before any window runs
    persons = model.init_kwargs["persons"]
    sources = [(vi, slot) for vi, v in enumerate(videos) for slot in v.performers]
    windows = cut_windows(mix, starts)
    first, length = trajectory if trajectory is not None else (np.zeros(len(starts), int), 0)
    out = []
    bar = tqdm(total=len(starts), desc="separate", unit="window", disable=not progress)
    for b0 in range(0, len(starts), batch_size):
        ks = range(b0, min(b0 + batch_size, len(starts)))
        per = [[source_inputs(videos[vi], slot, fidx[vi][k], persons, int(first[k]), length)
                for vi, slot in sources] for k in ks]
        batch = {key: torch.from_numpy(np.stack([np.stack([s[key] for s in row]) for row in per]))
                 for key in per[0][0]}
        feats = sp.mixture_features(torch.from_numpy(windows[b0:b0 + len(ks)])[:, None])
        batch["log_mag_mix"] = feats["log_mag_mix"]
        est = estimate_waveforms(model(batch)["mask_logits"], feats, mask, threshold)
        assert est.shape == (len(ks), len(sources), SPAN), est.shape
        out.append(est.numpy())
        bar.update(len(ks))
    bar.close()
    return np.concatenate(out)


def write_outputs(estimates: np.ndarray, videos: list[Video], out: Path, sample_rate: int,
                  with_video: bool) -> list[Path]:
    """One wav per performer (atomic), then the muxed videos with ``with_video``."""
    import soundfile as sf

    wavs, muxed, i = [], [], 0
    for v in videos:
        for name in v.output_names():
            path = out / f"{name}.wav"
            with atomic.atomic_path(path) as tmp:
                sf.write(tmp, np.clip(estimates[i], -1.0, 1.0), sample_rate, subtype="FLOAT")
            wavs.append(path)
            if with_video:
                muxed.append(mux(v.path, path, out / f"{name}.mp4"))
            i += 1
    assert i == len(estimates), (i, estimates.shape)
    return wavs + muxed


def mux(video: Path, wav: Path, dest: Path) -> Path:
    """``video``'s picture with ``wav`` as its sound (AAC), the length of the sound."""
    import ffmpeg

    if dest.resolve() == video.resolve():
        raise SeparateError(f"{video}: the output {dest} would overwrite the input")
    with atomic.atomic_path(dest) as tmp:
        picture = ffmpeg.input(cmdpath.arg(video)).video
        sound = ffmpeg.input(cmdpath.arg(wav)).audio
        stream = ffmpeg.output(picture, sound, cmdpath.arg(tmp), vcodec="copy", acodec="aac",
                               ar=44100, t=sf_duration(wav)).overwrite_output()
        try:
            stream.global_args("-nostdin", "-loglevel", "error").run(capture_stdout=True,
                                                                      capture_stderr=True)
        except ffmpeg.Error as e:
            last = (e.stderr or b"").decode(errors="replace").strip().splitlines()
            raise SeparateError(f"{video}: muxing the separated sound failed: "
                                f"{last[-1] if last else 'ffmpeg failed'}") from None
    return dest


def sf_duration(wav: Path) -> float:
    import soundfile as sf

    return sf.info(str(wav)).duration


# --------------------------------------------------------------------------------------------
# the command


@click.command("separate")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--audio", type=click.Path(path_type=Path),
              help="The mixture to separate (with two videos).")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path),
              help="A TriBERT model package (models/tribert.pt) or training checkpoint.")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder for <video stem>[-k].wav (k = performer, left to right).")
@click.option("--stgcn", type=click.Path(path_type=Path), default=DEFAULT_STGCN,
              show_default=True, help="The ST-GCN pose network the model was trained with.")
@click.option("--keypoints", "keypoint_files", multiple=True, type=click.Path(path_type=Path),
              help="AlphaPose-format JSON keypoints, once per video in order (instead of "
                   "running --backend).")
@click.option("--backend", type=click.Choice(["mediapipe", "alphapose"]), default="mediapipe",
              show_default=True, help="Keypoint detector when no --keypoints are given.")
@click.option("--params", "params_path", type=click.Path(path_type=Path, dir_okay=False),
              help="A params.yaml whose decode, keypoints and pose_features sections to use "
                   "(default: the built-in defaults, those of the shipped params.yaml).")
@click.option("--mask", type=click.Choice(MASKS), default="normalized", show_default=True,
              help="How the predicted masks are applied (evaluate.mask): normalized (ratio "
              "masks divided by their sum over the performers, so the parts add up to the "
              "audio; one performer keeps its ratio mask), ratio, or binary (thresholded, the "
              "paper's output).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Threshold of --mask binary (evaluate.threshold).")
@click.option("--min-presence", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Share of frames a person must appear in to count as a performer.")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True,
              help="Windows per forward pass.")
@click.option("--with-video", is_flag=True, help="Also write each video with its separated "
              "sound, <video stem>[-k].mp4.")
@click.option("--progress/--no-progress", default=True)
def separate_cmd(videos, audio, checkpoint, out, stgcn, keypoint_files, backend, params_path,
                 mask, threshold, min_presence, batch_size, with_video, progress):
    """Separate the sound of each performer of VIDEO (its own soundtrack), or of two VIDEOs
    (the mixture given with --audio)."""
    decode, keypoint_params, pose_params = params_sections(params_path)
    written = separate(list(videos), checkpoint, out, audio=audio, stgcn=stgcn,
                       keypoints=list(keypoint_files) or None, backend=backend, decode=decode,
                       keypoint_params=keypoint_params, pose_params=pose_params,
                       threshold=threshold, mask=mask, min_presence=min_presence,
                       batch_size=batch_size,
                       with_video=with_video, progress=progress)
    for path in written:
        click.echo(str(path))
