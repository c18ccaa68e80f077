"""Writing the media: an H.264 + AAC mp4 from RGB frames and a waveform, mono wav stems, and
the ffprobe check used to decide whether a finished video is intact.

The encoder settings make the same input give the same bytes: one x264 thread, bit-exact
flags (no encoder version strings), no metadata, no creation time.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable

import ffmpeg
import numpy as np
import soundfile as sf
from scipy.io import wavfile

from pipeline import cmdpath
from pipeline.atomic import TMP_MARK, atomic_path

CRF = 23
AUDIO_BITRATE = "96k"


def write_wav(final: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Atomically write mono float32 ``audio`` as a 32-bit float WAV (a stem keeps its exact
    values; scipy writes no PEAK chunk, whose timestamp would make the bytes vary)."""
    assert audio.ndim == 1 and audio.dtype == np.float32, (audio.shape, audio.dtype)
    with atomic_path(final) as tmp:
        wavfile.write(os.fspath(tmp), sample_rate, audio)


@contextlib.contextmanager
def _scratch_wav(final: Path, audio: np.ndarray, sample_rate: int):
    """The encoder's audio input: a 16-bit wav beside ``final`` with the temporary-file prefix
    (so an interrupted run's leftover is recognised), removed afterwards."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{TMP_MARK}{final.stem}-", suffix=".wav", dir=final.parent)
    os.close(fd)
    try:
        sf.write(name, np.clip(audio, -1, 1), sample_rate, subtype="PCM_16")
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def write_mp4(final: Path, frames: Iterable[np.ndarray], size: int, fps: int,
              audio: np.ndarray, sample_rate: int) -> None:
    """Atomically encode ``frames`` (each (size, size, 3) uint8 RGB) and mono ``audio`` to an
    H.264 (yuv420p) + AAC mp4."""
    final = Path(final)
    with _scratch_wav(final, audio, sample_rate) as wav, atomic_path(final) as tmp:
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{size}x{size}",
                             framerate=fps)
        sound = ffmpeg.input(cmdpath.arg(wav))
        out = ffmpeg.output(
            video, sound, cmdpath.arg(tmp), vcodec="libx264", pix_fmt="yuv420p", preset="veryfast",
            crf=CRF, acodec="aac", audio_bitrate=AUDIO_BITRATE, threads=1, map_metadata=-1,
            fflags="+bitexact", **{"flags:v": "+bitexact", "flags:a": "+bitexact",
                                   "x264-params": "threads=1"}, format="mp4",
        ).global_args("-hide_banner", "-loglevel", "error").overwrite_output()
        proc = out.run_async(pipe_stdin=True, pipe_stderr=True)
        try:
            for frame in frames:
                assert frame.shape == (size, size, 3) and frame.dtype == np.uint8, frame.shape
                proc.stdin.write(np.ascontiguousarray(frame).tobytes())
            _, err = proc.communicate()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"{final}: ffmpeg failed: {err.decode(errors='replace').strip()}")


def probe_ok(path: Path, size: int | None = None, fps: int | None = None,
             sample_rate: int | None = None) -> bool:
    """True if ``path`` is a readable mp4 with an H.264 video stream (of ``size`` and ``fps`` when
    given) and an AAC audio stream (at ``sample_rate`` when given)."""
    try:
        info = ffmpeg.probe(cmdpath.arg(path))
    except (ffmpeg.Error, OSError):
        return False
    streams = {s.get("codec_type"): s for s in info.get("streams", [])}
    v, a = streams.get("video"), streams.get("audio")
    if not v or not a or v.get("codec_name") != "h264" or a.get("codec_name") != "aac":
        return False
    if size is not None and (v.get("width"), v.get("height")) != (size, size):
        return False
    if sample_rate is not None and int(a.get("sample_rate", 0)) != sample_rate:
        return False
    if fps is not None:
        num, _, den = v.get("r_frame_rate", "0/1").partition("/")
        if abs(float(num) / float(den or 1) - fps) > 1e-6:
            return False
    return float(info.get("format", {}).get("duration", 0) or 0) > 0
