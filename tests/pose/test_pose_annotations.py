"""AlphaPose JSON results: parsing, writing and clear errors."""
import json

import numpy as np
import pytest

from pipeline.pose.annotations import Detection, read_alphapose, write_alphapose


def _record(frame, x0=10.0, n=68, image_id=None):
    kp = []
    for j in range(n):
        kp += [x0 + j, 20.0 + j, 0.9 if j != 3 else 0.0]
    return {"image_id": image_id or f"{frame:06d}.jpg", "category_id": 1, "keypoints": kp,
            "score": 0.8, "box": [x0, 20.0, 70.0, 70.0], "idx": 1}


def test_parses_a_written_fixture(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps([_record(0), _record(0, x0=100), _record(2, image_id="2.jpg")]))
    frames = read_alphapose(path)
    assert sorted(frames) == [0, 2] and len(frames[0]) == 2
    det = frames[0][1]
    assert det.keypoints.shape == (68, 3)
    np.testing.assert_allclose(det.keypoints[5], [105, 25, 0.9], rtol=1e-6)
    np.testing.assert_allclose(det.box, [100, 20, 170, 90])   # [x, y, w, h] -> corners
    assert (det.keypoints[3] == 0).all()                      # score 0: no coordinates


def test_write_then_read_round_trips(tmp_path):
    kp = np.random.default_rng(0).uniform(1, 200, (68, 3)).astype(np.float32)
    kp[:, 2] = 0.5
    det = Detection(kp, np.array([1, 2, 50, 60], np.float32), 0.7)
    write_alphapose(tmp_path / "r.json", {4: [det]})
    back = read_alphapose(tmp_path / "r.json")[4][0]
    np.testing.assert_allclose(back.keypoints, kp, atol=1e-3)
    np.testing.assert_allclose(back.box, det.box, atol=1e-3)


def test_halpe136_drops_the_face(tmp_path):
    rec = _record(0, n=136)
    (tmp_path / "f.json").write_text(json.dumps([rec]))
    kp = read_alphapose(tmp_path / "f.json")[0][0].keypoints
    np.testing.assert_allclose(kp[26, :2], [10 + 94, 20 + 94])   # left hand wrist = joint 94


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"image_id": "000000.jpg", "keypoints": [1, 2')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        read_alphapose(path)


def test_wrong_joint_count_names_the_file_and_detection(tmp_path):
    path = tmp_path / "short.json"
    path.write_text(json.dumps([_record(0), _record(1, n=17)]))
    with pytest.raises(ValueError, match=r"short\.json: detection 1: 17 joints"):
        read_alphapose(path)


def test_non_numeric_frame_id_is_refused(tmp_path):
    path = tmp_path / "ids.json"
    path.write_text(json.dumps([_record(0, image_id="frame_a.jpg")]))
    with pytest.raises(ValueError, match="ids.json: detection 0: image_id"):
        read_alphapose(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_alphapose(tmp_path / "nope.json")
