"""CORE-ReID losses against naive float64 loops, and the stage sums."""

import math

import pytest
import torch

from reid.losses import CrossEntropyLabelSmooth, SoftTripletLoss, stage1_loss, stage2_loss


def naive_ce(logits, targets, epsilon):
    total = 0.0
    for row, t in zip(logits.tolist(), targets.tolist(), strict=True):
        k = len(row)
        log_z = math.log(sum(math.exp(v) for v in row))
        for j, v in enumerate(row):
            q = (1 - epsilon) * (j == t) + epsilon / k
            total -= q * (v - log_z)
    return total / len(logits)


def naive_triplet(features, labels, margin):
    x, y = features.tolist(), labels.tolist()
    losses = []
    for i in range(len(x)):
        dist = [math.sqrt(sum((a - b) ** 2 for a, b in zip(x[i], x[j], strict=True))) for j in range(len(x))]
        positives = [dist[j] for j in range(len(x)) if y[j] == y[i]]
        negatives = [dist[j] for j in range(len(x)) if y[j] != y[i]]
        if not negatives:
            continue
        gap = max(positives) - min(negatives)
        losses.append(math.log1p(math.exp(gap)) if margin is None else max(0.0, gap + margin))
    return sum(losses) / len(losses) if losses else 0.0


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_cross_entropy_label_smooth(epsilon):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 5, generator=g, dtype=torch.float64) * 3
    targets = torch.randint(5, (7,), generator=g)
    got = CrossEntropyLabelSmooth(epsilon)(logits, targets)
    assert got.item() == pytest.approx(naive_ce(logits, targets, epsilon), rel=1e-6)


def test_cross_entropy_rejects_bad_shapes_and_epsilon():
    with pytest.raises(ValueError, match="targets"):
        CrossEntropyLabelSmooth()(torch.randn(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="epsilon"):
        CrossEntropyLabelSmooth(1.0)


# Labels with P x K groups, a singleton (its only positive is itself) and, in the last case, no negatives.
LABELS = [[0, 0, 1, 1, 2, 2, 3], [5, 5, 5, 2, 2, 9, 9, 9], [1, 1, 1]]


@pytest.mark.parametrize("margin", [None, 0.3])
@pytest.mark.parametrize("labels", LABELS)
def test_soft_triplet_matches_loop(margin, labels):
    g = torch.Generator().manual_seed(len(labels))
    features = torch.randn(len(labels), 6, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor(labels)
    loss = SoftTripletLoss(margin)(features, labels)
    assert loss.item() == pytest.approx(naive_triplet(features.detach(), labels, margin), rel=1e-5, abs=1e-7)
    loss.backward()
    assert torch.isfinite(features.grad).all()


def test_soft_margin_is_mmt_log_softmax_form():
    """MMT's SoftTripletLoss(margin=0): -log softmax([d_ap, d_an])[1] on the batch-hard pair."""
    g = torch.Generator().manual_seed(1)
    features, labels = torch.randn(8, 4, generator=g), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    dist = torch.cdist(features, features)
    same = labels[:, None] == labels[None]
    d_ap = torch.where(same, dist, torch.zeros(())).amax(1)
    d_an = torch.where(same, torch.full((), 1e9), dist).amin(1)
    expected = -torch.log_softmax(torch.stack([d_ap, d_an], 1), 1)[:, 1].mean()
    assert SoftTripletLoss()(features, labels).item() == pytest.approx(expected.item(), rel=1e-5)


def test_normalize_feature_is_scale_free():
    g = torch.Generator().manual_seed(2)
    features, labels = torch.randn(6, 5, generator=g), torch.tensor([0, 0, 1, 1, 2, 2])
    loss = SoftTripletLoss(normalize_feature=True)
    assert loss(features, labels).item() == pytest.approx(loss(features * 7, labels).item(), rel=1e-5)


def test_duplicate_features_have_finite_gradients():
    features = torch.ones(4, 3, requires_grad=True)
    SoftTripletLoss()(features, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(features.grad).all()


def _out(g, n=8, c=6, k=4):
    return {
        name: torch.randn(n, dim, generator=g, requires_grad=True)
        for name, dim in (("global", c), ("global_bn", c), ("upper", c), ("lower", c), ("logits", k))
    }


def test_stage1_sum():
    g = torch.Generator().manual_seed(3)
    out, labels = _out(g), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    losses = stage1_loss(out, labels)
    ce = CrossEntropyLabelSmooth(0.1)(out["logits"], labels)
    tri = SoftTripletLoss()(out["global"], labels)
    assert losses["loss"].item() == pytest.approx((ce + tri).item(), rel=1e-6)


def test_stage2_sum_with_one_batch_and_with_three():
    g = torch.Generator().manual_seed(4)
    out, up, low = _out(g), _out(g), _out(g)
    y, y_up, y_low = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), torch.tensor([0, 1] * 4), torch.tensor([3, 3, 2, 2] * 2)
    tri = SoftTripletLoss()
    ce = CrossEntropyLabelSmooth(0.1)(out["logits"], y)

    one = stage2_loss(out, y, labels_upper=y_up, labels_lower=y_low)
    expected = ce + tri(out["global"], y) + 0.5 * tri(out["upper"], y_up) + 0.5 * tri(out["lower"], y_low)
    assert one["loss"].item() == pytest.approx(expected.item(), rel=1e-6)

    three = stage2_loss(out, y, up, y_up, low, y_low)
    expected = ce + tri(out["global"], y) + 0.5 * tri(up["upper"], y_up) + 0.5 * tri(low["lower"], y_low)
    assert three["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="labels_upper"):
        stage2_loss(out, y)
