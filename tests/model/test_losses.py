import torch

from pipeline.train import losses


def test_mask_loss_is_the_weighted_pixel_bce():
    logits, masks = torch.randn(2, 2, 4, 4), (torch.rand(2, 2, 4, 4) > 0.5).float()
    mag = torch.rand(2, 1, 4, 4) * 20
    w = losses.mask_weight(mag)
    p = torch.sigmoid(logits)
    manual = -(w * (masks * torch.log(p) + (1 - masks) * torch.log(1 - p))).mean()
    torch.testing.assert_close(losses.mask_loss(logits, masks, w), manual)
    assert w.min() >= 1e-3 and w.max() <= 10


def test_tribert_loss_terms_and_a_baseline_without_classifiers():
    out = {"mask_logits": torch.zeros(1, 2, 4, 4), "visual_scores": torch.full((1, 2, 3), 0.5),
           "pose_scores": torch.full((1, 2, 3), 0.5), "audio_logits": torch.zeros(1, 2, 3)}
    feats = {"masks": torch.ones(1, 2, 4, 4), "weight": torch.ones(1, 1, 4, 4)}
    labels = torch.tensor([[[1.0, 0, 0], [0, 1, 0]]])
    terms = losses.tribert_loss(out, feats, labels)
    for k in ("mask", "visual", "pose", "audio"):
        torch.testing.assert_close(terms[k], torch.log(torch.tensor(2.0)))
    sop_terms = losses.tribert_loss({"mask_logits": out["mask_logits"]}, feats, labels)
    assert sop_terms["visual"] == 0 and sop_terms["audio"] == 0
    torch.testing.assert_close(losses.total_loss(terms, mask=2.0, visual=0, pose=0, audio=0),
                               2 * torch.log(torch.tensor(2.0)))
