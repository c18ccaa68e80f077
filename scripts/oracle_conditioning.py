"""Diagnostic (docs/experiments.md, section 3): can the separation network learn masks quickly
when its conditioning is perfect, the one-hot class of each source (an oracle no model has)?
Trains only the separation head on the training mixtures of data/clips and prints the mask loss
every 20 steps and the val SDR of 40 val mixtures at the end.

Usage (from the repository root, after `dvc repro decode`):
    python scripts/oracle_conditioning.py STEPS KIND[:LR][,KIND[:LR]...]
KIND: unet_film (attention U-Net, bottleneck fusion + FiLM, decoder per source), unet_synth
(attention U-Net + synthesizer head), sop (Sound-of-Pixels U-Net + synthesizer); LR default 1e-3.
"""
import sys, time, numpy as np, torch
from torch import nn
from pipeline.data.dataset import MixDataset, collate
from pipeline.data import spectrogram as sp
from model.unet import AttentionUNet
from model.sop import AudioUNet
from pipeline.train import losses
from pipeline.separation.infer import masks_to_waveforms
from pipeline.separation import metrics
torch.set_num_threads(1)
steps = int(sys.argv[1]); which = sys.argv[2].split(",")
train = MixDataset("data/clips", "train", seed=0, fields=("waveform", "label"))
val = MixDataset("data/clips", "val", seed=0, fields=("waveform", "label"))

class Oracle(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        if kind.startswith("unet"):
            self.emb = nn.Linear(21, 192)
            self.net = AttentionUNet(5, 16, 128, 192, film="film" in kind, input_norm=True,
                                     synthesizer=16 if "synth" in kind else 0)
        else:
            K = 16
            self.emb = nn.Linear(21, K)
            self.net = AudioUNet(5, 16, 128, K)
            self.bias = nn.Parameter(torch.zeros(1))
    def forward(self, logmag, labels):
        B, N, _ = labels.shape
        v = self.emb(labels)
        if self.kind.startswith("unet"):
            return self.net(logmag, v)
        a = self.net(logmag)                                   # (B, K, F, T)
        return torch.einsum("bnk,bkft->bnft", v, a) + self.bias

for spec in which:
    kind, lr = (spec.split(":") + ["1e-3"])[:2]
    torch.manual_seed(0)
    m = Oracle(kind); opt = torch.optim.Adam(m.parameters(), float(lr))
    g = torch.Generator().manual_seed(0); order = torch.randperm(len(train), generator=g)
    t0 = time.time(); hist = []
    for step in range(steps):
        train.set_epoch(step // (len(train) // 8))
        idx = order[(step * 8) % (len(train) - 8):][:8]
        b = collate([train[int(i)] for i in idx])
        f = sp.mixture_features(b["audio"])
        m.train(); logits = m(f["log_mag_mix"], b["label"])
        loss = losses.mask_loss(logits, f["masks"], f["weight"])
        opt.zero_grad(); loss.backward(); opt.step(); hist.append(float(loss.detach()))
        if (step + 1) % 20 == 0:
            print(spec, step + 1, "mask loss %.4f" % np.mean(hist[-20:]), "%.0fs" % (time.time() - t0), flush=True)
    m.eval(); sdr = []; mixs = []
    with torch.no_grad():
        for i in range(0, 40, 8):
            b = collate([val[j] for j in range(i, i + 8)])
            f = sp.mixture_features(b["audio"])
            est = masks_to_waveforms(torch.sigmoid(m(f["log_mag_mix"], b["label"])), f, "binary", 0.5).double().numpy()
            refs = b["audio"][..., :est.shape[-1]].double().numpy()
            for k in range(8):
                s = metrics.separation_metrics(refs[k], est[k]); sdr.append(s.mean()["sdr"]); mixs.append(s.mean()["sdr_mix"])
    print(spec, "VAL SDR %.2f (mix %.2f) over %d" % (np.mean(sdr), np.mean(mixs), len(sdr)), flush=True)
