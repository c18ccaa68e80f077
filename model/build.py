"""A resolved ``model:`` section -> a model (TriBERT or the Sound-of-Pixels baseline).

``params`` is the section as plain data (``ModelParams.resolved()`` of :mod:`pipeline.schema`:
a preset of :mod:`model.presets` with its overrides, plus ``arch`` and the weight files) or
anything with a ``resolved()`` method giving it; this package never imports the schema."""
from __future__ import annotations

import inspect

from torch import nn

from model.backbone import load_backbone_weights
from model.sop import SoundOfPixels
from model.tribert import TriBERT


def resolved_section(params) -> dict:
    """The resolved section of ``params`` (a ModelParams or that dict already)."""
    return params.resolved() if hasattr(params, "resolved") else dict(params)


def model_kwargs(cls: type[nn.Module], params) -> dict:
    """The constructor arguments of ``cls`` taken from the resolved section."""
    resolved = resolved_section(params)
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    kwargs = {k: resolved[k] for k in names}
    if cls is SoundOfPixels and resolved["backbone"] == "resnet50":
        kwargs["backbone"] = "resnet18"   # SoP's frames network is a dilated ResNet-18
    return kwargs


def frames_backbone(model: nn.Module) -> nn.Module | None:
    """The ResNet that reads the frames: TriBERT's visual backbone, SoP's frames network's
    (None for anything else)."""
    if isinstance(model, TriBERT):
        return model.visual.backbone
    if isinstance(model, SoundOfPixels):
        return model.frames_net.backbone
    return None


def build_model(params) -> nn.Module:
    """Build the model of ``params`` and load the backbone/VGGish weights it names."""
    config = resolved_section(params)
    cls = TriBERT if config["arch"] == "tribert" else SoundOfPixels
    model = cls(**model_kwargs(cls, config))
    if config.get("backbone_weights"):
        load_backbone_weights(frames_backbone(model), config["backbone_weights"])
    if config.get("vggish_weights") and cls is TriBERT:
        model.audio_embedding.vggish.load(config["vggish_weights"])
    return model
