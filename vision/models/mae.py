"""Masked autoencoder (He et al., MAE) around any LaViT encoder, whatever its attention kind.

The encoder sees only the kept 25% of the patches; its attention layers are told where those patches
sit (TokenLayout.keep), so LePE, landmark pooling and RoPE stay correct under masking. A light decoder
(8 blocks × 512, softmax attention, fixed 2-D sin-cos positions) predicts the pixels of the masked
patches; the loss is the MSE on per-patch normalised pixels of the masked patches only.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import timm
import torch
from timm.layers import build_sincos2d_pos_embed
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from ..layers import KernelAttention, TokenLayout
from .lavit import LaViT


@contextmanager
def token_layout(model: nn.Module, layout: TokenLayout):
    """Tell every KernelAttention in `model` where its tokens are, for the duration of the block."""
    layers = [m for m in model.modules() if isinstance(m, KernelAttention)]
    for layer in layers:
        layer.layout = layout
    try:
        yield
    finally:
        for layer in layers:
            layer.layout = None


class MaskedAutoencoder(nn.Module):
    def __init__(
        self,
        encoder: str = "lavit_base_patch16_224",
        encoder_kwargs: dict[str, Any] | None = None,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = True,
    ):
        super().__init__()
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio: expected a value in [0, 1), got {mask_ratio}")
        self.encoder = timm.create_model(encoder, num_classes=0, **(encoder_kwargs or {}))
        if not isinstance(self.encoder, LaViT) or self.encoder.num_prefix_tokens != 1:
            raise ValueError(f"encoder: MAE needs a LaViT with a class token, got {encoder}")
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        self.patch_size = self.encoder.patch_embed.patch_size[0]
        self.grid = tuple(self.encoder.patch_embed.grid_size)
        num_patches = self.grid[0] * self.grid[1]
        dim = self.encoder.embed_dim

        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        pos = build_sincos2d_pos_embed(list(self.grid), decoder_dim)  # [L, C]; the class token gets zeros
        self.register_buffer(
            "decoder_pos_embed", torch.cat([pos.new_zeros(1, decoder_dim), pos])[None], persistent=False
        )
        self.decoder_blocks = nn.ModuleList(
            Block(decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, self.patch_size**2 * 3)
        nn.init.normal_(self.mask_token, std=0.02)
        self.num_patches = num_patches

    def patchify(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] -> [B, L, p·p·3] (row-major patches, pixels (p, p, c) inside each)."""
        p, (h, w) = self.patch_size, self.grid
        x = images.reshape(images.shape[0], 3, h, p, w, p)
        return torch.einsum("bchpwq->bhwpqc", x).reshape(images.shape[0], h * w, p * p * 3)

    def unpatchify(self, patches: Tensor) -> Tensor:
        p, (h, w) = self.patch_size, self.grid
        x = patches.reshape(patches.shape[0], h, w, p, p, 3)
        return torch.einsum("bhwpqc->bchpwq", x).reshape(patches.shape[0], 3, h * p, w * p)

    def random_masking(self, batch: int, device: torch.device, generator: torch.Generator | None = None):
        """Per sample, keep a random (1 − mask_ratio) of the patches. Returns kept indices [B, n] (sorted by
        noise), the binary mask [B, L] (1 = removed) and the permutation that restores patch order."""
        n_keep = max(1, int(round(self.num_patches * (1 - self.mask_ratio))))
        noise = torch.rand(batch, self.num_patches, device=device, generator=generator)
        shuffle = noise.argsort(dim=1)
        restore = shuffle.argsort(dim=1)
        mask = torch.ones(batch, self.num_patches, device=device)
        mask[:, :n_keep] = 0
        return shuffle[:, :n_keep], mask.gather(1, restore), restore

    def forward_encoder(self, images: Tensor, keep: Tensor) -> Tensor:
        enc = self.encoder
        x = enc.patch_embed(images) + enc.pos_embed[:, 1:]
        x = x.gather(1, keep[..., None].expand(-1, -1, x.shape[-1]))
        cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        with token_layout(enc, TokenLayout(self.grid, prefix=1, keep=keep)):
            x = enc.blocks(x)
        return enc.norm(x)

    def forward_decoder(self, latent: Tensor, restore: Tensor) -> Tensor:
        x = self.decoder_embed(latent)
        B, n, C = x.shape
        masked = self.mask_token.expand(B, self.num_patches + 1 - n, -1)
        patches = torch.cat([x[:, 1:], masked], dim=1).gather(1, restore[..., None].expand(-1, -1, C))
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]

    def loss(self, images: Tensor, pred: Tensor, mask: Tensor) -> Tensor:
        target = self.patchify(images)
        if self.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = (pred - target).pow(2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, images: Tensor, generator: torch.Generator | None = None):
        """Returns (loss, predicted patches [B, L, p·p·3], mask [B, L])."""
        expected = (3, self.grid[0] * self.patch_size, self.grid[1] * self.patch_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            shape = ", ".join(map(str, expected))
            raise ValueError(f"images: expected [B, {shape}], got {tuple(images.shape)}")
        keep, mask, restore = self.random_masking(images.shape[0], images.device, generator)
        pred = self.forward_decoder(self.forward_encoder(images, keep), restore)
        return self.loss(images, pred, mask), pred, mask
