"""One attention layer for every kind: kernels.attention wrapped in the projections, gates and position
terms each paper uses, chosen by `attn_kind`.

- softmax, sigmoid: timm's Attention exactly (qkv, q_norm, k_norm, norm, proj), so timm checkpoints load.
- nala (NaLaFormer): q, k, v and a gate g; 5×5 depth-wise LePE on V; LayerNorm(o + lepe)·SiLU(g).
- mala (MALA): q, k, v and an output gate o; LePE; (o_attn + lepe)·o.
- norm (TransNormer): NormAttention (RMSNorm inside the kernel); `local` (DiagAttention) in early layers.
- lightning (TransNormerLLM): SiLU on q, k, v; two-sided decay over the token sequence; LayerNorm, then a
  sigmoid output gate.
- soft (SOFT): K = Q scaled by D^-1/4; landmarks pooled from Q by a strided conv + LayerNorm + GELU;
  plus a per-head depth-wise conv of V.
Optional 2-D RoPE: inside the kernel's numerator for nala and mala, on q and k for the other kinds.
The q, k, v projection is one `qkv` Linear for every kind (two thirds of it for SOFT, where K = Q), so a
softmax checkpoint loads into any kind; the extra parameters keep their initialisation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import kernels
from kernels.ops.lightning.reference import alibi_slopes
from kernels.ops.shared import apply_rope

from .rope import rope_2d
from .tokens import TokenLayout, grid_to_tokens, infer_layout, tokens_to_grid

ATTN_KINDS = kernels.KINDS
GATED = ("nala", "mala", "lightning")


class KernelAttention(nn.Module):
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
        attn_kind: str = "softmax",
        rope: bool = False,
        num_prefix_tokens: int = 0,
        landmark_ratio: int = 1,
        v_conv_size: int = 3,
        decay_scale: float = 1.0,
        attn_options: dict[str, Any] | None = None,
        backend: str = "auto",
        device=None,
        dtype=None,
    ):
        super().__init__()
        if attn_kind not in ATTN_KINDS:
            raise ValueError(f"attn_kind: expected one of {ATTN_KINDS}, got {attn_kind!r}")
        if dim % num_heads:
            raise ValueError(f"dim: {dim} is not divisible by num_heads={num_heads}")
        if attn_drop and attn_kind != "softmax":
            raise ValueError(
                f"attn_drop: only softmax attention has weights to drop, got {attn_drop} for {attn_kind!r}"
            )
        if (qk_norm or scale_norm) and norm_layer is None:
            raise ValueError("norm_layer: needed when qk_norm or scale_norm is set")
        dd = {"device": device, "dtype": dtype}
        self.kind = attn_kind
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.use_rope = rope
        self.num_prefix_tokens = num_prefix_tokens
        self.options = dict(attn_options or {})
        self.backend = backend
        self.layout: TokenLayout | None = None  # set by callers whose tokens are a masked subset (MAE)
        self.default_hw: tuple[int, int] | None = None  # the model's patch grid, when it is not square

        self.qkv = nn.Linear(dim, dim * (2 if attn_kind == "soft" else 3), bias=qkv_bias, **dd)
        self.q_norm = norm_layer(self.head_dim, **dd) if qk_norm else nn.Identity()
        self.k_norm = norm_layer(self.head_dim, **dd) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.norm = norm_layer(dim, **dd) if scale_norm else nn.Identity()
        if attn_kind in GATED:
            self.gate = nn.Linear(dim, dim, bias=qkv_bias, **dd)
        if attn_kind in ("nala", "mala"):
            self.lepe = nn.Conv2d(dim, dim, 5, padding=2, groups=dim, **dd)
        if attn_kind in ("nala", "lightning"):
            self.out_norm = nn.LayerNorm(dim, **dd)
        if attn_kind == "lightning":  # ALiBi decay rates, scaled down in deeper layers as in TransNormerLLM
            slopes = torch.tensor(alibi_slopes(num_heads), dtype=torch.float32) * decay_scale
            self.register_buffer("slopes", slopes, persistent=False)
        if attn_kind == "soft":
            self.landmark_ratio = landmark_ratio
            self.landmark_conv = nn.Conv2d(
                self.head_dim, self.head_dim, landmark_ratio, stride=landmark_ratio, bias=False, **dd
            )
            self.landmark_norm = nn.LayerNorm(self.head_dim, **dd)
            self.v_conv = nn.Conv2d(
                num_heads, num_heads, v_conv_size, padding=v_conv_size // 2, groups=num_heads, bias=False, **dd
            )
        self.proj = nn.Linear(dim, dim, bias=proj_bias, **dd)
        self.proj_drop = nn.Dropout(proj_drop)

    def extra_repr(self) -> str:
        return f"attn_kind={self.kind!r}, num_heads={self.num_heads}, rope={self.use_rope}"

    def adapt_state_dict(self, state: dict, prefix: str) -> None:
        """SOFT keeps only the q and v thirds of a softmax checkpoint's qkv (its K is Q)."""
        if self.kind != "soft":
            return
        for name in ("qkv.weight", "qkv.bias"):
            value = state.get(prefix + name)
            if value is not None and value.shape[0] == 3 * self.proj.in_features:
                q, _, v = value.chunk(3, dim=0)
                state[prefix + name] = torch.cat([q, v], dim=0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.adapt_state_dict(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(
        self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False, hw: tuple[int, int] | None = None
    ) -> Tensor:
        if attn_mask is not None or is_causal:
            raise ValueError("attn_mask, is_causal: image attention here is bidirectional and unmasked")
        B, N, C = x.shape
        if self.layout is not None:
            layout = self.layout
        elif hw is not None:
            layout = TokenLayout(tuple(hw), self.num_prefix_tokens)
        elif self.default_hw is not None and self.num_prefix_tokens + self.default_hw[0] * self.default_hw[1] == N:
            layout = TokenLayout(tuple(self.default_hw), self.num_prefix_tokens)
        else:
            layout = infer_layout(N, self.num_prefix_tokens)
        if layout.prefix + layout.grid_tokens != N:
            raise ValueError(
                f"x: {N} tokens, but the layout has {layout.prefix} prefix + {layout.grid_tokens} grid tokens"
            )

        heads = self.qkv(x).reshape(B, N, -1, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.kind == "soft":
            q, v = heads.unbind(0)
            q = q * self.head_dim**-0.25
            k = q
        else:
            q, k, v = heads.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.kind == "lightning":
            q, k, v = F.silu(q), F.silu(k), F.silu(v)

        options = dict(self.options)
        if self.use_rope:
            sin, cos = rope_2d(layout, self.head_dim, x.device)
            sin, cos = sin.to(q.dtype), cos.to(q.dtype)
            if self.kind in ("nala", "mala"):
                options["rope"] = (sin, cos)
            else:
                q, k = apply_rope(q, sin, cos), apply_rope(k, sin, cos)
        if self.kind == "soft":
            options["landmarks"] = self._landmarks(q, layout)
        if self.kind == "lightning":
            options.setdefault("slopes", self.slopes)

        if self.kind == "softmax" and self.training and self.attn_drop.p > 0:
            o = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p)
        else:
            o = kernels.attention(q, k, v, self.kind, backend=self.backend, **options)
        if self.kind == "soft":
            o = o + self._v_conv(v, layout)
        o = o.transpose(1, 2).reshape(B, N, C)
        o = self.norm(o)

        if self.kind in ("nala", "mala"):
            o = o + self._lepe(v, layout)
        if self.kind == "nala":
            o = self.out_norm(o) * F.silu(self.gate(x))
        elif self.kind == "mala":
            o = o * self.gate(x)
        elif self.kind == "lightning":
            o = self.out_norm(o) * torch.sigmoid(self.gate(x))
        return self.proj_drop(self.proj(o))

    def _lepe(self, v: Tensor, layout: TokenLayout) -> Tensor:
        """5×5 depth-wise conv of V over the grid; prefix tokens get none."""
        B, _, N, _ = v.shape
        v_tokens = v.transpose(1, 2).reshape(B, N, -1)[:, layout.prefix :]
        lepe = grid_to_tokens(self.lepe(tokens_to_grid(v_tokens, layout)), layout)
        return F.pad(lepe, (0, 0, layout.prefix, 0))

    def _landmarks(self, q: Tensor, layout: TokenLayout) -> Tensor:
        """SOFT's landmarks: per head, a strided conv over the grid of (scaled) queries, LayerNorm, GELU."""
        B, H, N, D = q.shape
        per_head = layout.repeated(H)
        grid = tokens_to_grid(q[:, :, layout.prefix :].reshape(B * H, -1, D), per_head)  # [B·H, D, h, w]
        h, w = layout.hw
        ratio = min(self.landmark_ratio, h, w)
        weight = self.landmark_conv.weight
        if ratio != self.landmark_ratio:  # grid smaller than the pooling window: average the kernel down
            weight = F.adaptive_avg_pool2d(weight, ratio) * (self.landmark_ratio / ratio) ** 2
        pooled = F.conv2d(grid, weight, stride=ratio)  # [B·H, D, h', w']
        landmarks = self.landmark_norm(pooled.flatten(2).transpose(1, 2))
        return F.gelu(landmarks).reshape(B, H, -1, D)

    def _v_conv(self, v: Tensor, layout: TokenLayout) -> Tensor:
        """SOFT's DWConv(V): one k×k kernel per head, shared by the head's channels; prefix tokens get none."""
        B, H, N, D = v.shape
        tokens = v[:, :, layout.prefix :].permute(0, 3, 2, 1).reshape(B * D, -1, H)  # [B·D, n, H]
        per_channel = layout.repeated(D)
        conv = grid_to_tokens(self.v_conv(tokens_to_grid(tokens, per_channel)), per_channel)  # [B·D, n, H]
        conv = conv.reshape(B, D, -1, H).permute(0, 3, 2, 1)
        return F.pad(conv, (0, 0, layout.prefix, 0))
