import math

import pytest
import torch

from common.schedules import warmup_cosine, warmup_cosine_factor


def test_factor_warms_up_linearly_then_decays_to_the_floor():
    assert warmup_cosine_factor(0, 4, 20, 0.1) == pytest.approx(0.25)
    assert warmup_cosine_factor(3, 4, 20, 0.1) == pytest.approx(1.0)
    assert warmup_cosine_factor(12, 4, 20, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert warmup_cosine_factor(20, 4, 20, 0.1) == pytest.approx(0.1)
    assert warmup_cosine_factor(99, 4, 20, 0.1) == pytest.approx(0.1)


def test_one_floor_per_group_ends_each_group_at_its_own_ratio():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}])
    scheduler = warmup_cosine(optimizer, 2, 10, [0.01, 0.1])
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01, 0.01])
    with pytest.raises(ValueError, match="one per parameter group"):
        warmup_cosine(optimizer, 2, 10, [0.1])
