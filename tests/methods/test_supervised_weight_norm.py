"""The image classifier's options for CluP's source model and student: weight normalisation that applies (the
original's did not), ``fusion: none`` (the encoder's vector feeds the head) and label smoothing on the image model."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from affectlab.errors import ConfigError
from affectlab.methods import SupervisedClassifier
from affectlab.nn.encoders import FrameEncoder


def _model(weight_norm: bool = True, label_smoothing: float = 0.0) -> SupervisedClassifier:
    torch.manual_seed(0)
    encoder = FrameEncoder("test_vit", {"img_size": 32})
    return SupervisedClassifier({"video": encoder}, fusion="none", dropout=0.0, unimodal_weight=0.0,
                                label_smoothing=label_smoothing, weight_norm=weight_norm)


def _batch() -> dict:
    generator = torch.Generator().manual_seed(1)
    return {
        "video": torch.rand(6, 1, 3, 32, 32, generator=generator),  # (B, T=1, C, H, W): one face per sample
        "video_mask": torch.ones(6, 1, dtype=torch.bool),
        "targets": {"emotion": torch.tensor([0, 1, 2, 3, 4, 5])},
        "target_mask": {"emotion": torch.ones(6, dtype=torch.bool)},
    }


def test_weight_norm_is_effective():
    model = _model()
    linear = model.head.linear
    assert parametrize.is_parametrized(linear, "weight")
    g = linear.parametrizations.weight.original0  # (C, 1): one norm per class row
    v = linear.parametrizations.weight.original1  # (C, D): the direction
    assert g.shape == (7, 1) and v.shape == (7, model.fusion.num_features)
    with torch.no_grad():
        g.mul_(torch.linspace(0.5, 2.0, 7).unsqueeze(1))  # rows of distinct norms
    assert torch.allclose(linear.weight.norm(dim=1), g.squeeze(1), atol=1e-6)  # effective rows have norm g
    # g and v are the parameters an optimiser sees (configure_optimizers runs after __init__), and both train
    names = dict(model.named_parameters())
    assert "head.linear.parametrizations.weight.original0" in names and "head.linear.weight" not in names
    loss = model._losses(model(_batch()), _batch())["loss"]
    loss.backward()
    assert g.grad is not None and g.grad.abs().sum() > 0 and v.grad.abs().sum() > 0
    before = g.detach().clone()
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    assert not torch.equal(before, g.detach())


def test_weight_norm_state_dict_round_trips_with_weights_only():
    model = _model().eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert {"head.linear.parametrizations.weight.original0", "head.linear.parametrizations.weight.original1"} <= set(state)
    torch.manual_seed(5)  # another initialisation: the loaded weights must replace it
    other = SupervisedClassifier({"video": FrameEncoder("test_vit", {"img_size": 32})}, fusion="none", dropout=0.0,
                                 unimodal_weight=0.0, weight_norm=True).eval()
    other.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(model(_batch())["fused"], other(_batch())["fused"])


def test_without_weight_norm_the_head_is_a_plain_linear():
    model = _model(weight_norm=False)
    assert not parametrize.is_parametrized(model.head.linear)
    assert "head.linear.weight" in model.state_dict()


def test_fusion_none_feeds_the_encoders_vector_to_the_head():
    model = _model()
    assert model.head.linear.in_features == model.encoders["video"].num_features
    with torch.no_grad():
        outputs = model(_batch())
        vector = model.encoders["video"](_batch()["video"], _batch()["video_mask"])
    assert torch.equal(outputs["embedding"], vector)  # the teacher's embedding is the backbone's pooled vector
    with pytest.raises(ConfigError, match="fusion: 'none' needs exactly one modality"):
        SupervisedClassifier({"video": FrameEncoder("test_vit", {"img_size": 32}),
                              "audio": FrameEncoder("test_vit", {"img_size": 32})}, fusion="none")


def test_label_smoothing_applies_to_the_image_model():
    batch = _batch()
    smoothed = _model(label_smoothing=0.1)
    with torch.no_grad():
        logits = smoothed(batch)["fused"]
        loss = smoothed._losses(smoothed(batch), batch)["loss"]
    target = batch["targets"]["emotion"]
    assert torch.allclose(loss, F.cross_entropy(logits, target, label_smoothing=0.1))
    assert not torch.allclose(loss, F.cross_entropy(logits, target))
