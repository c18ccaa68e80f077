"""Rendering one planned video: its parts, the audio, the scene, the mp4, the keypoints and
(for duets) the stems, every file atomic; a finished, intact video is skipped (resume).

Random streams per video seed: [seed, 1, k] composes part k, [seed, 2] builds the scene,
[seed, 3] draws the keypoint noise, [seed, 4, k] part k's style (``styles: mixed`` only), so
changing one never shifts another.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.atomic import TMP_MARK, write_json
from pipeline.params import SynthParams
from pipeline.data.synth import audio as au
from pipeline.data.synth.dataset import VideoSpec
from pipeline.data.synth.encode import probe_ok, write_mp4, write_wav
from pipeline.data.synth.instruments import MIXED_STYLES, instrument
from pipeline.data.synth.keypoints import detection
from pipeline.data.synth.scene import Scene
from pipeline.data.synth.score import Note, compose


def outputs(spec: VideoSpec, root: Path) -> dict[str, Path]:
    """Final paths of a video's files, relative to ``root``."""
    out = {"video": Path("videos") / f"{spec.video_id}.mp4",
           "annotations": Path("annotations") / f"{spec.video_id}.json"}
    if spec.kind == "duet":
        for k in range(1, len(spec.classes) + 1):
            out[f"stem{k}"] = Path("stems") / f"{spec.video_id}-{k}.wav"
    return out


def n_samples(params: SynthParams) -> int:
    return int(round(params.duration * params.sample_rate))


def part_styles(spec: VideoSpec, params: SynthParams) -> list[str]:
    """The composer style of each part: the class's own (``styles: fixed``), or one drawn
    uniformly from ``MIXED_STYLES`` of its class (``mixed``), so that a style no longer names the
    class."""
    if params.styles == "fixed":
        return [instrument(c).style for c in spec.classes]
    return [str(np.random.default_rng([spec.seed, 4, k]).choice(MIXED_STYLES[c]))
            for k, c in enumerate(spec.classes)]


def compose_parts(spec: VideoSpec, params: SynthParams) -> list[list[Note]]:
    return [compose(instrument(c), params.duration, np.random.default_rng([spec.seed, 1, k]), s)
            for k, (c, s) in enumerate(zip(spec.classes, part_styles(spec, params)))]


def synthesize(spec: VideoSpec, params: SynthParams,
               parts: list[list[Note]]) -> tuple[list[np.ndarray], np.ndarray]:
    """The levelled part waveforms and their mixture (solo: the one part, peak-normalised)."""
    raw = [au.render_part(notes, instrument(c), n_samples(params), params.sample_rate,
                          params.soundfont) for c, notes in zip(spec.classes, parts)]
    if spec.kind == "solo":
        mix = au.normalise_solo(raw[0])
        return [mix], mix
    return au.balance_duet(raw)


def build_scene(spec: VideoSpec, params: SynthParams, parts: list[list[Note]]) -> Scene:
    return Scene(spec.classes, parts, spec.idle, params.size, params.fps,
                 np.random.default_rng([spec.seed, 2]))


def write_video(mp4: Path, annotations: Path, scene: Scene, mix: np.ndarray, sample_rate: int,
                n_frames: int, jitter: float, dropout: float, seed: int) -> None:
    """Encode the scene's frames with ``mix`` to ``mp4`` and their keypoints to ``annotations``."""
    rng = np.random.default_rng([seed, 3])
    records: list[dict] = []

    def frames():
        for i in range(n_frames):
            img, joints = scene.render(i)
            for k, j in enumerate(joints, start=1):
                records.append(detection(i, k, j, scene.size, jitter, dropout, rng))
            yield img

    write_mp4(mp4, frames(), scene.size, scene.fps, mix, sample_rate)
    assert len(records) == n_frames * len(scene.performers)
    write_json(annotations, records, indent=None)


def _intact(spec: VideoSpec, root: Path, params: SynthParams) -> bool:
    out = outputs(spec, root)
    if not all((root / p).is_file() for p in out.values()):
        return False
    for key, p in out.items():
        if key.startswith("stem"):
            try:
                if sf.info(str(root / p)).frames != n_samples(params):
                    return False
            except RuntimeError:
                return False
    try:
        records = json.loads((root / out["annotations"]).read_text())
    except (OSError, ValueError):
        return False
    if len(records) != n_frames(params) * len(spec.classes):
        return False
    return probe_ok(root / out["video"], params.size, params.fps, params.sample_rate)


def n_frames(params: SynthParams) -> int:
    return int(round(params.duration * params.fps))


def _remove_leftovers(spec: VideoSpec, root: Path) -> None:
    """Temporary files of an interrupted earlier render of this video (and only this one)."""
    for sub in ("videos", "annotations", "stems"):
        for p in (root / sub).glob(f"{TMP_MARK}{spec.video_id}-*"):
            p.unlink(missing_ok=True)


def render(spec: VideoSpec, root: Path, params: SynthParams) -> dict:
    """Write ``root``/videos/<id>.mp4, annotations/<id>.json and (duets) stems/<id>-<k>.wav.

    Skips the work when all of them exist and are intact. Returns the manifest fields
    {"video_id", "duration", "video", "annotations"} (paths relative to ``root``; results come
    back in completion order, hence the ID; :func:`outputs` also names the stems)."""
    root = Path(root)
    out = outputs(spec, root)
    record = {"video_id": spec.video_id, "duration": n_samples(params) / params.sample_rate,
              "video": str(out["video"]), "annotations": str(out["annotations"])}
    if _intact(spec, root, params):
        return record
    _remove_leftovers(spec, root)
    parts = compose_parts(spec, params)
    stems, mix = synthesize(spec, params, parts)
    if spec.kind == "duet":
        for k, stem in enumerate(stems, start=1):
            write_wav(root / out[f"stem{k}"], stem, params.sample_rate)
    write_video(root / out["video"], root / out["annotations"], build_scene(spec, params, parts),
                mix, params.sample_rate, n_frames(params), params.keypoint_jitter,
                params.keypoint_dropout, spec.seed)
    return record
