"""Each balancing strategy against values computed by hand on two-task toy problems.

The toy of the gradient aggregators: shared parameters theta (2 values), features f = theta, task losses
L_a = h_a . f and L_b = h_b . f, so the task gradients on theta are the head vectors h_a = [1, 0] and
h_b = [-1, 1] (a conflict: h_a . h_b = -1, cosine -1/sqrt 2) and each head's gradient is f = [1, 1].
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from affectlab.errors import ConfigError
from affectlab.methods.balancing import (
    DynamicWeightAverage,
    FixedWeights,
    GradNorm,
    UncertaintyWeighting,
    create_balancing,
)

TASKS = ["a", "b"]
KINDS = {"a": "classification", "b": "regression"}


def bound(strategy, weights=None, shared_layer=None):
    strategy.bind(TASKS, KINDS, weights or {"a": 1.0, "b": 1.0}, shared_layer)
    return strategy


def test_fixed_weights_and_the_plain_sum():
    strategy = bound(create_balancing("fixed"), {"a": 2.0, "b": 0.5})
    losses = {"a": torch.tensor(3.0), "b": torch.tensor(4.0)}  # already times the static weights
    assert float(strategy.combine(losses)) == 7.0
    assert strategy.weights() == {"a": 2.0, "b": 0.5}
    assert isinstance(create_balancing("sum"), FixedWeights)
    with pytest.raises(ConfigError, match="model.init_args.balancing: unknown balancing 'gradnrom'"):
        create_balancing("gradnrom")


@pytest.mark.parametrize("form, factor_a", [("uniform", 0.5), ("paper", 1.0)])
def test_uncertainty_weighting(form, factor_a):
    strategy = bound(UncertaintyWeighting(form=form))
    with torch.no_grad():
        strategy.log_variance.copy_(torch.tensor([0.5, -0.2]))
    la, lb = torch.tensor(2.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    total = strategy.combine({"a": la, "b": lb})
    # sum_k c_k L_k e^{-s_k} + s_k / 2; c = 1/2 for regression, and for classification in the uniform form
    expected = factor_a * 2.0 * math.exp(-0.5) + 0.25 + 0.5 * 3.0 * math.exp(0.2) - 0.1
    assert float(total) == pytest.approx(expected, rel=1e-6)
    total.backward()
    # d/ds_k = -c_k L_k e^{-s_k} + 1/2; d/dL_k = c_k e^{-s_k}
    assert strategy.log_variance.grad.tolist() == pytest.approx(
        [-factor_a * 2.0 * math.exp(-0.5) + 0.5, -0.5 * 3.0 * math.exp(0.2) + 0.5], rel=1e-6)
    assert float(la.grad) == pytest.approx(factor_a * math.exp(-0.5), rel=1e-6)
    assert strategy.weights()["b"] == pytest.approx(0.5 * math.exp(0.2), rel=1e-6)


def test_dynamic_weight_average():
    strategy = bound(DynamicWeightAverage(temperature=2.0))
    losses = {"a": torch.tensor(1.0), "b": torch.tensor(1.0)}
    assert strategy.weights() == {"a": 1.0, "b": 1.0}  # epoch 1
    strategy.epoch_end({"a": 1.0, "b": 2.0})
    assert strategy.weights() == {"a": 1.0, "b": 1.0}  # epoch 2: one epoch seen, no ratio yet
    strategy.epoch_end({"a": 0.5, "b": 2.0})  # w = [0.5, 1]: task a falls twice as fast
    ea, eb = math.exp(0.5 / 2), math.exp(1.0 / 2)
    expected = {"a": 2 * ea / (ea + eb), "b": 2 * eb / (ea + eb)}  # K softmax(w / T)
    assert strategy.weights() == pytest.approx(expected)
    assert float(strategy.combine(losses)) == pytest.approx(2.0)  # the weights sum to K
    strategy.epoch_end({"a": 0.5, "b": 1.0})  # only the last two epochs count: w = [1, 0.5]
    assert strategy.weights()["a"] == pytest.approx(expected["b"])
    state = strategy.get_extra_state()
    again = bound(DynamicWeightAverage())
    again.set_extra_state(state)
    assert again.weights() == strategy.weights()


def test_gradnorm_on_a_two_parameter_linear_layer():
    """W = [w1, w2] (a Linear(2, 1) without bias), x = [1, 2], z = W x; L_a = (z - 1)^2, L_b = 3 z."""
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 1.0]]))  # z = 3
    strategy = bound(GradNorm(alpha=1.0), shared_layer=layer)
    x = torch.tensor([[1.0, 2.0]])

    def losses():
        z = layer(x).squeeze()
        return {"a": (z - 1) ** 2, "b": 3 * z}

    # step 1: L(0) = L, so r = 1 and the target is mean(G). grad_W L_a = 2 (z - 1) x = [4, 8], grad_W L_b = 3 x
    ga, gb = math.hypot(4, 8), math.hypot(3, 6)
    total = strategy.combine(losses())
    total.backward()
    # L_grad = |G_a - Gbar| + |G_b - Gbar| with G_k = w_k g_k: d/dw_a = g_a (G_a above the mean), d/dw_b = -g_b
    assert strategy.loss_weight.grad.tolist() == pytest.approx([ga, -gb], rel=1e-5)
    # the network descends sum_k w_k L_k (w = 1): grad_W = [4, 8] + [3, 6]
    assert layer.weight.grad.flatten().tolist() == pytest.approx([7.0, 14.0], rel=1e-6)
    assert strategy.statistics()["gradnorm_loss"] == pytest.approx(ga - gb, rel=1e-5)  # |ga - m| + |gb - m|

    # step 2 with weights moved and losses changed: L~ = L / L(0), r = L~ / mean(L~), target mean(G) r^alpha
    with torch.no_grad():
        strategy.loss_weight.copy_(torch.tensor([0.5, 1.5]))
        layer.weight.copy_(torch.tensor([[1.0, 0.5]]))  # z = 2: L_a = 1 (was 4), L_b = 6 (was 9)
    layer.weight.grad = None
    strategy.loss_weight.grad = None
    strategy.combine(losses()).backward()
    ga, gb = math.hypot(2, 4), math.hypot(3, 6)  # 2 (z - 1) x and 3 x
    Ga, Gb = 0.5 * ga, 1.5 * gb
    ra, rb = 1 / 4, 6 / 9
    mean = (ra + rb) / 2
    ta, tb = (Ga + Gb) / 2 * (ra / mean), (Ga + Gb) / 2 * (rb / mean)
    expected = [math.copysign(ga, Ga - ta), math.copysign(gb, Gb - tb)]
    assert strategy.loss_weight.grad.tolist() == pytest.approx(expected, rel=1e-5)
    assert layer.weight.grad.flatten().tolist() == pytest.approx([0.5 * 2 + 1.5 * 3, 0.5 * 4 + 1.5 * 6], rel=1e-6)

    with torch.no_grad():
        strategy.loss_weight.copy_(torch.tensor([0.2, 0.6]))
    strategy.after_step()  # renormalised to sum K = 2
    assert strategy.weights() == pytest.approx({"a": 0.5, "b": 1.5})


def aggregate(name: str, active=None):
    strategy = bound(create_balancing(name))
    theta = nn.Parameter(torch.tensor([1.0, 1.0]))
    heads = {"a": nn.Parameter(torch.tensor([1.0, 0.0])), "b": nn.Parameter(torch.tensor([-1.0, 1.0]))}
    features = theta * 1.0
    losses = {task: (head * features).sum() for task, head in heads.items()}
    strategy.backward(losses, features, [theta], {task: [head] for task, head in heads.items()}, active)
    return strategy, theta.grad, {task: head.grad for task, head in heads.items()}


@pytest.mark.parametrize("name, update, weights", [
    # PCGrad (Yu et al. 2020, Algorithm 1): h_a - (h_a.h_b)/|h_b|^2 h_b = [0.5, 0.5]; h_b - (h_b.h_a)/|h_a|^2 h_a
    # = [0, 1]; summed: [0.5, 1.5] = 2 h_a + 1.5 h_b
    ("pcgrad", [0.5, 1.5], [2.0, 1.5]),
    # UPGrad: each row projected onto the dual cone of both (here the same two projections), then averaged
    ("upgrad", [0.25, 0.75], [1.0, 0.75]),
    # CAGrad, c = 0.5: g0 = [0, 0.5], phi = c^2 |g0|^2; min over the simplex of g_w.g0 + sqrt(phi) |g_w| is at
    # w = [1, 0] (g_w = h_a); d = g0 + sqrt(phi) / |g_w| g_w = [0.25, 0.5]. torchjd returns d itself (the
    # original code's rescale option would divide it by 1 + c^2).
    ("cagrad", [0.25, 0.5], [0.75, 0.5]),
])
def test_gradient_aggregation_through_torchjd(name, update, weights):
    strategy, shared, heads = aggregate(name)
    assert shared.tolist() == pytest.approx(update, abs=1e-3)
    assert [strategy.weights()[t] for t in TASKS] == pytest.approx(weights, abs=1e-3)
    for grad in heads.values():  # each head gets its own task's gradient, unaggregated
        assert grad.tolist() == [1.0, 1.0]
    stats = strategy.statistics()
    assert stats["grad_cosine"] == pytest.approx(-1 / math.sqrt(2))
    assert stats["grad_norm_a"] == pytest.approx(1.0) and stats["grad_norm_b"] == pytest.approx(math.sqrt(2))


@pytest.mark.parametrize("name", ["upgrad", "pcgrad", "cagrad"])
def test_a_task_without_labels_in_the_batch_is_left_out_of_the_aggregation(name):
    """Its zero row would still move the weights (CAGrad's optimum puts all weight on it: no update at all)."""
    strategy, shared, heads = aggregate(name, active=["b"])
    assert shared.tolist() == [-1.0, 1.0] and heads["a"] is None  # task b's own gradient, h_b
    assert strategy.weights() == {"b": 1.0}
