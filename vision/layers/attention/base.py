"""KernelAttention: what every attention layer shares (qkv projection, 2-D RoPE, kernels.attention, projection).

A kind's layer is a subclass that overrides the hooks it needs: `heads` (how q, k, v come from x),
`kernel_options` (tensors the kernel takes), `add_to_heads` (terms added per head, SOFT's DWConv(V)) and
`finish` (gates, LePE, norms on the merged output). The constructor takes timm's Attention arguments first,
so timm's `VisionTransformer(attn_layer=...)` builds any of them.

Only layers that read token positions need to know the grid (`needs_grid`: 2-D RoPE, or a class that sets
`uses_grid`, as LePE and SOFT's pooling do); the others take any number of tokens and their hooks get
`layout=None`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

import kernels

from ..rope import rope_tables
from ..tokens import TokenLayout, infer_layout


class KernelAttention(nn.Module):
    """Multi-head attention through kernels.attention; `kind` names the kernel, subclasses add the paper's extras."""

    kind: ClassVar[str] = ""
    qkv_parts: ClassVar[int] = 3  # q, k and v from one Linear (SOFT: 2, its K is Q)
    rope_in_kernel: ClassVar[bool] = False  # nala, mala: RoPE inside the kernel's numerator, not on q and k
    has_weights_to_drop: ClassVar[bool] = False  # only softmax materialises attention weights (attn_drop)
    finish_in_place: ClassVar[bool] = False  # `finish` writes into o: merging the heads must give a fresh tensor
    uses_grid: ClassVar[bool] = False  # the hooks read the token layout even without RoPE (LePE, SOFT's pooling)

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        qk_norm: bool = False,
        scale_norm: bool = False,
        proj_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_layer: type[nn.Module] | None = None,
        *,
        rope: bool = False,
        num_prefix_tokens: int = 0,
        grid_size: tuple[int, int] | None = None,
        attn_options: dict[str, Any] | None = None,
        backend: str = "auto",
        device=None,
        dtype=None,
    ):
        super().__init__()
        if not self.kind:
            raise TypeError(
                "KernelAttention is the layers' shared base; build a kind's layer: vision.create_attention(kind, dim, "
                "num_heads, ...) or vision.ATTN_LAYERS[kind](dim, num_heads, ...)"
            )
        if dim % num_heads:
            raise ValueError(f"dim: {dim} is not divisible by num_heads={num_heads}")
        if attn_drop and not self.has_weights_to_drop:
            raise ValueError(
                f"attn_drop: only softmax attention has weights to drop, got {attn_drop} for {self.kind!r}"
            )
        if (qk_norm or scale_norm) and norm_layer is None:
            raise ValueError("norm_layer: needed when qk_norm or scale_norm is set")
        dd = {"device": device, "dtype": dtype}
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.use_rope = rope
        self.num_prefix_tokens = num_prefix_tokens
        self.options = dict(attn_options or {})
        self.backend = backend
        self.layout: TokenLayout | None = None  # set by callers whose tokens are a masked subset (MAE)
        self.default_hw: tuple[int, int] | None = tuple(grid_size) if grid_size else None  # the model's grid

        self.qkv = nn.Linear(dim, dim * self.qkv_parts, bias=qkv_bias, **dd)
        self.q_norm = norm_layer(self.head_dim, **dd) if qk_norm else nn.Identity()
        self.k_norm = norm_layer(self.head_dim, **dd) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.norm = norm_layer(dim, **dd) if scale_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias, **dd)
        self.proj_drop = nn.Dropout(proj_drop)

    def extra_repr(self) -> str:
        return f"attn_kind={self.kind!r}, num_heads={self.num_heads}, rope={self.use_rope}"

    @property
    def needs_grid(self) -> bool:
        """Whether forward reads where the tokens sit (RoPE, LePE, SOFT's pooling); if not, any token count runs
        and `hw` / `layout` are ignored."""
        return self.use_rope or self.uses_grid

    def token_layout(
        self, num_tokens: int, hw: tuple[int, int] | None, layout: TokenLayout | None = None
    ) -> TokenLayout:
        """Where the tokens sit: the given layout (LaViT's forward), the caller's `self.layout` (MAE), the given
        grid, the model's grid, or a square."""
        layout = layout if layout is not None else self.layout
        if layout is None:
            grid = self.default_hw if hw is None else tuple(hw)
            if grid is not None and (hw is not None or self.num_prefix_tokens + grid[0] * grid[1] == num_tokens):
                layout = TokenLayout(grid, self.num_prefix_tokens)
            else:
                layout = infer_layout(num_tokens, self.num_prefix_tokens)
        if layout.prefix + layout.grid_tokens != num_tokens:
            raise ValueError(
                f"x: {num_tokens} tokens, but the layout has {layout.prefix} prefix + {layout.grid_tokens} grid tokens"
            )
        return layout

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        hw: tuple[int, int] | None = None,
        layout: TokenLayout | None = None,
    ) -> Tensor:
        """x [B, N, C]. Layers that need the grid (`needs_grid`) take it from `layout` (grid, prefix and, for a
        subset of the patches, their positions), else `self.layout`, else `hw` (the grid after the prefix tokens),
        else the model's grid if the token count fits it, else a square."""
        if attn_mask is not None or is_causal:
            raise ValueError("attn_mask, is_causal: image attention here is bidirectional and unmasked")
        B, N, C = x.shape
        layout = self.token_layout(N, hw, layout) if self.needs_grid else None
        q, k, v = self.heads(x)
        options = dict(self.options)
        if self.use_rope:
            sin, cos = rope_tables(layout, self.head_dim, q.device, q.dtype)
            if self.rope_in_kernel:
                options["rope"] = (sin, cos)
            else:
                q, k = kernels.apply_rope(q, sin, cos), kernels.apply_rope(k, sin, cos)
        options.update(self.kernel_options(q, k, v, layout))
        o = self.attend(q, k, v, options)
        o = self.add_to_heads(o, v, layout)
        o = self.norm(self.merge_heads(o))
        o = self.finish(o, x, v, layout)
        return self.proj_drop(self.proj(o))

    def merge_heads(self, o: Tensor) -> Tensor:
        """[B, H, N, D] -> [B, N, H·D]: a view where the memory already has that layout (SDPA's output, one head),
        else a copy; always a fresh tensor for layers whose `finish` writes into it."""
        B, H, N, D = o.shape
        o = o.transpose(1, 2)
        if self.finish_in_place and o.is_contiguous():
            return o.clone().view(B, N, H * D)
        return o.reshape(B, N, H * D)

    # Hooks: the defaults are plain multi-head attention. `layout` is None unless `needs_grid`.
    def heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v, each [B, H, N, head_dim], from tokens x [B, N, C] (q and k through q_norm, k_norm)."""
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        return self.q_norm(q), self.k_norm(k), v

    def kernel_options(self, q: Tensor, k: Tensor, v: Tensor, layout: TokenLayout | None) -> dict[str, Any]:
        """Options for kernels.attention computed per call (beyond the fixed `attn_options`)."""
        return {}

    def attend(self, q: Tensor, k: Tensor, v: Tensor, options: dict[str, Any]) -> Tensor:
        return kernels.attention(q, k, v, self.kind, backend=self.backend, **options)

    def add_to_heads(self, o: Tensor, v: Tensor, layout: TokenLayout | None) -> Tensor:
        """Terms added to the attention output per head, [B, H, N, head_dim]."""
        return o

    def finish(self, o: Tensor, x: Tensor, v: Tensor, layout: TokenLayout | None) -> Tensor:
        """Gates, position terms and norms on the merged output o [B, N, C], before the projection (o is the layer's
        own tensor, free to write into, when the class sets `finish_in_place`)."""
        return o
