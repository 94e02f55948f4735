"""Object metrics (nvs/metrics.py) against plain-Python loops over the pixels, on hand-made tensors."""

import math

import pytest
import torch

from nvs.metrics import depth_abs_rel, object_psnr, silhouette_iou


def _pixels(mask):
    return [(v, y, x) for v in range(mask.shape[0]) for y in range(mask.shape[1]) for x in range(mask.shape[2])]


def naive_object_psnr(pred, target, mask):
    errors = [
        (float(pred[v, c, y, x]) - float(target[v, c, y, x])) ** 2
        for v, y, x in _pixels(mask)
        if mask[v, y, x] > 0.5
        for c in range(pred.shape[1])
    ]
    return 10 * math.log10(1 / (sum(errors) / len(errors)))


def naive_iou(opacity, mask):
    both = either = 0
    for v, y, x in _pixels(mask):
        a, b = opacity[v, y, x] > 0.5, mask[v, y, x] > 0.5
        both += bool(a and b)
        either += bool(a or b)
    return both / either


def naive_abs_rel(pred, target, mask):
    terms = [
        abs(float(pred[v, y, x]) - float(target[v, y, x])) / float(target[v, y, x])
        for v, y, x in _pixels(mask)
        if mask[v, y, x] > 0.5 and target[v, y, x] > 0
    ]
    return sum(terms) / len(terms)


def test_object_psnr_sees_only_the_object():
    """Error 0.1 on the object's 4 pixels, 0.5 everywhere else: 20 dB exactly, whatever the background does."""
    target = torch.zeros(1, 3, 4, 4)
    mask = torch.zeros(1, 4, 4)
    mask[0, 1:3, 1:3] = 1
    pred = target + 0.5
    pred[0, :, 1:3, 1:3] = 0.1
    assert object_psnr(pred, target, mask).item() == pytest.approx(20.0, abs=1e-4)


def test_object_metrics_match_naive_loops_on_random_tensors():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 3, 5, 6, generator=g), torch.rand(3, 3, 5, 6, generator=g)
    mask = torch.rand(3, 5, 6, generator=g)  # coverage fractions: the object is where > 0.5
    opacity = torch.rand(3, 5, 6, generator=g)
    depth_true = torch.rand(3, 5, 6, generator=g) * 3 * (torch.rand(3, 5, 6, generator=g) > 0.2)  # some 0 = none
    depth_pred = torch.rand(3, 5, 6, generator=g) * 3
    assert object_psnr(pred, target, mask).item() == pytest.approx(naive_object_psnr(pred, target, mask), rel=1e-5)
    assert silhouette_iou(opacity, mask).item() == pytest.approx(naive_iou(opacity, mask), rel=1e-6)
    assert depth_abs_rel(depth_pred, depth_true, mask).item() == pytest.approx(
        naive_abs_rel(depth_pred, depth_true, mask), rel=1e-5
    )


def test_silhouette_iou_hand_worked():
    """Predicted 3 pixels, true 2, sharing 1: IoU 1/4; all-object prediction: |mask| / pixels."""
    opacity = torch.tensor([[[0.9, 0.6, 0.7, 0.1]]])
    mask = torch.tensor([[[1.0, 0.0, 0.0, 1.0]]])
    assert silhouette_iou(opacity, mask).item() == pytest.approx(0.25)
    assert silhouette_iou(torch.ones_like(mask), mask).item() == pytest.approx(0.5)
    assert silhouette_iou(torch.zeros_like(mask), mask).item() == 0.0
    assert silhouette_iou(torch.zeros_like(mask), torch.zeros_like(mask)).item() == 1.0  # nothing to find


def test_depth_abs_rel_hand_worked():
    """True depths 2 and 4 on the object (a third object pixel has no depth), predicted 3 and 3: (0.5 + 0.25) / 2."""
    target = torch.tensor([[2.0, 4.0, 0.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    pred = torch.tensor([[3.0, 3.0, 7.0, 0.0]])
    assert depth_abs_rel(pred, target, mask).item() == pytest.approx(0.375)


def test_empty_masks_give_nan_not_a_number_that_looks_real():
    empty = torch.zeros(1, 4, 4)
    assert math.isnan(object_psnr(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), empty).item())
    assert math.isnan(depth_abs_rel(torch.rand(1, 4, 4), torch.rand(1, 4, 4), empty).item())


@pytest.mark.parametrize(
    "call",
    [
        lambda: object_psnr(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), torch.ones(2, 4, 5)),
        lambda: silhouette_iou(torch.rand(2, 4, 4), torch.ones(4, 4)),
        lambda: depth_abs_rel(torch.rand(2, 4, 4), torch.rand(2, 4, 4), torch.ones(2, 3, 4)),
    ],
)
def test_a_mask_of_the_wrong_size_is_refused(call):
    with pytest.raises(ValueError, match="mask: expected shape"):
        call()


def test_images_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="pred, target"):
        object_psnr(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5), torch.ones(1, 4, 4))
