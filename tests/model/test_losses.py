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


def test_bce_on_probabilities_never_runs_under_autocast(monkeypatch):
    """CUDA's autocast raises on F.binary_cross_entropy (probabilities in, not logits); the
    CPU's allows it, so here a spy checks the rule CUDA enforces: inside a bf16 autocast
    training step, the WSDDN losses run with autocast off, in float32."""
    import torch.nn.functional as F

    from pipeline.train import losses

    seen = []
    real = F.binary_cross_entropy

    def spy(input, target, *a, **kw):
        seen.append((torch.is_autocast_enabled("cpu"), input.dtype))
        return real(input, target, *a, **kw)

    monkeypatch.setattr(F, "binary_cross_entropy", spy)
    B, N, C = 2, 2, 21
    out = {"mask_logits": torch.randn(B, N, 8, 4), "visual_scores": torch.rand(B, N, C),
           "pose_scores": torch.rand(B, N, C), "audio_logits": torch.randn(B, N, C)}
    feats = {"masks": (torch.rand(B, N, 8, 4) > 0.5).float(), "weight": torch.rand(B, 1, 8, 4)}
    labels = torch.zeros(B, N, C)
    labels[..., 3] = 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = losses.tribert_loss({k: v.bfloat16() if "scores" in k else v
                                     for k, v in out.items()}, feats, labels)
    assert seen == [(False, torch.float32)] * 2
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in terms.values())
