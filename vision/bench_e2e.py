"""The end-to-end model benchmark (`python -m vision.bench --suite e2e`): our ViTs beside timm's at matched size.

timm's `vit_small_patch16_224` beside `lavit_small_patch16_224` with every attention kind, and the hierarchical
`nalaformer_t`, `mala_t`, `soft_tiny` beside timm's `deit_tiny_patch16_224`, at 224², 448² and 896² (batch 128 /
32 / 8): training images/s (one SGD step per iteration), inference images/s and the training step's peak memory,
with bf16 autocast on CUDA, eager and under torch.compile. Rows carry `attn_kind` "timm" for timm's own ViTs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F

import vision  # noqa: F401  (registers the models)
from kernels.bench import figure_png, median_ms
from kernels.memory import peak_memory

SIZES = ((224, 128), (448, 32), (896, 8))  # (resolution, batch)
LAVIT = "lavit_small_patch16_224"
TIMM_VITS = ("vit_small_patch16_224", "deit_tiny_patch16_224")
HIERARCHICAL = ("nalaformer_t", "mala_t", "soft_tiny")
MODELS = (TIMM_VITS[0], LAVIT, *HIERARCHICAL, TIMM_VITS[1])
ROPE_KINDS = ("nala", "mala")  # NaLaFormer and MALA use 2-D RoPE; the lavit configs turn it on for them
NUM_CLASSES = 1000


@dataclass
class Row:
    model: str
    attn_kind: str  # "timm" for timm's own ViT; the linear stages' kind(s) for the hierarchical presets
    res: int
    batch: int
    compiled: bool
    train_img_s: float | None
    infer_img_s: float | None
    peak_mem_gib: float | None  # the training step's peak (CUDA allocator; process RSS on the CPU)
    params_m: float
    error: str | None = None


def entries(models: list[str], kinds: list[str]) -> Iterator[tuple[str, str, dict]]:
    """(model, attn_kind, create_model kwargs) for every model of the suite that `models` keeps."""
    for name in MODELS:
        if name not in models:
            continue
        if name == LAVIT:
            for kind in kinds:
                yield name, kind, {"attn_kind": kind, "rope": kind in ROPE_KINDS}
        elif name in TIMM_VITS:
            yield name, "timm", {}
        else:
            yield name, "", {}


def create(name: str, kwargs: dict, res: int) -> torch.nn.Module:
    if name in HIERARCHICAL:  # any multiple of 32 works; there is no img_size
        return timm.create_model(name, num_classes=NUM_CLASSES, **kwargs)
    return timm.create_model(name, img_size=res, num_classes=NUM_CLASSES, **kwargs)


def measure(
    name: str, kind: str, kwargs: dict, res: int, batch: int, device: torch.device, compiled: bool, repeats: int
) -> Row:
    torch.manual_seed(0)
    model = create(name, kwargs, res).to(device)
    if not kind:  # the preset's stage kinds, e.g. "nala+softmax"
        kind = "+".join(dict.fromkeys(model.attn_kinds))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    row = Row(name, kind, res, batch, compiled, None, None, None, params)
    if compiled:
        torch.compiler.reset()  # a fresh cache per model: dynamo's recompile limit would fall back to eager
    run = torch.compile(model) if compiled else model
    images = torch.randn(batch, 3, res, res, device=device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def infer() -> None:
        with torch.inference_mode(), autocast:
            run(images)

    def train_step() -> None:
        with autocast:
            loss = F.cross_entropy(run(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    try:
        model.eval()
        row.infer_img_s = batch / median_ms(infer, device, 1, repeats) * 1e3
        model.train()
        train_step()  # warm-up (and compilation) outside the memory window
        with peak_memory(device) as peak:
            train_ms = median_ms(train_step, device, 0, repeats)
        row.train_img_s = batch / train_ms * 1e3
        row.peak_mem_gib = None if peak["mib"] is None else peak["mib"] / 1024
    except (RuntimeError, ValueError) as error:  # out of memory, or a kernel that cannot run this shape
        row.error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        print(f"  {name} {kind} {res}: {row.error}", file=sys.stderr)
    return row


def run_suite(
    device: torch.device,
    models: list[str],
    kinds: list[str],
    sizes: list[tuple[int, int]],
    compile_modes: list[bool],
    repeats: int,
) -> list[Row]:
    rows = []
    for res, batch in sizes:
        for name, kind, kwargs in entries(models, kinds):
            for compiled in compile_modes:
                row = measure(name, kind, kwargs, res, batch, device, compiled, repeats)
                if device.type == "cuda":
                    torch.cuda.empty_cache()  # the measured model is gone: give its memory back before the next
                rows.append(row)
                if row.error is None:
                    print(
                        f"  {name} {row.attn_kind} {res}² b{batch}{' compiled' if compiled else ''}: "
                        f"train {row.train_img_s:.1f} / infer {row.infer_img_s:.1f} img/s",
                        file=sys.stderr,
                    )
    return rows


def format_table(rows: list[Row]) -> str:
    header = (
        f"{'model':>24} {'attn_kind':>13} {'res':>5} {'batch':>5} {'compiled':>8} "
        f"{'train img/s':>12} {'infer img/s':>12} {'peak GiB':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        if r.error:
            numbers = f"{r.error[:40]:>35}"
        else:
            peak = "-" if r.peak_mem_gib is None else f"{r.peak_mem_gib:.2f}"
            numbers = f"{r.train_img_s:>12.1f} {r.infer_img_s:>12.1f} {peak:>9}"
        lines.append(f"{r.model:>24} {r.attn_kind:>13} {r.res:>5} {r.batch:>5} {str(r.compiled):>8} {numbers}")
    return "\n".join(lines)


def plot(rows: list[Row], title: str) -> bytes:
    """Training and inference images/s per resolution: eager bars, compiled bars hatched beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({(r.res, r.batch) for r in rows})
    fig, axes = plt.subplots(len(sizes), 2, figsize=(16, 3 + 3.5 * len(sizes)), squeeze=False)
    for row_axes, (res, batch) in zip(axes, sizes, strict=True):
        subset = [r for r in rows if r.res == res]
        labels = list(dict.fromkeys((r.model, r.attn_kind) for r in subset))
        for ax, field, name in zip(
            row_axes, ("train_img_s", "infer_img_s"), ("training step", "inference"), strict=True
        ):
            for offset, compiled in ((-0.2, False), (0.2, True)):
                values = {(r.model, r.attn_kind): getattr(r, field) or 0.0 for r in subset if r.compiled == compiled}
                if values:
                    ax.bar(
                        [i + offset for i in range(len(labels))],
                        [values.get(label, 0.0) for label in labels],
                        width=0.4,
                        color="tab:orange" if compiled else "tab:blue",
                        hatch="//" if compiled else None,
                        label="torch.compile" if compiled else "eager",
                    )
            ticks = [f"{m.replace('_patch16_224', '')}\n{k}" for m, k in labels]
            ax.set_xticks(range(len(labels)), ticks, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel("images / s")
            ax.set_title(f"{name}, {res}², batch {batch}")
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)
