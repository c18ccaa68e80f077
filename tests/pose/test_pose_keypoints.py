"""Keypoint files: slot identity, resampling to the decode rate, the stage on real mp4s."""
import csv
import subprocess

import numpy as np
import pytest

from pose_motion import keypoint_sequence
from pipeline.data import manifest
from pipeline.pose import keypoints
from pipeline.pose.annotations import Detection, box_from_joints, write_alphapose
from pipeline.schema import KeypointsParams


def _det(cx: float, score: float = 0.9) -> Detection:
    kp = np.zeros((68, 3), np.float32)
    kp[:, 0], kp[:, 1], kp[:, 2] = cx + np.linspace(-10, 10, 68), 50, score
    return Detection(kp, box_from_joints(kp), score)


def test_two_persons_are_ordered_left_to_right():
    kp, boxes, absent = keypoints.assign_slots([[_det(200), _det(40)]])
    assert not absent.any()
    assert boxes[0, 0, 0] < boxes[0, 1, 0]


def test_a_lone_person_keeps_the_slot_it_was_seen_in():
    frames = [[_det(40), _det(200)], [_det(205)], [], [_det(45)]]
    kp, boxes, absent = keypoints.assign_slots(frames)
    assert absent.tolist() == [[False, False], [True, False], [True, True], [False, True]]
    assert (kp[1, 0] == 0).all() and (boxes[2] == 0).all()


def test_at_most_two_persons_by_score():
    _, boxes, _ = keypoints.assign_slots([[_det(10, 0.3), _det(100, 0.9), _det(200, 0.8)]])
    assert boxes[0, 0, 0] > 50   # the low-scored leftmost one is dropped


def test_source_index_matches_ffmpeg_fps_filter(tmp_path):
    # a 25 fps video whose frame i has grey level 5 i, read back through ffmpeg's fps=8 filter
    n, src = 50, 25
    frames = b"".join(np.full((16, 16, 3), 5 * i, np.uint8).tobytes() for i in range(n))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "16x16",
                    "-r", str(src), "-i", "pipe:0", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p",
                    str(tmp_path / "c.mp4")], input=frames, check=True)
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "c.mp4"), "-vf", "fps=8", "-f",
                          "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], capture_output=True, check=True).stdout
    shown = np.round(np.frombuffer(out, np.uint8).reshape(-1, 16, 16, 3)[:, 8, 8, 0] / 5).astype(int)
    info = keypoints.VideoInfo(16, 16, float(src), n)
    assert keypoints.output_frames(info, 8) == len(shown)
    assert keypoints.source_index(np.arange(len(shown)), src, 8, n).tolist() == shown.tolist()


def test_save_is_byte_deterministic_and_loads(tmp_path):
    kp, boxes, absent = keypoints.assign_slots([[_det(40)], []])
    for name in ("a.npz", "b.npz"):
        keypoints.save(tmp_path / name, kp, boxes, absent, fps=8, width=64, height=48, backend="x")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = keypoints.load(tmp_path / "a.npz")
    assert back["width"] == 64 and back["backend"] == "x" and back["absent"].dtype == bool
    np.testing.assert_array_equal(back["keypoints"], kp)


def _mp4(path, frames: int, fps: int, size: int = 64):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=size={size}x{size}:rate={fps}:duration={frames / fps}",
                    "-pix_fmt", "yuv420p", str(path)], check=True)


def _duet_json(path, frames: int):
    seq = keypoint_sequence(2, frames, np.random.default_rng(1), duet_with=5)
    write_alphapose(path, {t: [Detection(seq[t, m], box_from_joints(seq[t, m]), 0.9) for m in (1, 0)]
                           for t in range(frames) if t != 3})


def test_annotations_are_resampled_to_the_decode_rate(tmp_path):
    _mp4(tmp_path / "v.mp4", 32, fps=16)
    _duet_json(tmp_path / "v.json", 32)
    row = manifest.Row("abcdefghijk", ("cello",), video="v.mp4", annotations="v.json")
    rec = keypoints.extract_video(row, tmp_path, tmp_path / "kp", KeypointsParams(), fps=8)
    k = keypoints.load(tmp_path / "kp" / "abcdefghijk.npz")
    assert rec["frames"] == 16 and k["keypoints"].shape == (16, 2, 68, 3)
    assert k["fps"] == 8 and k["width"] == 64
    assert not k["absent"].any()        # source frame 3 (empty) is never picked at 8 of 16 fps
    assert (k["boxes"][:, 0, 0] < k["boxes"][:, 1, 0]).all()


def test_stage_records_a_bad_video_and_keeps_the_rest(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _mp4(raw / "good.mp4", 16, fps=8)
    _duet_json(raw / "good.json", 16)
    _mp4(raw / "bad.mp4", 16, fps=8)
    (raw / "bad.json").write_text("{not json")
    manifest.write(raw / "manifest.csv", [
        manifest.Row("goodgoodgoo", ("cello",), split="train", video="good.mp4", annotations="good.json"),
        manifest.Row("badbadbadba", ("flute",), split="val", video="bad.mp4", annotations="bad.json")])
    out = tmp_path / "kp"
    summary = keypoints.run(raw / "manifest.csv", out, KeypointsParams(), 8, progress=False)
    assert summary["ok"] == 1 and summary["failed"] == 1
    status = {r["video_id"]: r for r in csv.DictReader(open(out / "status.csv"))}
    assert "bad.json: not valid JSON" in status["badbadbadba"]["reason"]
    assert (out / "goodgoodgoo.npz").exists() and not (out / "badbadbadba.npz").exists()


def test_annotations_backend_without_json_explains(tmp_path):
    _mp4(tmp_path / "v.mp4", 8, fps=8)
    row = manifest.Row("abcdefghijk", ("cello",), video="v.mp4")
    with pytest.raises(ValueError, match="needs an AlphaPose JSON"):
        keypoints.extract_video(row, tmp_path, tmp_path / "kp", KeypointsParams(), fps=8)
