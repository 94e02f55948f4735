"""Comparing outputs with the ones saved before a change (issue 19: behaviour unchanged)."""

from __future__ import annotations

import numpy as np

TOLERANCE = 1e-5  # max abs difference allowed


def assert_matches_saved(got: dict[str, np.ndarray], saved) -> None:
    """Every array in `got` has its saved counterpart's shape and lies within TOLERANCE of it everywhere."""
    for name, value in got.items():
        assert value.shape == saved[name].shape, f"{name}: shape {value.shape}, saved {saved[name].shape}"
        diff = float(np.abs(value - saved[name]).max())
        assert diff <= TOLERANCE, f"{name}: max abs diff {diff}"
