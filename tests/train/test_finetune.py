"""Fine-tuning (paper 3.2.2): new classification layers for MUSIC11, the rest transferred."""
from __future__ import annotations

import torch

from model.build import build_model
from pipeline.schema import ModelParams
from pipeline.classes import MUSIC11
from stages.finetune import Music11MixDataset, transfer, with_classes

SMALL = ModelParams(preset="tiny", image_size=32, unet_depth=3, layers=1)


def test_heads_are_replaced_for_11_classes_and_the_rest_transferred():
    torch.manual_seed(0)
    pre = build_model(SMALL)
    new = with_classes(pre, len(MUSIC11))
    fresh = transfer(pre, new)
    assert new.visual_head.classify.out_features == 11
    assert new.pose_head.detect.out_features == 11
    assert new.audio_head.decoder.out_features == 11
    assert pre.audio_head.decoder.out_features == 21
    assert "audio_head.decoder.weight" in fresh
    assert all(k.startswith(("visual.attention", "visual_head", "pose_head", "audio_head"))
               for k in fresh), fresh
    a, b = pre.state_dict(), new.state_dict()
    shared = [k for k in b if k not in fresh]
    assert shared and all(torch.equal(a[k], b[k]) for k in shared)


def test_music11_subset_drops_clips_with_other_classes(clip_dir):
    ds = Music11MixDataset(clip_dir, "train")
    from pipeline.classes import CLASS_INDEX
    assert len(ds) == 10                                  # the drum video's 2 clips are gone
    assert not ds.label[:, CLASS_INDEX["drum"]].any()
    for i in range(len(ds)):
        assert not ds[i]["label"][:, CLASS_INDEX["drum"]].any()
