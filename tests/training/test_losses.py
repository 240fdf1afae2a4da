"""Losses and learning-rate schedules on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import CenterLoss, CircleLoss, CrossEntropyLabelSmooth, ReidLoss, TripletLoss
from training.modeling import build_model
from training.solver import WarmupLR, build_optimizer

# 1-D features: ids 0 (at 0 and 1) and 1 (at 3 and 5).
X = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
Y = torch.tensor([0, 0, 1, 1])
# hardest positive / negative distance per anchor: (1, 3), (1, 2), (2, 2), (2, 4)


def test_batch_hard_triplet_by_hand():
    loss, frac = TripletLoss(margin=0.3)(X, Y)
    assert float(loss) == pytest.approx((0 + 0 + 0.3 + 0) / 4, abs=1e-5)
    assert float(frac) == 0.75  # anchor 2's negative is as close as its positive
    soft, _ = TripletLoss(margin=None)(X, Y)
    want = sum(math.log1p(math.exp(d)) for d in (-2, -1, 0, -2)) / 4
    assert float(soft) == pytest.approx(want, abs=1e-5)


def test_label_smoothing_by_hand():
    ce = CrossEntropyLabelSmooth(num_classes=4, epsilon=0.1)
    assert float(ce(torch.zeros(2, 4), torch.tensor([0, 3]))) == pytest.approx(math.log(4), abs=1e-6)
    lp0 = -math.log(1 + 3 * math.exp(-10))
    lp_other = lp0 - 10
    want = -(0.925 * lp0 + 3 * 0.025 * lp_other)
    assert float(ce(torch.tensor([[10.0, 0, 0, 0]]), torch.tensor([0]))) == pytest.approx(want, abs=1e-5)


def test_center_loss_by_hand():
    c = CenterLoss(num_classes=2, feat_dim=1)
    c.centers.data = torch.tensor([[0.5], [4.0]])
    assert c(X, Y).detach().item() == pytest.approx((0.25 + 0.25 + 1 + 1) / 4)


def test_circle_loss_by_hand_and_ordering():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    # anchors 0 and 1: s_p = 1, s_n = 0 -> a_p = a_n = 0.25, logits -4 and -4 -> softplus(-8);
    # anchor 2 has no positive and is left out.
    assert float(CircleLoss(0.25, 64)(x, y)) == pytest.approx(math.log1p(math.exp(-8)), rel=1e-4)
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    assert float(CircleLoss()(mixed, y)) > float(CircleLoss()(x, y)) + 1


def test_reid_loss_sums_weighted_parts():
    logits = torch.zeros(4, 2)
    crit = ReidLoss(2, 1, ce_weight=1.0, label_smooth=0.0, triplet_weight=2.0, center_weight=0.5,
                    circle_weight=0.0)
    crit.center.centers.data = torch.tensor([[0.5], [4.0]])
    total, parts = crit(logits, X, Y)
    assert parts["ce"] == pytest.approx(math.log(2), abs=1e-6) and parts["acc"] == 0.5
    assert total.detach().item() == pytest.approx(math.log(2) + 2 * 0.075 + 0.5 * 0.625, abs=1e-5)


def test_bot_warmup_multistep_and_cosine_schedules():
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, "adam", lr=1.0, bias_lr_factor=2.0)
    assert [g["lr"] for g in opt.param_groups] == [1.0, 2.0]  # weight, bias
    sched = WarmupLR(opt, "multistep", max_epochs=120, milestones=(40, 70), gamma=0.1, warmup_epochs=10,
                     warmup_factor=0.01)
    lrs = []
    for _ in range(80):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.01) and lrs[5] == pytest.approx(0.505) and lrs[10] == 1.0
    assert lrs[39] == 1.0 and lrs[40] == pytest.approx(0.1) and lrs[70] == pytest.approx(0.01)
    cos = WarmupLR(torch.optim.SGD(model.parameters(), lr=1.0), "cosine", max_epochs=20, warmup_epochs=0)
    assert [round(cos.factor(e), 6) for e in (0, 10, 20)] == [1.0, 0.5, 0.0]
    with pytest.raises(KeyError, match="valid schedules: multistep, cosine, constant"):
        WarmupLR(opt, "step")
    with pytest.raises(KeyError, match="valid optimizers: adam, amsgrad, sgd, adamw"):
        build_optimizer(model, "rmsprop")


def test_frozen_bnneck_bias_is_not_optimised():
    model = build_model("resnet50", num_classes=3)
    opt = build_optimizer(model)
    ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(model.bottleneck.bias) not in ids and id(model.bottleneck.weight) in ids
