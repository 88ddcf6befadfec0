"""FrameEncoder's ``stem`` option: CluP's student stem (Conv 7x7 stride 1 padding 2, no max-pool) against a
ResNet's standard one, by the shapes it produces; and the refusal of a backbone without a ResNet stem."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from affectlab.errors import ConfigError
from affectlab.nn.encoders import create_encoder


@pytest.fixture(scope="module")
def encoders():
    torch.manual_seed(0)
    return {stem: create_encoder("FrameEncoder", backbone="resnet18", stem=stem) for stem in ("standard", "clup")}


def test_clup_stem_is_the_originals(encoders):
    conv = encoders["clup"].backbone.conv1
    assert isinstance(conv, nn.Conv2d)
    assert (conv.kernel_size, conv.stride, conv.padding, conv.bias) == ((7, 7), (1, 1), (2, 2), None)
    assert conv.weight.shape == (64, 3, 7, 7)
    assert isinstance(encoders["clup"].backbone.maxpool, nn.Identity)
    standard = encoders["standard"].backbone
    assert standard.conv1.stride == (2, 2) and isinstance(standard.maxpool, nn.MaxPool2d)
    # the same parameters otherwise: the stem changes strides, not what a checkpoint holds
    shapes = {stem: {k: v.shape for k, v in e.state_dict().items()} for stem, e in encoders.items()}
    assert shapes["clup"] == shapes["standard"]


def test_spatial_sizes(encoders):
    images = torch.rand(2, 3, 32, 32)
    maps = {}
    for stem, encoder in encoders.items():
        backbone = encoder.backbone.eval()
        with torch.no_grad():
            x = backbone.maxpool(backbone.act1(backbone.bn1(backbone.conv1(images))))
            maps[stem] = [x.shape[-1]]
            for layer in (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4):
                x = layer(x)
                maps[stem].append(x.shape[-1])
    assert maps["standard"] == [8, 8, 4, 2, 1]  # stride 2 conv, stride 2 max-pool: 32 -> 8 at layer1
    assert maps["clup"] == [30, 30, 15, 8, 4]  # 32 + 2*2 - 7 + 1 = 30, no max-pool
    with torch.no_grad():
        pooled = encoders["clup"].eval()(torch.rand(2, 1, 3, 32, 32))  # a one-frame clip per sample
    assert pooled.shape == (2, 512) and encoders["clup"].num_features == 512


def test_clup_stem_on_a_feature_map_and_on_torchvision():
    staged = create_encoder("FrameEncoder", backbone="resnet18", feature_stage=1, stem="clup")  # layer1's map
    with torch.no_grad():
        out = staged.backbone(torch.rand(1, 3, 32, 32))[-1]
    assert out.shape == (1, 64, 30, 30)
    tv = create_encoder("FrameEncoder", backbone="torchvision.models.resnet18", stem="clup")
    assert tv.backbone.conv1.stride == (1, 1) and isinstance(tv.backbone.maxpool, nn.Identity)


@pytest.mark.parametrize("backbone", ["test_vit", "resnet18d"])  # no stem at all; a deep (3-conv) stem
def test_backbone_without_a_resnet_stem_is_refused(backbone):
    with pytest.raises(ConfigError, match="needs a ResNet stem.*stem: standard"):
        create_encoder("FrameEncoder", backbone=backbone, stem="clup")


def test_unknown_stem_is_refused():
    with pytest.raises(ConfigError, match="standard, clup"):
        create_encoder("FrameEncoder", backbone="resnet18", stem="deep")
