"""Decode stage: real ffmpeg on real tiny mp4s (lavfi test sources), good and bad."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support import ROOT, assert_same_shards, require_tools
from pipeline.data import decode, manifest
from pipeline.data.decode import DecodeParams, Skip
from pipeline.params import ExecutorParams, ParamsError, validate_section

CLIP_S = 65535 / 11025


def make_video(path: Path, seconds=7.0, size="96x72", rate=25, audio=True, video=True,
               freq=440, extra_vf=None, silent=False) -> Path:
    """A real mp4 from ffmpeg's lavfi sources."""
    args = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}"]
    if audio:
        src = "anullsrc=r=22050:cl=mono" if silent else f"sine=frequency={freq}:sample_rate=22050"
        args += ["-f", "lavfi", "-i", src]
    args += ["-t", str(seconds)]
    if video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"]
        if extra_vf:
            args += ["-vf", extra_vf, "-fps_mode", "vfr"]
    if audio:
        args += ["-c:a", "aac"]
    subprocess.run(args + [str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    require_tools("ffmpeg", "ffprobe")
    d = tmp_path_factory.mktemp("videos")
    v = {
        "ok": make_video(d / "ok.mp4", seconds=13),
        "odd": make_video(d / "odd.mp4", size="97x73"),
        "wide": make_video(d / "wide.mp4", size="160x48"),
        "noaudio": make_video(d / "noaudio.mp4", audio=False),
        "novideo": make_video(d / "novideo.m4a", video=False),
        "short": make_video(d / "short.mp4", seconds=3),
        "silent": make_video(d / "silent.mp4", silent=True),
        "vfr": make_video(d / "vfr.mp4", rate=30, extra_vf=(
            "setpts='if(lt(N,60),N/(30*TB),(60+(N-60)*3)/(30*TB))'")),
    }
    (d / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    v["corrupt"] = d / "corrupt.mp4"
    data = v["ok"].read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    v["truncated"] = d / "truncated.mp4"
    return v


def test_audio_constants_agree_with_spectrogram():
    from pipeline.data import spectrogram

    assert (decode.SAMPLE_RATE, decode.CLIP_SAMPLES) == (spectrogram.SAMPLE_RATE,
                                                       spectrogram.CLIP_SAMPLES)


def test_params_reject_frames_longer_than_a_clip():
    with pytest.raises(ParamsError, match="decode.frames_per_clip"):
        validate_section("decode", {"frames_per_clip": 16, "frame_stride": 16})


def test_windows_stay_inside_audio_and_video():
    p = DecodeParams(window_stride=2.0)
    starts, frames = decode.plan_windows(11025 * 10, 10.0, p)
    assert list(starts) == [0, 22050, 44100]  # a fourth window would end after 10 s
    assert (starts + 65535 <= 11025 * 10).all()
    assert frames.shape == (3, 3) and (frames[:, 1] - frames[:, 0] == 1).all()
    centre = (starts + 65535 / 2) / 11025 * 8
    assert np.allclose(frames[:, 1], np.round(centre))
    assert decode.plan_windows(11025 * 10, 3.0, p)[0].size == 0  # video ends before the frames


def test_decode_ok_video_shapes_and_audio(videos):
    d = decode.decode_video(str(videos["ok"]), DecodeParams())
    assert d.frames.shape == (3, 3, 224, 224, 3) and d.frames.dtype == np.uint8
    assert d.waveform.shape == (3, 65535) and d.waveform.dtype == np.float32
    assert list(d.start_sample) == [0, 33075, 66150]
    assert np.abs(d.waveform).max() <= 1.0 and np.abs(d.waveform).max() > 0.05
    assert not d.probe.vfr and d.probe.width == 96


def test_odd_frame_size_is_decoded(videos):
    d = decode.decode_video(str(videos["odd"]), DecodeParams())
    assert d.frames.shape[2:] == (224, 224, 3) and d.probe.width == 97


@pytest.mark.parametrize("method,black_rows", [("pad", True), ("center_crop", False),
                                               ("stretch", False)])
def test_resize_methods(videos, method, black_rows):
    frames = decode.decode_video(str(videos["wide"]), DecodeParams(resize=method)).frames
    assert frames.shape[2:] == (224, 224, 3)
    assert (frames[0, 0, :20].max() < 20) == black_rows  # pad letterboxes a 160x48 source


@pytest.mark.parametrize("name,reason", [
    ("noaudio", "no audio track"), ("novideo", "no video stream"), ("short", "too short"),
    ("corrupt", "unreadable container"), ("truncated", "unreadable container"),
    ("silent", "silent audio"), ("vfr", "variable frame rate")])
def test_bad_videos_are_skipped_with_reason(videos, name, reason):
    with pytest.raises(Skip, match=reason):
        decode.decode_video(str(videos[name]), DecodeParams())


def test_vfr_can_be_resampled(videos):
    d = decode.decode_video(str(videos["vfr"]), DecodeParams(vfr="resample"))
    assert d.probe.vfr and d.frames.shape[1:] == (3, 224, 224, 3)


def write_manifest(root: Path, videos: dict, names) -> Path:
    rows = []
    for i, name in enumerate(names):
        vid = f"vid{i:02d}{name[:6]:_<6}"[:11]
        rel = os.path.relpath(videos[name], root)
        split = ("train", "val", "test")[i % 3]
        rows.append(manifest.Row(vid, ("violin",) if i % 2 else ("flute", "cello"),
                                 kind="solo" if i % 2 else "duet", split=split, video=rel,
                                 duration=7.0))
    rows.append(manifest.Row("gone_______", ("tuba",), split="train", status="unavailable",
                             reason="private video"))
    path = root / "manifest.csv"
    manifest.write(path, rows)
    return path


def test_stage_records_bad_videos_and_writes_the_good(videos, tmp_path):
    m = write_manifest(tmp_path, videos, ["ok", "noaudio", "corrupt", "odd"])
    s = decode.run(m, tmp_path / "clips", DecodeParams(max_clips_per_shard=3), progress=False)
    assert s["decoded"] == 2 and s["absent"] == 1 and s["shards"] == 2
    assert sum(s["clips"].values()) == 4
    status = (tmp_path / "clips" / "status.csv").read_text()
    assert "no audio track" in status and "unreadable container" in status
    assert "private video" in status
    assert sorted(p.name for p in (tmp_path / "clips").iterdir()) == [
        "shard-0000.h5", "shard-0001.h5", "status.csv", "summary.json"]


def test_stage_killed_mid_run_completes_with_nothing_lost_or_duplicated(videos, tmp_path):
    names = ["ok", "odd", "wide", "noaudio", "ok", "odd", "wide", "ok"]
    m = write_manifest(tmp_path, videos, names)
    p = DecodeParams(max_clips_per_shard=4)
    ref = decode.run(m, tmp_path / "ref", p, ExecutorParams(jobs=2), progress=False)
    params = tmp_path / "params.yaml"
    params.write_text("decode:\n  max_clips_per_shard: 4\nexecutor:\n  jobs: 1\n")
    out = tmp_path / "clips"
    # SIGKILL from inside the stage after its 2nd work item (a hook, not a timer: issue 12)
    proc = subprocess.Popen([sys.executable, "-m", "stages.decode", "--params", str(params),
                             "--manifest", str(m), "--out", str(out), "--no-progress"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TRIBERT_KILL_AT_VIDEO": "2"})
    assert proc.wait(timeout=300) == -signal.SIGKILL
    assert len(list(out.glob(".work/*/*.json"))) == 2
    assert not list(out.glob("shard-*.h5"))
    again = decode.run(m, out, p, ExecutorParams(jobs=1), progress=False)
    assert again == ref
    # contents, not bytes: lzf may compress the same frames to different bytes (shards.py)
    assert_same_shards(out, tmp_path / "ref")
    assert not (out / ".work").exists() and not list(out.glob(".tmp-*"))


def test_complete_work_items_are_reused_and_stale_ones_redone(videos, tmp_path):
    src = tmp_path / "v.mp4"
    src.write_bytes(videos["odd"].read_bytes())
    job = decode.Job("vid00000001", str(src), str(tmp_path / "work"))
    first = decode.decode_item(job, DecodeParams())
    npz = tmp_path / "work" / "vid00000001.npz"
    stamp = npz.stat().st_mtime_ns
    assert decode.decode_item(job, DecodeParams()) == first
    assert npz.stat().st_mtime_ns == stamp           # reused, not decoded again
    os.utime(src, ns=(stamp + 10**9, stamp + 10**9))  # the source changed
    assert decode.decode_item(job, DecodeParams())["source"] != first["source"]
    assert npz.stat().st_mtime_ns != stamp


def test_stage_command_writes_outputs_and_applies_overrides(videos, tmp_path):
    from click.testing import CliRunner

    from stages.decode import main

    m = write_manifest(tmp_path, videos, ["odd", "noaudio"])
    params = tmp_path / "params.yaml"
    params.write_text("decode:\n  window_stride: 1.0\nexecutor:\n  jobs: 1\n")
    r = CliRunner().invoke(main, ["--params", str(params), "--manifest", str(m), "--out",
                                  str(tmp_path / "clips"), "--no-progress",
                                  "--set", "decode.max_windows=1"])
    assert r.exit_code == 0, r.output
    assert "1 of 3 videos -> 1 clips in 1 shards" in r.output
    assert (tmp_path / "clips" / "summary.json").exists()
    bad = CliRunner().invoke(main, ["--params", str(params), "--manifest", str(m),
                                    "--set", "decode.fps=0"])
    assert bad.exit_code != 0 and "decode.fps" in bad.output


def test_rerun_with_new_params_prunes_stale_shards(videos, tmp_path):
    m = write_manifest(tmp_path, videos, ["ok"])
    out = tmp_path / "clips"
    decode.run(m, out, DecodeParams(max_clips_per_shard=1), progress=False)
    assert len(list(out.glob("shard-*.h5"))) == 3
    (out / ".tmp-shard-0000-x.h5").write_bytes(b"left by a killed run")
    decode.run(m, out, DecodeParams(max_clips_per_shard=8), progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["shard-0000.h5", "status.csv",
                                                      "summary.json"]


def test_no_decodable_video_leaves_the_earlier_shards_alone(videos, tmp_path):
    """Issue 12 item 3: decode deleted every shard in --out before it found that no video
    decodes."""
    from click.testing import CliRunner

    from stages.decode import main

    out = tmp_path / "clips"
    decode.run(write_manifest(tmp_path, videos, ["ok"]), out, DecodeParams(), progress=False)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    bad = tmp_path / "bad"
    bad.mkdir()
    m = write_manifest(bad, videos, ["noaudio", "corrupt"])
    r = CliRunner().invoke(main, ["--params", str(tmp_path / "none.yaml"), "--manifest", str(m),
                                  "--out", str(out), "--no-progress"])
    assert r.exit_code != 0 and "cannot read params file" in r.output
    params = tmp_path / "params.yaml"
    params.write_text("executor:\n  jobs: 1\n")
    r = CliRunner().invoke(main, ["--params", str(params), "--manifest", str(m), "--out",
                                  str(out), "--no-progress"])
    assert r.exit_code == 1
    assert "none of 3 videos gave a clip" in r.output and "left as it was" in r.output
    assert "no audio track" in r.output and "unreadable container" in r.output
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()
            if p.name != ".work"} == before
