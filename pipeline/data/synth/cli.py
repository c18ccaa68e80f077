"""``tribert synth``: performer videos from the command line."""
from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np

AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


@click.group()
def synth():
    """Synthetic performer videos (the embedded dataset's renderer)."""


@synth.command("render")
@click.option("--audio", "audio_path", required=True, type=click.Path(path_type=Path),
              help="the recording to perform (wav, flac, ogg, ...)")
@click.option("--instrument", "instrument_name", required=True,
              help="MUSIC21 class of the performer, e.g. violin")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the mp4 to write; the keypoints go beside it as .json")
@click.option("--seed", default=0, show_default=True, type=int, help="scene and look")
@click.option("--fps", default=8, show_default=True, type=click.IntRange(8, 60))
@click.option("--size", default=256, show_default=True, type=click.IntRange(224, 1080))
def render_cmd(audio_path: Path, instrument_name: str, out: Path, seed: int, fps: int, size: int):
    """Render a performer of INSTRUMENT playing AUDIO: the motion follows the onsets found in
    the recording; writes OUT (H.264 + AAC) and OUT with .json (AlphaPose-format keypoints,
    noise-free)."""
    from pipeline.classes import normalise_class
    from pipeline.data.synth.instruments import instrument
    from pipeline.data.synth.onsets import notes_from_audio
    from pipeline.data.synth.render import write_video
    from pipeline.data.synth.scene import Scene

    from pipeline.data import checks

    checks.output_path(out)
    try:
        name = normalise_class(instrument_name)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--instrument") from None
    y, sr = _read_audio(audio_path)
    notes = notes_from_audio(y, sr, instrument(name))
    scene = Scene((name,), [notes], None, size, fps, np.random.default_rng([seed, 2]))
    n_frames = max(1, math.ceil(len(y) / sr * fps))
    write_video(out, out.with_suffix(".json"), scene, y, sr, n_frames, 0.0, 0.0, seed)
    click.echo(f"{out}: {name}, {len(y) / sr:.2f} s, {n_frames} frames at {fps} fps, "
               f"{len(notes)} onsets; keypoints in {out.with_suffix('.json')}")


def _read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 in [-1, 1] at a rate AAC accepts; a clear error for a bad file."""
    import librosa
    import soundfile as sf

    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, sf.LibsndfileError) as e:
        raise click.ClickException(f"{path}: cannot read audio: {e}") from None
    y = y.mean(axis=1)
    if y.size == 0 or not np.isfinite(y).all() or float(np.abs(y).max()) == 0.0:
        raise click.ClickException(f"{path}: the audio is empty, silent or not finite")
    if sr not in AAC_RATES:
        y, sr = librosa.resample(y, orig_sr=sr, target_sr=22050).astype(np.float32), 22050
    return np.clip(y, -1.0, 1.0).astype(np.float32), int(sr)
