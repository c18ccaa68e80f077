"""model.crop: the playing-area square from the arm and hand keypoints, the crop itself, the
keypoints moved with train.augment, and Sound-of-Pixels seeing only its crop (model.sop_crop)."""
from __future__ import annotations

import pytest
import torch

from model import crop as pc
from model.build import build_model
from pipeline.schema import ModelParams
from pipeline.train import augment as aug

SIZE = 64


def _keypoints(points, m=1, t=3, p=2, score=0.9):
    """(m, t, p, 68, 3) with person 0's joints at ``points`` {joint: (x, y)} (pixels), the
    rest unscored."""
    k = torch.zeros(m, t, p, 68, 3)
    for j, (x, y) in points.items():
        k[:, :, 0, j] = torch.tensor([x, y, score])
    return k


def test_the_square_covers_the_arms_and_hands_widened_by_the_margin():
    # left wrist (9) at (16, 24), a right-hand joint (50) at (32, 40); a head joint (0) far away
    k = _keypoints({9: (16, 24), 50: (32, 40), 0: (60, 2)})
    cx, cy, side = pc.playing_square(k, SIZE, SIZE, margin=0.25, min_side=0.0)[0].tolist()
    assert (cx, cy) == pytest.approx((24 / SIZE, 32 / SIZE))
    assert side == pytest.approx(16 / SIZE * 1.5)           # the longer extent, x 1 + 2 * 0.25
    # a minimum side; joints below the score threshold are ignored
    assert pc.playing_square(k, SIZE, SIZE, 0.25, min_side=0.5)[0, 2].item() == pytest.approx(0.5)
    k[:, :, 0, 50, 2] = pc.MIN_SCORE / 2
    assert pc.playing_square(k, SIZE, SIZE, 0.0, min_side=0.0)[0, 2].item() == pytest.approx(0.0)


def test_a_clip_without_arm_or_hand_joints_keeps_its_whole_frame():
    k = _keypoints({0: (10, 10), 15: (20, 60)}, m=2)         # head and ankle only
    k[1, 0, 1, 30] = torch.tensor([40.0, 40.0, 0.9])         # a hand of the second person
    sq = pc.playing_square(k, SIZE, SIZE, margin=0.25)
    assert sq[0].tolist() == [0.5, 0.5, 1.0]
    assert sq[1, :2].tolist() == pytest.approx([40 / SIZE, 40 / SIZE])


def test_the_crop_magnifies_what_lies_inside_the_square():
    x = torch.zeros(1, 1, 1, SIZE, SIZE)
    x[..., 24:32, 16:24] = 1.0                     # an 8 x 8 patch centred on (20, 28)
    square = torch.tensor([[20 / SIZE, 28 / SIZE, 16 / SIZE]])     # 16 px around its centre
    out = pc.crop(x, square, 32)[0, 0, 0]
    # the patch fills the middle half of the crop (2x magnified), the rest is background
    assert out[10:22, 10:22].min() > 0.95
    assert out[:6].max() < 0.05 and out[:, -6:].max() < 0.05
    # outside the frame is zero-padded
    corner = pc.crop(torch.ones(1, 1, 1, SIZE, SIZE), torch.tensor([[0.0, 0.0, 0.5]]), 32)
    assert corner[0, 0, 0, :14, :14].max() < 0.05 and corner[0, 0, 0, 18:, 18:].min() > 0.95


def test_keypoints_move_with_the_augmented_frames():
    x = torch.zeros(1, 3, SIZE, SIZE, 3, dtype=torch.uint8)
    x[:, :, 18:22, 42:46] = 255                              # a blob around the point (44, 20)
    k = _keypoints({9: (44, 20)})
    k[:, :, 0, 10] = torch.tensor([5.0, 5.0, 0.0])          # an unscored joint stays zero
    p = {"side": torch.tensor([0.75]), "x0": torch.tensor([0.2]), "y0": torch.tensor([0.1]),
         "flip": torch.tensor([True]), "brightness": torch.ones(1), "contrast": torch.ones(1)}
    out = aug.frames(x, p)[0, 0].float().mean(-1)
    moved = aug.points(k, p, SIZE, SIZE)
    px, py = moved[0, 0, 0, 9, :2].round().long().tolist()
    assert out[py, px] > 200 and out.mean() < 30             # the point is still on its blob
    assert moved[0, 0, 0, 9, 2].item() == pytest.approx(0.9)
    assert moved[0, 0, 0, 10].abs().sum() == 0
    # the batch-level augmentation moves pose.keypoints with the frames
    batch = {"frames": x[None].expand(2, 1, 3, SIZE, SIZE, 3),
             aug.KEYPOINTS: k[None].expand(2, 1, 3, 2, 68, 3)}
    torch.manual_seed(0)
    out_batch = aug.augment(batch)
    assert not torch.equal(out_batch[aug.KEYPOINTS], batch[aug.KEYPOINTS])


def _sop(crop):
    torch.manual_seed(0)
    return build_model(ModelParams(arch="sop", preset="tiny", image_size=32, unet_depth=3,
                                   sop_crop=crop)).eval()


def test_sound_of_pixels_with_crops_sees_only_the_playing_area():
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (1, 2, 3, SIZE, SIZE, 3), dtype=torch.uint8, generator=g)
    hands = {9: (16, 16), 10: (24, 24)}                    # square (20, 20), side 16 at margin 0.5
    batch = {"frames": frames, "log_mag_mix": torch.randn(1, 1, 256, 256, generator=g),
             "keypoints": _keypoints(hands, m=2)[None]}
    model = _sop(0.5)
    with torch.no_grad():
        base = model(batch)["fused"]
        far = dict(batch, frames=frames.clone())
        far["frames"][0, 0, :, 40:, 40:] = 0                # outside source 0's playing area
        near = dict(batch, frames=frames.clone())
        near["frames"][0, 0, :, 14:26, 14:26] = 0           # inside it
        assert torch.equal(model(far)["fused"], base)
        changed = model(near)["fused"]
    assert not torch.allclose(changed[0, 0], base[0, 0])
    torch.testing.assert_close(changed[0, 1], base[0, 1])   # the other source is untouched
    with pytest.raises(ValueError, match="sop_crop"):
        model({k: v for k, v in batch.items() if k != "keypoints"})
    # whole frames (the original SoP): the far region does change the channels
    whole = _sop(None)
    with torch.no_grad():
        assert not torch.allclose(whole(far)["fused"], whole(batch)["fused"])
