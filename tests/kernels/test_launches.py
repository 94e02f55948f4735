"""How many kernels one call launches: small problems must not pay for many launches.

Every Triton launch and every PyTorch operation that computes (views and allocations are free) counts as one
launch. The budgets are what each design needs; a change that adds launches (a Python loop over landmarks or
iterations, an extra pass) fails here before it shows on a GPU. Only countable where the kernels run through
the interpreter: there both kinds of launch are Python calls.
"""

import pytest
import torch
import triton.runtime.interpreter as interpreter
from torch.utils._python_dispatch import TorchDispatchMode

import kernels
from kernels.registry import KIND_TABLE

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="launches are counted through the interpreter")

FREE = {"empty", "empty_strided", "view", "_unsafe_view", "transpose", "t", "expand", "slice", "select", "detach"}
FREE |= {"alias", "as_strided", "unsqueeze", "squeeze", "reshape", "permute", "unflatten", "split", "lift_fresh"}
FREE |= {"empty_like", "new_empty", "set_", "_to_copy", "clone", "contiguous"}
FREE |= {"fill_"}  # the tests NaN-fill every fresh output (KERNELS_NAN_FILL=1); nothing else fills

# (forward, forward + backward) launches of the fused path
BUDGETS = {
    ("softmax", False): (1, 4),  # one flash kernel; dK/dV, dQ and the softmax's row dot
    ("sigmoid", False): (1, 3),
    ("local", False): (1, 4),
    ("nala", False): (3, 6),  # state pass, split sum, apply pass; the same three backwards
    ("mala", False): (3, 6),
    ("norm", False): (3, 6),
    ("norm", True): (8, 15),  # φ in PyTorch, the scan (2), the RMSNorm kernel; their backwards
    ("lightning", True): (2, 6),  # state pass and output pass; one more state pass and three outputs
    ("lightning", False): (3, 8),
    ("soft", False): (20, 69),  # landmarks, G(L,L) and its norms, fused Newton–Schulz, Gaussian kernels; autograd
}


class _Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.launches = []
        self.inside_kernel = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not self.inside_kernel and name not in FREE:
            self.launches.append(name)
        return func(*args, **(kwargs or {}))


def _counted(fn):
    counter = _Count()
    original = interpreter.InterpretedFunction.run

    def run(self, *args, **kwargs):
        counter.launches.append(self.fn.__name__)
        counter.inside_kernel = True  # the interpreter's own tensor traffic is not a launch
        try:
            return original(self, *args, **kwargs)
        finally:
            counter.inside_kernel = False

    interpreter.InterpretedFunction.run = run
    try:
        with counter:
            result = fn()
    finally:
        interpreter.InterpretedFunction.run = original
    return result, counter.launches


@pytest.mark.parametrize("kind,causal", list(BUDGETS), ids=str)
def test_one_call_launches_few_kernels(kind, causal):
    assert KIND_TABLE[kind].causal or not causal
    q, k, v = (torch.randn(1, 2, 100, 16, requires_grad=True) for _ in range(3))
    out, forward = _counted(lambda: kernels.attention(q, k, v, kind, causal=causal, backend="triton"))
    grad = torch.randn(out.shape)
    _, backward = _counted(lambda: out.backward(grad))
    fwd_budget, total_budget = BUDGETS[kind, causal]
    assert len(forward) <= fwd_budget, forward
    assert len(forward) + len(backward) <= total_budget, (forward, backward)


def test_every_fused_form_has_a_budget():
    forms = {
        (kind, causal)
        for kind, spec in KIND_TABLE.items()
        if spec.triton
        for causal in (False, True)[: 1 + spec.causal]
    }
    assert forms - set(BUDGETS) <= {("softmax", True), ("sigmoid", True), ("local", True)}  # same kernels as non-causal
