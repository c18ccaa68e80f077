"""``tribert synth render``: a performer video for a user's wav file."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from support import require_tools
from pipeline.cli import main
from pipeline.data.synth.encode import probe_ok

SR = 22050


@pytest.fixture()
def wav(tmp_path):
    """2 s of four decaying 440 Hz tone bursts (four clear onsets)."""
    t = np.arange(2 * SR) / SR
    y = np.zeros_like(t)
    for start in (0.2, 0.7, 1.1, 1.6):
        m = (t >= start) & (t < start + 0.3)
        y[m] = 0.5 * np.sin(2 * np.pi * 440 * (t[m] - start)) * np.exp(-(t[m] - start) * 18)
    path = tmp_path / "tune.wav"
    sf.write(path, y.astype(np.float32), SR)
    return path


def test_render_writes_a_playable_video_and_keypoints(wav, tmp_path):
    require_tools("ffmpeg", "ffprobe")
    out = tmp_path / "out" / "violin.mp4"
    res = CliRunner().invoke(main, ["synth", "render", "--audio", str(wav), "--instrument",
                                    "violin", "--out", str(out), "--seed", "2"])
    assert res.exit_code == 0, res.output
    assert probe_ok(out, size=256, fps=8)
    records = json.loads(out.with_suffix(".json").read_text())
    assert len(records) == 16 and {r["idx"] for r in records} == {1}
    assert "4 onsets" in res.output


def test_unknown_instrument_is_a_clear_error(wav, tmp_path):
    res = CliRunner().invoke(main, ["synth", "render", "--audio", str(wav), "--instrument",
                                    "kazoo", "--out", str(tmp_path / "x.mp4")])
    assert res.exit_code == 2 and "unknown instrument class 'kazoo'" in res.output
    assert not (tmp_path / "x.mp4").exists()


def test_unreadable_audio_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    res = CliRunner().invoke(main, ["synth", "render", "--audio", str(bad), "--instrument",
                                    "cello", "--out", str(tmp_path / "x.mp4")])
    assert res.exit_code == 1 and f"{bad}: cannot read audio" in res.output
    assert not (tmp_path / "x.mp4").exists()


def test_render_takes_paths_that_look_like_options(wav, tmp_path, monkeypatch):
    """``./-x.mp4`` and ``-dash.wav`` are files, not ffmpeg options (issue 12, item 6)."""
    require_tools("ffmpeg", "ffprobe")
    (tmp_path / "-dash.wav").write_bytes(wav.read_bytes())
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["synth", "render", "--audio", "-dash.wav", "--instrument",
                                    "flute", "--out", "-out/-x.mp4"])
    assert res.exit_code == 0, res.output
    assert probe_ok(tmp_path / "-out" / "-x.mp4", size=256, fps=8)
    assert (tmp_path / "-out" / "-x.json").is_file()
