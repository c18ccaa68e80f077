"""The acquire stage as a command: a killed generation, run again, completes without redoing
finished videos and without partial files; changed params start afresh."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.data import manifest
from pipeline.atomic import TMP_MARK
from support import ROOT, require_tools

TINY = {"executor": {"jobs": 1},
        "data": {"synthetic": {"classes": ["violin", "tuba"], "videos_per_class": 3,
                               "duets": 1, "duration": 6.0}}}


def _acquire(params: Path, out: Path, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stages.acquire", "--params", str(params),
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})


@pytest.fixture
def params(tmp_path) -> Path:
    require_tools("ffmpeg", "ffprobe")
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


def test_killed_generation_resumes_without_redoing_finished_videos(params, tmp_path):
    out = tmp_path / "raw"
    # SIGKILL from inside the stage right after its 2nd finished video (no timer: issue 12)
    proc = _acquire(params, out, TRIBERT_KILL_AT_VIDEO="2")
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    finished = {f"{sub}/{p.stem}{ext}": (out / sub / f"{p.stem}{ext}").stat().st_mtime_ns
                for p in (out / "annotations").glob("[!.]*.json")
                for sub, ext in (("videos", ".mp4"), ("annotations", ".json"))}
    assert len(finished) // 2 == 2
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


def _snapshot(d: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))
            if p.is_file()}


def test_a_bad_input_is_refused_before_anything_is_deleted(params, tmp_path):
    """Issue 12 item 3: acquire removed data/raw (params changed) before it read the lists,
    then failed on a malformed one."""
    out = tmp_path / "raw"
    assert _acquire(params, out).wait(timeout=300) == 0
    before = _snapshot(out)
    bad = tmp_path / "official_train.csv"
    bad.write_bytes(b"\xff\xfe not a list")
    cfg = yaml.safe_load(params.read_text())
    cfg["data"]["seed"] = 5                 # new videos: the old ones would be removed
    cfg["data"]["split"] = {"mode": "official", "official_train": str(bad),
                            "official_test": str(bad)}
    params.write_text(yaml.safe_dump(cfg))
    proc = _acquire(params, out)
    log = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, log
    assert str(bad) in log and f"nothing under {out} was changed" in log
    assert "Traceback" not in log
    assert _snapshot(out) == before


def test_fixed_styles_keep_the_fingerprint_of_the_data_before_the_key_existed():
    from pipeline.params import params_hash, to_dict
    from pipeline.schema import DataParams
    from stages.acquire import _fingerprint

    data = DataParams()
    before = to_dict(data.synthetic)
    del before["styles"]
    assert _fingerprint(data) == params_hash({"source": "synthetic", "seed": data.seed,
                                              "synthetic": before})
    mixed = data.replace(synthetic=data.synthetic.replace(styles="mixed"))
    assert _fingerprint(mixed) != _fingerprint(data)
