"""The mediapipe backend: the BlazePose -> Halpe-68 mapping, real MUSIC21 performers, two-person
finding on composed real duets, and a synthetic duet checked against its ground truth."""
import subprocess

import numpy as np
import pytest

from pipeline.pose import keypoints
from pipeline.pose.mediapipe_backend import FrameDetector, body_to_halpe
from pipeline.schema import MediapipeParams


def test_body_mapping_copies_and_derives():
    lm = np.zeros((33, 3))
    lm[:, 0] = np.arange(33) * 10.0
    lm[:, 1] = 100.0 + np.arange(33)
    lm[:, 2] = np.linspace(0.5, 1.0, 33)
    kp = body_to_halpe(lm)
    np.testing.assert_allclose(kp[9], lm[15])            # left wrist copied
    np.testing.assert_allclose(kp[24], lm[29])           # left heel copied
    np.testing.assert_allclose(kp[18, :2], (lm[11, :2] + lm[12, :2]) / 2)   # neck
    np.testing.assert_allclose(kp[19, :2], (lm[23, :2] + lm[24, :2]) / 2)   # hip
    assert kp[18, 2] == min(lm[11, 2], lm[12, 2])
    eyes_y, mouth_y = (lm[2, 1] + lm[5, 1]) / 2, (lm[9, 1] + lm[10, 1]) / 2
    assert kp[17, 1] == pytest.approx(eyes_y + 1.5 * (eyes_y - mouth_y))   # head beyond the eyes
    assert (kp[26:] == 0).all()                           # hands come from the hand model


def _frames(music21_samples):
    import cv2

    out = []
    for mp4 in sorted(music21_samples.glob("*/video*.mp4")):
        cap = cv2.VideoCapture(str(mp4))
        ok, bgr = cap.read()
        cap.release()
        assert ok, mp4
        out.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    return out


@pytest.fixture(scope="module")
def detector():
    with FrameDetector(MediapipeParams()) as d:
        yield d


def test_finds_real_performers_with_plausible_joints(music21_samples, detector):
    frames = _frames(music21_samples)
    assert len(frames) == 12
    found = 0
    for rgb in frames:
        dets = detector(rgb)
        found += bool(dets)
        for d in dets:
            kp = d.keypoints
            seen = kp[:, 2] > 0
            assert (kp[seen, 0] < 224).all() and (kp[seen, 1] < 224).all()
            x1, y1, x2, y2 = d.box
            for w in (9, 10):                               # wrists inside the person's box
                if seen[w]:
                    assert x1 <= kp[w, 0] <= x2 and y1 <= kp[w, 1] <= y2
            if seen[[5, 6, 11, 12]].all():                  # shoulders above hips
                assert kp[[5, 6], 1].mean() < kp[[11, 12], 1].mean()
    assert found >= 9, f"performer found in {found} of 12 real frames"


def test_composed_real_duet_gives_two_persons_left_to_right(music21_samples, detector):
    frames = [f for f in _frames(music21_samples) if len(detector(f)) == 1]
    pairs = list(zip(frames[0::2], frames[1::2]))[:4]
    both = 0
    for left, right in pairs:
        kp, boxes, absent = keypoints.assign_slots([detector(np.hstack([left, right]))])
        if not absent.any():
            both += 1
            assert (boxes[0, 0, 0] + boxes[0, 0, 2]) / 2 < 224 < (boxes[0, 1, 0] + boxes[0, 1, 2]) / 2
    assert both >= 3, f"both performers found in {both} of {len(pairs)} composed duets"


def test_synthetic_duet_matches_its_ground_truth(tmp_path, detector):
    synth = pytest.importorskip("pipeline.data.synth")
    from pipeline.params import SynthParams
    from pipeline.pose.annotations import read_alphapose

    params = SynthParams(videos_per_class=1, duets=1, duration=6.0, unplayed_instrument=0.0)
    spec = [s for s in synth.plan(params, seed=3) if s.kind == "duet"][0]
    rec = synth.render(spec, tmp_path, params)
    video = tmp_path / rec["video"]
    info = keypoints.probe(video)
    gt = keypoints.assign_slots(keypoints.resample(read_alphapose(tmp_path / rec["annotations"]), info, 8))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-vf", "fps=8", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "pipe:1"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3)
    joints = [5, 6, 9, 10, 18]      # shoulders, wrists, neck
    errors, persons = [], 0
    for t in range(0, len(frames), 12):
        kp, _, absent = keypoints.assign_slots([detector(frames[t])])
        persons += int((~absent).sum())
        for m in np.flatnonzero(~absent[0] & ~gt[2][t]):
            ok = (kp[0, m, joints, 2] > 0) & (gt[0][t, m, joints, 2] > 0)
            d = np.linalg.norm(kp[0, m, joints, :2] - gt[0][t, m, joints, :2], axis=1)[ok]
            errors.extend(d / info.width)
    n_checked = len(range(0, len(frames), 12))
    assert persons >= 0.75 * 2 * n_checked, f"{persons} persons in {n_checked} duet frames"
    assert np.median(errors) < 0.05, f"median joint error {np.median(errors):.3f} of the frame width"
