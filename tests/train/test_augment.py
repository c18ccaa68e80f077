"""train.augment: frames cropped, flipped and jittered per video, boxes moved with them."""
from __future__ import annotations

import math

import torch

from pipeline.train import augment as aug


def _params(m, side=1.0, x0=0.0, y0=0.0, flip=False, brightness=1.0, contrast=1.0):
    full = lambda v: torch.full((m,), float(v))  # noqa: E731
    return {"side": full(side), "x0": full(x0), "y0": full(y0),
            "flip": torch.full((m,), flip), "brightness": full(brightness),
            "contrast": full(contrast)}


def _frames(m=2, t=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (m, t, size, size, 3), dtype=torch.uint8, generator=g)


def test_identity_and_flip_are_exact():
    x = _frames()
    assert torch.equal(aug.frames(x, _params(2)), x)
    assert torch.equal(aug.frames(x, _params(2, flip=True)), torch.flip(x, dims=[3]))
    b = torch.tensor([[[[0.1, 0.2, 0.4, 0.9, 0.21]]]]).expand(2, 3, 1, 5)
    flipped = aug.boxes(b, _params(2, flip=True))
    torch.testing.assert_close(flipped[..., :4], torch.tensor([0.6, 0.2, 0.9, 0.9]).expand(2, 3, 1, 4))
    torch.testing.assert_close(flipped[..., 4], torch.full((2, 3, 1), 0.3 * 0.7))


def test_a_box_still_covers_its_person_after_a_crop_and_a_flip():
    size = 64
    x = torch.zeros(1, 3, size, size, 3, dtype=torch.uint8)
    x[:, :, 24:40, 32:48] = 255                        # the person: rows 24-39, columns 32-47
    b = torch.tensor([32 / size, 24 / size, 48 / size, 40 / size, 0.0]).expand(1, 3, 1, 5)
    p = _params(1, side=0.75 ** 0.5, x0=0.1, y0=0.05, flip=True)
    out, nb = aug.frames(x, p)[0, 0].float().mean(-1), aug.boxes(b.clone(), p)[0, 0, 0]
    c1, r1, c2, r2 = (int(round(v * size)) for v in nb[:4].tolist())
    inside = out[r1:r2, c1:c2].mean()
    outside = (out.sum() - out[r1:r2, c1:c2].sum()) / (out.numel() - (r2 - r1) * (c2 - c1))
    assert inside > 200 and outside < 20, (inside, outside, (c1, r1, c2, r2))
    assert abs(nb[4] - (nb[2] - nb[0]) * (nb[3] - nb[1])) < 1e-6


def test_each_video_one_draw_for_all_its_frames_and_absent_boxes_stay_zero():
    torch.manual_seed(3)
    f = _frames(m=4, t=1).expand(4, 3, 32, 32, 3)      # three equal frames per video
    batch = {"frames": f.reshape(2, 2, 3, 32, 32, 3),
             "pose.boxes": torch.zeros(2, 2, 3, 2, 5)}
    batch["pose.boxes"][..., 0, :] = torch.tensor([0.2, 0.2, 0.6, 0.8, 0.32])
    out = aug.augment(batch)
    v = out["frames"].reshape(4, 3, 32, 32, 3)
    assert all(torch.equal(v[i, 0], v[i, k]) for i in range(4) for k in (1, 2))
    assert not torch.equal(out["frames"], batch["frames"])
    assert torch.equal(out["pose.boxes"][..., 1, :], torch.zeros(2, 2, 3, 5))
    assert (out["pose.boxes"][..., 0, 4] > 0).all()
    assert out["frames"].dtype == torch.uint8


def test_draws_follow_the_global_seed_so_a_resumed_run_augments_the_same():
    batch = {"frames": _frames(m=4).reshape(2, 2, 3, 32, 32, 3)}
    torch.manual_seed(7)
    a = aug.augment(batch)["frames"]
    torch.manual_seed(7)
    b = aug.augment(batch)["frames"]
    torch.manual_seed(8)
    c = aug.augment(batch)["frames"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_the_task_augments_training_batches_only(monkeypatch):
    from pipeline.train import task as task_mod

    seen = []
    monkeypatch.setattr(task_mod, "augment_batch", lambda b: seen.append(1) or b)
    monkeypatch.setattr(task_mod, "forward", lambda m, b, d: ({}, {}))
    monkeypatch.setattr(task_mod.losses, "tribert_loss",
                        lambda out, feats, y, *signal: {"mask": torch.tensor(1.0)})
    model = torch.nn.Linear(1, 1)
    batch = {"label": torch.zeros(1, 2, 21)}
    for augment, train, calls in ((True, True, 1), (True, False, 0), (False, True, 0)):
        seen.clear()
        t = task_mod.SeparationTask({"mask": 1.0}, None, augment=augment)
        model.train(train)
        t.loss(model, batch, torch.device("cpu"))
        assert len(seen) == calls, (augment, train)


def _trajectory(m=3, w=6, p=2, v=68, seed=0, missing=0.3):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(m, w, p, v, 3, generator=g) - 0.5
    t[..., 2] = (torch.rand(m, w, p, v, generator=g) >= missing).float() * 0.9
    t[..., :2] *= (t[..., 2:3] > 0)
    return t


def test_trajectory_augmentation_moves_each_person_rigidly_up_to_scale_and_keeps_gaps():
    t = _trajectory()
    torch.manual_seed(1)
    out = aug.trajectories(t, stretch=0.0, noise=0.0, drop=0.0)
    seen = t[..., 2] > 0
    assert torch.equal(out[..., 2], t[..., 2])              # scores kept, missing stay missing
    assert (out[..., :2][~seen] == 0).all()
    # per window and person one similarity: every distance between two of its points (over
    # all frames) scales by the same factor, within exp(+-0.2)
    for m in range(t.shape[0]):
        for p in range(t.shape[2]):
            a, b = (x[m, :, p][seen[m, :, p]][:, :2].double() for x in (t, out))
            da, db = torch.cdist(a, a), torch.cdist(b, b)
            ratio = db[da > 1e-2] / da[da > 1e-2]
            torch.testing.assert_close(ratio, ratio.mean().expand_as(ratio), rtol=1e-4, atol=1e-4)
            assert math.exp(-0.2) - 1e-4 <= ratio.mean() <= math.exp(0.2) + 1e-4
    assert not torch.allclose(out, t)                           # it does move them


def test_trajectory_augmentation_with_zero_ranges_is_the_identity_and_keeps_the_dtype():
    t = _trajectory().half()
    out = aug.trajectories(t[None], scale=0, stretch=0, rotation=0, shift=0, noise=0, drop=0)
    assert out.dtype == torch.float16 and out.shape == (1, *t.shape)
    assert torch.equal(out[0], t)


def test_trajectory_dropout_drops_a_share_of_joints_for_the_whole_window():
    t = _trajectory(m=20, w=5, missing=0.0)
    torch.manual_seed(2)
    out = aug.trajectories(t, drop=0.25)
    gone = out[..., 2] == 0                                     # (M, W, P, V)
    assert torch.equal(gone, gone[:, :1].expand_as(gone))       # the same joints in every frame
    assert (out[gone] == 0).all()
    assert 0.2 < gone.float().mean() < 0.3
