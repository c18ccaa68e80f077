"""params.yaml's ``model:`` section -> a model (TriBERT or the Sound-of-Pixels baseline)."""
from __future__ import annotations

import inspect

from torch import nn

from model.backbone import load_backbone_weights
from model.config import ModelParams
from model.sop import SoundOfPixels
from model.tribert import TriBERT


def model_kwargs(cls: type[nn.Module], params: ModelParams) -> dict:
    """The constructor arguments of ``cls`` taken from the resolved section."""
    resolved = params.resolved()
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    kwargs = {k: resolved[k] for k in names}
    if cls is SoundOfPixels and resolved["backbone"] == "resnet50":
        kwargs["backbone"] = "resnet18"   # SoP's frames network is a dilated ResNet-18
    return kwargs


def build_model(params: ModelParams) -> nn.Module:
    """Build the model of ``params`` and load the backbone/VGGish weights it names."""
    cls = TriBERT if params.arch == "tribert" else SoundOfPixels
    model = cls(**model_kwargs(cls, params))
    if params.backbone_weights:
        backbone = model.visual.backbone if cls is TriBERT else model.frames_net.backbone
        load_backbone_weights(backbone, params.backbone_weights)
    if params.vggish_weights and cls is TriBERT:
        model.audio_embedding.vggish.load(params.vggish_weights)
    return model
