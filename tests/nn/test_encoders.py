"""Every registered encoder: forward, backward, features and the uniform interface (registry-driven)."""

from __future__ import annotations

import pytest
import torch

from affectlab.nn.encoders import create_encoder, list_encoders
from affectlab.nn.pooling import downsample_mask, masked_mean

# Small inputs per encoder, so the test stays fast; a new encoder must add its case here.
CASES = {
    "FrameEncoder": ({"backbone": "test_vit", "backbone_kwargs": {"img_size": 32}}, lambda: torch.rand(2, 3, 3, 32, 32)),
    "AudioConvEncoder": ({}, lambda: torch.rand(2, 4000) * 2 - 1),
    "TextTransformerEncoder": ({"vocab_size": 50}, lambda: torch.randint(1, 50, (2, 7))),
    "FeatureSequenceEncoder": ({"in_features": 10, "dim": 8}, lambda: torch.randn(2, 5, 10)),
    "PrecomputedFeatures": ({"in_features": 10}, lambda: torch.randn(2, 5, 10).requires_grad_()),
    "StageEncoder": ({"backbone": "test_convnext", "feature_stage": 2}, lambda: torch.rand(2, 3, 3, 32, 32)),
}


def test_every_encoder_has_a_case():
    assert sorted(CASES) == list_encoders()


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_backward_and_features(name):
    kwargs, make_input = CASES[name]
    encoder = create_encoder(name, **kwargs)
    x = make_input()
    features, mask = encoder.forward_features(x)
    assert features.ndim == 3 and features.shape[0] == 2 and features.shape[-1] == encoder.num_features
    pooled = encoder(x)
    assert pooled.shape == (2, encoder.num_features)
    pooled.square().mean().backward()
    grads = [p.grad for p in encoder.parameters() if p.requires_grad]
    if name == "PrecomputedFeatures":  # no weights of its own: the gradient reaches the features
        grads = [x.grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert encoder.feature_info[0]["num_chs"] == encoder.num_features


def test_unknown_encoder_lists_known_ones():
    with pytest.raises(KeyError, match="FrameEncoder"):
        create_encoder("NoSuchEncoder")


def test_unknown_timm_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="not a timm model name"):
        create_encoder("FrameEncoder", backbone="resnet_does_not_exist")


def test_backbone_by_class_path():
    encoder = create_encoder("FrameEncoder", backbone="torchvision.models.resnet18", backbone_kwargs={"num_classes": 16})
    assert encoder(torch.rand(1, 2, 3, 32, 32)).shape == (1, 16)


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]]])  # (B=1, T=3, D=1)
    mask = torch.tensor([[True, True, False]])
    assert masked_mean(x, mask).item() == 2.0
    assert masked_mean(x, torch.zeros_like(mask)).item() == 0.0  # all padding: zeros, not NaN


def test_text_padding_does_not_change_the_encoding():
    torch.manual_seed(0)
    encoder = create_encoder("TextTransformerEncoder", vocab_size=20).eval()
    short = torch.tensor([[3, 4, 5]])
    padded = torch.tensor([[3, 4, 5, 0, 0]])
    assert torch.allclose(encoder(short), encoder(padded), atol=1e-6)


def test_downsample_mask_keeps_real_steps():
    mask = torch.tensor([[True] * 6 + [False] * 2])
    assert downsample_mask(mask, 4).tolist() == [[True, True, True, False]]


def test_precomputed_features_pass_through_and_pool_over_time():
    encoder = create_encoder("PrecomputedFeatures", in_features=3, pooling="max")
    pooled = torch.randn(4, 3)
    assert torch.equal(encoder(pooled), pooled)  # one vector per clip: unchanged
    sequence = torch.tensor([[[1.0, 0.0, 0.0], [2.0, -1.0, 5.0], [9.0, 9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    assert encoder(sequence, mask).tolist() == [[2.0, 0.0, 5.0]]


def test_subtract_clip_mean_keeps_motion_and_cancels_what_holds_still():
    torch.manual_seed(0)
    encoder = create_encoder("FrameEncoder", backbone="test_convnext", feature_stage=2, spatial_grid=2,
                             pooling="max", subtract_clip_mean=True).eval()
    motion = torch.rand(1, 4, 3, 64, 64) * 0.2  # what changes over the clip
    still_a, still_b = torch.rand(1, 1, 3, 64, 64) * 0.5, torch.rand(1, 1, 3, 64, 64) * 0.5  # two static scenes
    with torch.no_grad():
        a, b = encoder(still_a + motion), encoder(still_b + motion)
        other_motion = encoder(still_a + torch.rand(1, 4, 3, 64, 64) * 0.2)
        # The same as the plain encoder given the normalised clip minus its mean frame, by hand.
        normalised = (still_a + motion - 0.5) / 0.5
        by_hand = encoder.backbone((normalised - normalised.mean(1, keepdim=True)).flatten(0, 1))[-1]
        by_hand = torch.nn.functional.adaptive_avg_pool2d(by_hand, 2).flatten(1).amax(0, keepdim=True)
    assert torch.allclose(a, b, atol=1e-5)  # the static scene cancels
    assert not torch.allclose(a, other_motion, atol=1e-3)  # the motion does not
    assert torch.allclose(a, by_hand, atol=1e-5)


def test_subtract_clip_mean_ignores_padded_frames_and_refuses_single_images():
    torch.manual_seed(0)
    encoder = create_encoder("FrameEncoder", backbone="test_convnext", feature_stage=2, spatial_grid=1,
                             pooling="mean", subtract_clip_mean=True).eval()
    clip = torch.rand(1, 3, 3, 64, 64)
    padded = torch.cat([clip, torch.ones(1, 2, 3, 64, 64)], dim=1)  # two padding frames of white
    mask = torch.tensor([[True, True, True, False, False]])
    with torch.no_grad():
        assert torch.allclose(encoder(clip), encoder(padded, mask), atol=1e-5)
    with pytest.raises(ValueError, match="subtract_clip_mean"):
        encoder(torch.rand(2, 3, 64, 64))  # images: a clip of one frame


def test_stage_encoder_keeps_the_timm_extractors_state_dict_keys_and_maps():
    import timm

    torch.manual_seed(0)
    timm.create_model("test_convnext", pretrained=False, features_only=True)  # the encoder probes the stage count first
    extractor = timm.create_model("test_convnext", pretrained=False, features_only=True, out_indices=(0, 1))
    torch.manual_seed(0)
    encoder = create_encoder("StageEncoder", backbone="test_convnext", feature_stage=1)
    assert list(encoder.state_dict()) == list(extractor.state_dict())
    encoder.load_state_dict(extractor.state_dict())
    images = torch.rand(2, 3, 32, 32)
    maps = encoder.eval().forward_stages(images)
    expected = extractor.eval()(images)
    assert len(maps) == 2 and encoder.stage_channels == [m.shape[1] for m in expected]
    assert all(torch.equal(a, b) for a, b in zip(maps, expected))


def test_stage_encoder_refuses_a_stage_the_backbone_lacks():
    with pytest.raises(ValueError, match="has 4 stages"):
        create_encoder("StageEncoder", backbone="test_convnext", feature_stage=4)


def test_a_copied_stage_encoder_runs_its_own_weights():
    import copy

    encoder = create_encoder("StageEncoder", backbone="test_convnext", feature_stage=0).eval()
    copied = copy.deepcopy(encoder)
    images = torch.rand(1, 3, 32, 32)
    before = encoder.forward_stages(images)[-1]
    with torch.no_grad():
        for p in copied.parameters():
            p.add_(1.0)
    assert torch.equal(encoder.forward_stages(images)[-1], before)
    assert not torch.equal(copied.forward_stages(images)[-1], before)
