"""The acquire stage as a command: a killed generation, run again, completes without redoing
finished videos and without partial files; changed params start afresh."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline import manifest
from pipeline.atomic import TMP_MARK
from support import ROOT, require_tools

TINY = {"executor": {"jobs": 1},
        "data": {"synthetic": {"classes": ["violin", "tuba"], "videos_per_class": 3,
                               "duets": 1, "duration": 6.0}}}


def _acquire(params: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stages.acquire", "--params", str(params),
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def params(tmp_path) -> Path:
    require_tools("ffmpeg", "ffprobe")
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


def test_killed_generation_resumes_without_redoing_finished_videos(params, tmp_path):
    out = tmp_path / "raw"
    proc = _acquire(params, out)
    deadline = time.time() + 120
    # a video is finished once its keypoint JSON, the last file render writes, is in place
    while time.time() < deadline and len(list((out / "annotations").glob("[!.]*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {f"{sub}/{p.stem}{ext}": (out / sub / f"{p.stem}{ext}").stat().st_mtime_ns
                for p in (out / "annotations").glob("[!.]*.json")
                for sub, ext in (("videos", ".mp4"), ("annotations", ".json"))}
    assert 2 <= len(finished) // 2 < 7, "the kill should land mid-run"
    assert not (out / "manifest.csv").exists()

    again = _acquire(params, out)
    log = again.communicate(timeout=300)[0]
    assert again.returncode == 0, log
    rows = manifest.read(out / "manifest.csv")
    assert len(rows) == 7 and all(r.ok for r in rows)
    for name, mtime in finished.items():  # finished videos were not rendered again
        assert (out / name).stat().st_mtime_ns == mtime, name
    leftovers = [p for p in out.rglob(f"{TMP_MARK}*")]
    assert leftovers == []
    assert all((out / r.video).is_file() and (out / r.annotations).is_file() for r in rows)


def test_changed_params_start_afresh_and_bad_params_fail_before_work(params, tmp_path):
    out = tmp_path / "raw"
    assert _acquire(params, out).wait(timeout=300) == 0
    first = {r.video_id for r in manifest.read(out / "manifest.csv")}
    cfg = yaml.safe_load(params.read_text())
    cfg["data"]["seed"] = 1
    params.write_text(yaml.safe_dump(cfg))
    assert _acquire(params, out).wait(timeout=300) == 0
    second = {r.video_id for r in manifest.read(out / "manifest.csv")}
    assert first.isdisjoint(second)
    on_disk = {p.stem for p in (out / "videos").iterdir()}
    assert on_disk == second, "videos of the old params must not linger"

    cfg["data"]["synthetic"]["duets"] = -1
    params.write_text(yaml.safe_dump(cfg))
    bad = _acquire(params, tmp_path / "never")
    log = bad.communicate(timeout=60)[0]
    assert bad.returncode != 0 and "data.synthetic.duets" in log
    assert not (tmp_path / "never").exists()
