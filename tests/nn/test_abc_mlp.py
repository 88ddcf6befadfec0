"""abcMLP (seed 002): each layer computes ``x A n_in^-a + bias`` with ``A ~ N(0, 1) n_in^-b``, in the NTK and
muP settings, drawn from torch's generator in the original's order (weight then bias, layer by layer)."""

from __future__ import annotations

import pytest
import torch

from affectlab.nn.abc_mlp import MUP, NTK, AbcLayer, AbcMLPTrunk


def test_a_layer_is_x_a_times_n_in_to_the_minus_a_plus_bias():
    torch.manual_seed(0)
    layer = AbcLayer(16, 3, a=0.5, b=0.0)
    x = torch.randn(5, 16)
    torch.testing.assert_close(layer(x), x @ layer.A / 4.0 + layer.bias)  # 16^-0.5 = 1/4


def test_the_weights_are_drawn_as_the_original_draws_them():
    torch.manual_seed(77)
    trunk = AbcMLPTrunk(1, 7, width=32, depth=3, parametrisation="mup")
    torch.manual_seed(77)
    expected = []
    for n_in, n_out in ((1, 32), (32, 32), (32, 7)):
        expected += [torch.randn(n_in, n_out) * n_in ** -0.5, torch.randn(n_out)]  # A ~ N(0, 1) n_in^-b, b = 1/2
    for got, want in zip(trunk.parameters(), expected, strict=True):
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=0)


def test_ntk_and_mup_are_the_seed_s_exponents():
    assert NTK == {"a": [0, 0.5, 0.5, 0.5, 0.5, 0.5], "b": [0] * 6}
    assert MUP == {"a": [-0.5, 0, 0, 0, 0, 0.5], "b": [0.5] * 6}
    trunk = AbcMLPTrunk(1, 7, width=8, depth=6, parametrisation="ntk")
    assert [(layer.a, layer.b) for layer in trunk.layers] == [(0.0, 0.0)] + [(0.5, 0.0)] * 5
    assert [layer.multiplier for layer in trunk.layers] == [1.0] + [8 ** -0.5] * 4 + [8 ** -0.5]
    shallow = AbcMLPTrunk(1, 7, width=8, depth=3, parametrisation="mup")
    assert [layer.a for layer in shallow.layers] == [-0.5, 0.0, 0.5]


def test_the_trunk_reads_its_batch_key_and_declares_what_a_trunk_declares():
    trunk = AbcMLPTrunk(1, 7, width=16, depth=4)
    out = trunk({"x": torch.randn(10, 1)})
    assert out.shape == (10, 7) and trunk.out_dim == 7 and trunk.modalities == ["x"]
    assert trunk.last_shared_layer is trunk.layers[-1]
    out.sum().backward()
    assert all(p.grad is not None for p in trunk.parameters())


def test_bad_exponents_are_refused():
    with pytest.raises(ValueError, match="one exponent per layer"):
        AbcMLPTrunk(1, 7, width=8, depth=3, a=[0, 0.5], b=[0, 0, 0])
    with pytest.raises(ValueError, match="custom needs both a and b"):
        AbcMLPTrunk(parametrisation="custom", a=[0] * 6)
    with pytest.raises(ValueError, match="parametrisation must be one of"):
        AbcMLPTrunk(parametrisation="sp")
