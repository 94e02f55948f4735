"""Attention operators shared by every model: one API, a plain-PyTorch reference per kind.

kernels.attention(q, k, v, kind, *, causal=False, scale=None, backend="auto", **options)
kernels.KINDS
Helpers that layers built on the operators need: apply_rope (rotate feature pairs, the convention the
`rope` option uses) and alibi_slopes (Lightning attention's default per-head decay rates).
"""

from .api import BACKENDS, KINDS, Plan, attention, explain
from .ops.lightning.reference import alibi_slopes
from .ops.shared import apply_rope

__all__ = ["BACKENDS", "KINDS", "Plan", "alibi_slopes", "apply_rope", "attention", "explain"]
