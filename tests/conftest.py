import os

import torch

# Two xdist workers on two cores: one intra-op thread each avoids oversubscription, and so do the training
# subprocesses tests start (they inherit OMP_NUM_THREADS); two spinning 2-thread trainings run 10x slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"

# Without a GPU, Triton kernels run on the CPU through Triton's interpreter; this must be set
# before triton is first imported. Kernel outputs are NaN-filled so an unwritten element fails.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("KERNELS_NAN_FILL", "1")


def pytest_collection_modifyitems(items):
    """Order for `make test`'s two workers (`--dist worksteal`): each worker takes half of this order, and an idle
    one steals from the end of the other's queue, but a busy worker keeps the test after the one it runs. So the
    longest test (marked `slow(first=True)`) comes first, and the other slow tests come last, where they can be
    stolen instead of waiting behind it."""

    def rank(item):
        slow = item.get_closest_marker("slow")
        return 1 if slow is None else 0 if slow.kwargs.get("first") else 2

    items.sort(key=rank)  # stable: the collection order within each rank
