"""Pose shards: row alignment with the clip shards, absent persons, boxes, stride undoing."""
import h5py
import numpy as np
import pytest
import torch

from pose_motion import SIZE, keypoint_sequence
from pipeline.pose import features, keypoints, trajectory
from pipeline.pose.annotations import Detection, box_from_joints
from pipeline.schema import PoseFeaturesParams
from pipeline.pose.stgcn import STGCN, save_checkpoint

torch.set_num_threads(2)
P = PoseFeaturesParams(context=16, batch_size=8, threads=2)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("posefeat")
    kp = keypoint_sequence(3, 20, np.random.default_rng(0), duet_with=7)
    kp[5] = 0.0                      # frame 5: nobody
    kp[6, 0] = 0.0                   # frame 6: only the right performer
    dets = [[Detection(kp[t, m], box_from_joints(kp[t, m]), 0.9)
             for m in range(2) if kp[t, m, :, 2].any()] for t in range(20)]
    k, boxes, absent = keypoints.assign_slots(dets)
    keypoints.save(tmp / "kp" / "duetVideo01.npz", k, boxes, absent, fps=8, width=SIZE, height=SIZE,
                   backend="annotations")
    clips = tmp / "clips"
    clips.mkdir()
    # windows of 75 samples at 80 Hz (8 trajectory frames at 8 fps) starting at frames 3, 8, 0
    # and 15 (the last one runs past the video's 20 frames)
    rows = {"shard-0000.h5": ([b"duetVideo01", b"duetVideo01", b"missingVid0"], [[4, 5, 6], [9, 10, 11], [1, 2, 3]],
                              [30, 81, 0]),
            "shard-0001.h5": ([b"duetVideo01"], [[18, 19, 20]], [150])}
    for name, (vids, fidx, starts) in rows.items():
        with h5py.File(clips / name, "w") as f:
            f.attrs["frame_size"], f.attrs["resize"] = 224, "center_crop"
            f.attrs["sample_rate"], f.attrs["fps"], f.attrs["clip_samples"] = 80, 8, 75
            f["video_id"] = np.array(vids, "S11")
            f["frame_index"] = np.array(fidx, np.int32)
            f["start_sample"] = np.array(starts, np.int64)
    save_checkpoint(STGCN(width=0.125).eval(), tmp / "stgcn.pt", {})
    summary = features.run(clips, tmp / "kp", tmp / "stgcn.pt", tmp / "pose", P, log=lambda *_: None)
    return tmp, summary


def _read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


def test_shards_mirror_the_clip_shards(setup):
    tmp, summary = setup
    assert sorted(p.name for p in (tmp / "pose").glob("shard-*.h5")) == ["shard-0000.h5", "shard-0001.h5"]
    a = _read(tmp / "pose" / "shard-0000.h5")
    assert a["features"].shape == (3, 3, 2, 256, 68) and a["features"].dtype == np.float16
    assert a["boxes"].shape == (3, 3, 2, 5) and a["absent"].shape == (3, 3, 2)
    assert a["video_id"].tolist() == [b"duetVideo01", b"duetVideo01", b"missingVid0"]
    assert a["frame_index"].tolist() == [[4, 5, 6], [9, 10, 11], [1, 2, 3]]
    assert summary["clips"] == 4


def test_absent_persons_get_zero_features_and_the_flag(setup):
    tmp, _ = setup
    a = _read(tmp / "pose" / "shard-0000.h5")
    assert a["absent"][0].tolist() == [[0, 0], [1, 1], [1, 0]]     # frames 4, 5 (nobody), 6
    assert (a["features"][0, 1] == 0).all() and (a["boxes"][0, 1] == 0).all()
    assert (a["features"][0, 2, 0] == 0).all() and np.abs(a["features"][0, 2, 1]).sum() > 0
    assert np.abs(a["features"][0, 0]).sum(axis=(1, 2)).min() > 0
    assert (a["absent"][2] == 1).all() and (a["features"][2] == 0).all()   # no keypoint file


def test_frames_past_the_keypoints_are_absent(setup):
    tmp, _ = setup
    b = _read(tmp / "pose" / "shard-0001.h5")
    assert b["absent"][0].tolist() == [[0, 0], [0, 0], [1, 1]]     # frame 20 is past the end


def test_boxes_are_normalised_with_their_area(setup):
    tmp, _ = setup
    box = _read(tmp / "pose" / "shard-0000.h5")["boxes"][1, 0, 0]
    assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
    assert box[4] == pytest.approx((box[2] - box[0]) * (box[3] - box[1]), rel=1e-5)


def test_keypoints_and_boxes_are_in_clip_frame_pixels(setup):
    tmp, _ = setup
    a = _read(tmp / "pose" / "shard-0000.h5")
    src = keypoints.load(tmp / "kp" / "duetVideo01.npz")
    scale = 224 / SIZE                                  # a square source: centre crop = scaling
    np.testing.assert_allclose(a["keypoints"][1, 0], src["keypoints"][9] * [scale, scale, 1], rtol=1e-5)
    x1 = src["boxes"][9, 0, 0] * scale / 224
    assert a["boxes"][1, 0, 0, 0] == pytest.approx(max(0.0, x1), rel=1e-5)


def test_trajectories_are_the_network_input_of_the_window_frames(setup):
    """trajectory[r, i] = frame (window start frame + i) of the person-normalised ST-GCN input
    (x, y, score per joint, slot-major), zeros past the video and without a keypoint file."""
    tmp, _ = setup
    a, b = _read(tmp / "pose" / "shard-0000.h5"), _read(tmp / "pose" / "shard-0001.h5")
    x = features.VideoPose(tmp / "kp" / "duetVideo01.npz", 224, "center_crop").x   # (3, T, V, M)
    assert a["trajectory"].shape == (3, 8, 2, 68, 3) and a["trajectory"].dtype == np.float16
    for row, first in ((0, 3), (1, 8)):            # start samples 30 and 81: frames 3 and 8
        want = x[:, first:first + 8].transpose(1, 3, 2, 0)
        np.testing.assert_allclose(a["trajectory"][row], want, rtol=1e-3, atol=1e-3)
    assert np.abs(a["trajectory"][0, 2, 0]).sum() == 0                   # frame 5: nobody
    assert np.abs(a["trajectory"][0, 2, 1]).sum() == 0
    assert np.abs(a["trajectory"][0, 3, 1]).sum() > 0                    # frame 6: the right one
    assert (a["trajectory"][2] == 0).all()                               # no keypoint file
    np.testing.assert_allclose(b["trajectory"][0, :5], x[:, 15:20].transpose(1, 3, 2, 0),
                               rtol=1e-3, atol=1e-3)
    assert (b["trajectory"][0, 5:] == 0).all()                           # frames 20-22
    with h5py.File(tmp / "pose" / "shard-0000.h5", "r") as f:
        assert f.attrs["trajectory_fps"] == 8
    trajectory.check_trajectory(tmp / "pose", 8)
    with pytest.raises(ValueError, match="shard-0000.h5: trajectory at 8 fps, the model reads 25"):
        trajectory.check_trajectory(tmp / "pose", 25)


def test_a_pose_shard_without_trajectories_is_named(tmp_path):
    with h5py.File(tmp_path / "shard-0000.h5", "w") as f:
        f["features"] = np.zeros((1, 3, 2, 4, 68), np.float16)
    with pytest.raises(ValueError, match="shard-0000.h5: no trajectory"):
        trajectory.check_trajectory(tmp_path, 8)


def test_centre_crop_and_pad_geometry():
    scale, offset = features.clip_frame_transform(640, 360, 224, "center_crop")
    np.testing.assert_allclose(np.array([320, 180]) * scale + offset, [112, 112])   # centre stays
    np.testing.assert_allclose(np.array([0, 0]) * scale + offset, [-(640 * 224 / 360 - 224) / 2, 0])
    scale, offset = features.clip_frame_transform(640, 360, 224, "pad")
    np.testing.assert_allclose(np.array([0, 360]) * scale + offset, [0, 112 + 63])


def test_rerun_is_byte_identical(setup):
    tmp, _ = setup
    features.run(tmp / "clips", tmp / "kp", tmp / "stgcn.pt", tmp / "pose2", P, log=lambda *_: None)
    for name in ("shard-0000.h5", "shard-0001.h5"):
        assert (tmp / "pose" / name).read_bytes() == (tmp / "pose2" / name).read_bytes()


def test_centre_feature_interpolates_the_stride_four_output():
    model = STGCN(width=0.125).eval()
    win = torch.randn(1, 3, 16, 68, 2)
    win[:, 2] = 0.9
    with torch.no_grad():
        f = model.features(win)[0]                     # (256, 4, 68, 2)
    centre = features.centre_features(model, win.numpy())[0]   # (2, 256, 68)
    # frame 8 of 16 sits at stride-4 position (8 + 0.5) / 4 - 0.5 = 1.625
    expect = 0.375 * f[:, 1] + 0.625 * f[:, 2]
    np.testing.assert_allclose(centre, expect.permute(2, 0, 1).numpy(), rtol=1e-4, atol=1e-5)


def test_the_feature_bench_builds_a_clip_shard_the_stage_accepts(tmp_path):
    """`tribert bench pose` times shard_features on a clip shard of its own making: that shard
    must carry what the stage reads (window starts and rates for the trajectories)."""
    from pipeline.pose.bench import bench_features

    (tmp_path / "kp").mkdir()
    assert bench_features(tmp_path, clips=2, width=0.125, context=16, threads=1) > 0
