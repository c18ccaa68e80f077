"""Diagnostic (docs/experiments.md, section 19): can a frames network trained from random
weights recognise the instrument in a solo clip of a video it has not seen? Sound-of-Pixels
conditions on nothing else, so if this fails its separation cannot work.

Trains a backbone of model.backbone (dilated last stage, as the SoP frames network) and a
linear classifier with cross-entropy on the frames of the training split's solo clips, each
clip's three frames averaged, and prints per epoch the accuracy on the val + test solo clips
(21 classes, chance 0.048) and on 96 training clips.

Usage (from the repository root, after `dvc repro decode`):
    python scripts/frames_probe.py [--size 112] [--backbone resnet_tiny] [--augment]
        [--channel-shuffle] [--pool max|avg] [--epochs 20] [--seed 0] [--save BACKBONE.pt]
        [--playing-area MARGIN [--pose data/pose]]

--playing-area cuts each clip to its playing area (a square around the arms and hands from the pose
shards' keypoints, widened by MARGIN of its side on each side: model/crop.py, the SoP setting
model.sop_crop) before the network.

The val and test clips are only scored, never used to choose weights: --save keeps the last
epoch's backbone. The training is :mod:`pipeline.train.frames_pretrain`'s, which the train stage
runs before mix-and-separate when ``train.frames_pretrain`` > 0.
"""
import argparse
import time

import torch

from model.backbone import make_backbone
from pipeline.train import frames_pretrain as fp

ap = argparse.ArgumentParser()
ap.add_argument("--clips", default="data/clips")
ap.add_argument("--size", type=int, default=112, help="frame side the network sees")
ap.add_argument("--backbone", default="resnet_tiny")
ap.add_argument("--augment", action="store_true", help="train.augment's crop, flip and jitter")
ap.add_argument("--crop", default="0.6,1.0", help="augmentation crop area share range")
ap.add_argument("--channel-shuffle", action="store_true", help="permute RGB per clip")
ap.add_argument("--pool", default="max", choices=("max", "avg"))
ap.add_argument("--epochs", type=int, default=20)
ap.add_argument("--batch", type=int, default=fp.BATCH)
ap.add_argument("--lr", type=float, default=fp.LR)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--playing-area", type=float, metavar="MARGIN",
                help="cut each clip to its playing area widened by MARGIN (model/crop.py)")
ap.add_argument("--pose", default="data/pose", help="pose shards (with --playing-area)")
ap.add_argument("--save", help="write the last epoch's backbone here, as a torchvision-named "
                "state_dict that model.backbone_weights loads")
args = ap.parse_args()
torch.manual_seed(args.seed)
torch.set_num_threads(args.threads)

crops = args.playing_area is not None
data = fp.solo_clips(args.clips, args.size, pose=args.pose if crops else None)
x_train, y_train, *k_train = data["train"]
x_eval, y_eval, *k_eval = data["eval"]
print(f"{len(x_train)} training and {len(x_eval)} val+test solo clips at {args.size} px"
      + (f", playing-area crops with margin {args.playing_area}" if crops else ""), flush=True)

net = fp.FramesClassifier(make_backbone(args.backbone, dilate_last=True), pool=args.pool,
                          crop=args.playing_area, size=args.size)
start = time.time()


def report(epoch: int, loss: float) -> None:
    print(f"epoch {epoch}: loss {loss:.3f} | train accuracy "
          f"{fp.accuracy(net, x_train[:96], y_train[:96], *[k[:96] for k in k_train]):.2f} | "
          f"val+test accuracy {fp.accuracy(net, x_eval, y_eval, *k_eval):.3f} | "
          f"{time.time() - start:.0f} s", flush=True)


fp.train(net, x_train, y_train, args.epochs, augment_frames=args.augment,
         crop=tuple(float(v) for v in args.crop.split(",")), channel_shuffle=args.channel_shuffle,
         lr=args.lr, batch=args.batch, keypoints=k_train[0] if crops else None,
         after_epoch=report)

if args.save:
    torch.save(net.backbone.state_dict(), args.save)
    print(f"backbone -> {args.save}")
