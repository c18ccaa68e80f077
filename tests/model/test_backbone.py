"""ResNet-50 uses torchvision's names, so a user's torchvision ImageNet state_dict loads."""
import pytest
import torch

from model.backbone import load_backbone_weights, make_backbone
from model.embeddings import VGGish

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchvision_resnet50_keys() -> set[str]:
    """The state_dict keys of torchvision.models.resnet50 (torchvision docs / source layout:
    conv1, bn1, layer1..layer4 of 3/4/6/3 Bottlenecks with conv1-3, bn1-3 and downsample.0/.1 in
    each stage's first block, fc)."""
    keys = {"conv1.weight", "fc.weight", "fc.bias"} | {f"bn1.{b}" for b in BN}
    for stage, blocks in enumerate((3, 4, 6, 3), start=1):
        for i in range(blocks):
            p = f"layer{stage}.{i}"
            for j in (1, 2, 3):
                keys.add(f"{p}.conv{j}.weight")
                keys |= {f"{p}.bn{j}.{b}" for b in BN}
            if i == 0:
                keys.add(f"{p}.downsample.0.weight")
                keys |= {f"{p}.downsample.1.{b}" for b in BN}
    return keys


def test_resnet50_keys_match_torchvision():
    expected = torchvision_resnet50_keys()
    assert len(expected) == 320
    ours = set(make_backbone("resnet50").state_dict())
    assert ours == expected - {"fc.weight", "fc.bias"}


def test_resnet50_parameter_count_matches_torchvision_without_fc():
    # torchvision resnet50: 25,557,032 parameters, of which fc holds 2048 * 1000 + 1000
    assert sum(p.numel() for p in make_backbone("resnet50").parameters()) == 25_557_032 - 2_049_000


def test_a_torchvision_state_dict_loads(tmp_path):
    source = make_backbone("resnet50")
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in source.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 2048), torch.randn(1000)
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save(state, path)
    target = make_backbone("resnet50")
    load_backbone_weights(target, path)
    loaded = target.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)


def test_a_mismatched_state_dict_fails_with_the_path(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(make_backbone("resnet18").state_dict(), path)
    with pytest.raises(ValueError, match="resnet18.pth.*missing"):
        load_backbone_weights(make_backbone("resnet50"), path)


def test_vggish_weights_load_from_an_official_style_prefix(tmp_path):
    source = VGGish((4, 4, 4, 4, 4, 4, 4))
    prefixed = {f"audio_embeddings.vggish_feat.{k}": v + 1 for k, v in source.state_dict().items()}
    torch.save(prefixed, tmp_path / "audio.pth")
    target = VGGish((4, 4, 4, 4, 4, 4, 4))
    target.load(tmp_path / "audio.pth")
    assert torch.equal(target.conv7.weight, source.conv7.weight + 1)
