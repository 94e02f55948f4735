"""Attention operators shared by every model: one API, a plain-PyTorch reference per kind.

kernels.attention(q, k, v, kind, *, causal=False, scale=None, backend="auto", **options)
kernels.KINDS
"""

from .api import BACKENDS, KINDS, Plan, attention, explain

__all__ = ["BACKENDS", "KINDS", "Plan", "attention", "explain"]
