"""LightningModule for NViST: ray sampling, losses, optimisers and held-out novel-view metrics."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from common.files import write_atomic
from common.schedules import warmup_cosine

from .cameras import invert_pose, rays_for_pixels
from .metrics import depth_abs_rel, object_psnr, silhouette_iou
from .model.nvist import NViST, NViSTConfig, RadianceField

log = logging.getLogger(__name__)


class NViSTModule(L.LightningModule):
    """MSE + λ_lpips·LPIPS(VGG) + λ_dist·distortion (NViST: 0.1 and 0.001); AdamW (`betas`, PyTorch's default
    (0.9, 0.999) unless set) with the encoder at its own learning rate, linear warm-up then cosine to `min_lr`;
    PSNR and SSIM on held-out scenes' novel views, beside two trivial baselines (the input image itself, and its
    mean colour); where the scenes have masks and depth, the object metrics too (`_log_object_metrics`)."""

    def __init__(
        self,
        model: dict[str, Any] | None = None,
        rays_per_scene: int = 1024,
        lr: float = 1e-4,
        encoder_lr: float = 4e-5,
        weight_decay: float = 0.05,
        warmup_steps: int = 10_000,
        min_lr: float = 1e-6,
        lpips_weight: float = 0.1,
        lpips_patch: int = 32,
        distortion_weight: float = 0.001,
        render_chunk: int = 8192,
        betas: tuple[float, float] = (0.9, 0.999),
    ):
        super().__init__()
        self.save_hyperparameters()
        known = {f.name for f in fields(NViSTConfig)}
        unknown = set(model or {}) - known
        if unknown:
            raise ValueError(f"model: unknown settings {sorted(unknown)}; NViSTConfig takes {sorted(known)}")
        self.net = NViST(NViSTConfig(**(model or {})))
        self._lpips = None
        self._lpips_failed = False

    # -- losses ----------------------------------------------------------------------------------------------

    def _lpips_loss(self, batch: dict, codes) -> Tensor | None:
        """LPIPS(VGG) on one random target patch per scene; skipped (once, with a message) without weights."""
        if self.hparams.lpips_weight <= 0 or self._lpips_failed:
            return None
        if self._lpips is None:
            try:
                from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

                self._lpips = LearnedPerceptualImagePatchSimilarity(net_type="vgg", normalize=True).to(self.device)
                self._lpips.requires_grad_(False)
            except Exception as error:  # no network here: the VGG/LPIPS weights cannot be downloaded
                self._lpips_failed = True
                log.warning(
                    "LPIPS loss skipped: its VGG weights are not available (%s: %s)", type(error).__name__, error
                )
                return None
        targets = batch["targets"]
        B, V, _, H, W = targets.shape
        p = min(self.hparams.lpips_patch, H, W)
        view = torch.randint(V, (B,), device=self.device)
        top, left = int(torch.randint(H - p + 1, ())), int(torch.randint(W - p + 1, ()))
        vv, uu = torch.meshgrid(
            torch.arange(top, top + p, device=self.device),
            torch.arange(left, left + p, device=self.device),
            indexing="ij",
        )
        u, v = uu.flatten().float().expand(B, -1), vv.flatten().float().expand(B, -1)
        origins, dirs = rays_for_pixels(batch["poses"], batch["intrinsics"], view[:, None].expand(-1, p * p), u, v)
        out = self.net.render(codes, self.net.to_field_frame(origins, batch["condition"][:, 0]), dirs, jitter=True)
        pred = out["rgb"].reshape(B, p, p, 3).permute(0, 3, 1, 2).clamp(0, 1)
        target = targets[torch.arange(B), view][:, :, top : top + p, left : left + p]
        return self._lpips(pred, target)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        codes = self.net.encode(batch["image"], batch["condition"])
        targets = batch["targets"]  # [B, V, 3, H, W]
        B, V, _, H, W = targets.shape
        R = self.hparams.rays_per_scene
        view = torch.randint(V, (B, R), device=self.device)
        u, v = torch.randint(W, (B, R), device=self.device), torch.randint(H, (B, R), device=self.device)
        origins, dirs = rays_for_pixels(batch["poses"], batch["intrinsics"], view, u.float(), v.float())
        out = self.net.render(codes, self.net.to_field_frame(origins, batch["condition"][:, 0]), dirs, jitter=True)
        pixels = targets.permute(0, 1, 3, 4, 2)[torch.arange(B)[:, None], view, v, u]  # [B, R, 3]
        mse = F.mse_loss(out["rgb"], pixels)
        loss = mse + self.hparams.distortion_weight * out["distortion"].mean()
        lpips = self._lpips_loss(batch, codes)
        if lpips is not None:
            loss = loss + self.hparams.lpips_weight * lpips
            self.log("train/lpips", lpips)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"NViST loss is {loss.item()} at step {self.global_step}; lower lr or check data")
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/psnr", -10 * torch.log10(mse.detach().clamp_min(1e-10)), prog_bar=True)
        return loss

    # -- evaluation ------------------------------------------------------------------------------------------

    def render_views(
        self, image: Tensor, condition: Tensor, poses: Tensor, intrinsics: Tensor, height: int, width: int
    ) -> dict[str, Tensor]:
        """One scene: [V] poses (input-camera frame) -> `rgb` [V, 3, H, W], `opacity` and `depth` (z) [V, H, W]
        (RadianceField.render, in chunks)."""
        codes = self.net.encode(image[None], condition[None])
        distance, focal = float(condition[0]), float(condition[1]) * self.net.config.image_height
        field = RadianceField(self.net, codes, distance, focal, chunk=self.hparams.render_chunk)
        renders = []
        for pose, (fx, fy, cx, cy) in zip(poses, intrinsics.tolist(), strict=True):
            renders.append(field.render(pose[None], fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height))
        return {
            "rgb": torch.cat([r["rgb"] for r in renders]).permute(0, 3, 1, 2),
            "opacity": torch.cat([r["opacity"] for r in renders]),
            "depth": torch.cat([r["depth"] for r in renders]),
        }

    def _evaluate(self, batch: dict, batch_idx: int, prefix: str) -> None:
        targets = batch["targets"][0]  # [V, 3, H, W] novel views of one held-out scene
        V, _, H, W = targets.shape
        rendered = self.render_views(
            batch["image"][0], batch["condition"][0], batch["poses"][0], batch["intrinsics"][0], H, W
        )
        renders = rendered["rgb"]
        as_input = F.interpolate(
            batch["image"], size=(H, W), mode="bilinear", antialias=True, align_corners=False
        ).expand(V, -1, -1, -1)
        mean_colour = batch["image"].mean(dim=(2, 3), keepdim=True).expand(V, -1, H, W)

        def psnr(pred):
            return peak_signal_noise_ratio(pred, targets, data_range=1.0, reduction="none", dim=(1, 2, 3)).mean()

        self.log(f"{prefix}/psnr", psnr(renders), prog_bar=True, batch_size=V, sync_dist=True)
        self.log(
            f"{prefix}/ssim",
            structural_similarity_index_measure(renders, targets, data_range=1.0),
            batch_size=V,
            sync_dist=True,
        )
        self.log(f"{prefix}/psnr_input_baseline", psnr(as_input), batch_size=V, sync_dist=True)
        self.log(f"{prefix}/psnr_mean_baseline", psnr(mean_colour), batch_size=V, sync_dist=True)
        if "masks" in batch:
            self._log_object_metrics(batch, rendered, as_input, mean_colour, prefix)
        if batch_idx == 0 and self.trainer.is_global_zero:
            self._save_renders(batch["image"][0], renders, targets, prefix)

    def _log_object_metrics(
        self, batch: dict, rendered: dict[str, Tensor], as_input: Tensor, mean_colour: Tensor, prefix: str
    ) -> None:
        """Per held-out scene, pooled over its novel views (nvs/metrics.py): PSNR on the object's pixels (beside
        the same two baselines), silhouette IoU of opacity > 0.5 (beside the input view's own mask reused for every
        view, and an all-object prediction; an all-background one scores 0), and the depth's abs-rel error on the
        object (beside a flat depth at the object centre's distance from each camera)."""
        targets, masks, depths = batch["targets"][0], batch["masks"][0], batch["depths"][0]
        V, _, H, W = targets.shape
        # the object centre (0, 0, d) of the input camera's frame, seen from each target camera: its z-depth
        centre = torch.tensor([0.0, 0.0, float(batch["condition"][0, 0]), 1.0], device=targets.device)
        centre_depth = (invert_pose(batch["poses"][0]) @ centre)[:, 2]
        values = {
            "psnr_object": object_psnr(rendered["rgb"], targets, masks),
            "psnr_object_input_baseline": object_psnr(as_input, targets, masks),
            "psnr_object_mean_baseline": object_psnr(mean_colour, targets, masks),
            "iou": silhouette_iou(rendered["opacity"], masks),
            "iou_input_baseline": silhouette_iou(batch["input_mask"][0].expand(V, H, W), masks),
            "iou_all_object_baseline": silhouette_iou(torch.ones_like(masks), masks),
            "depth_absrel": depth_abs_rel(rendered["depth"], depths, masks),
            "depth_absrel_baseline": depth_abs_rel(centre_depth[:, None, None].expand(V, H, W), depths, masks),
        }
        for name, value in values.items():
            if torch.isfinite(value):  # no object pixel in any view: nothing to measure for this scene
                self.log(f"{prefix}/{name}", value, batch_size=1, sync_dist=True)

    def _save_renders(self, image: Tensor, renders: Tensor, targets: Tensor, prefix: str) -> None:
        """Input | renders over targets, as a PNG in the log folder (and to image-capable loggers)."""
        from torchvision.utils import make_grid

        H, W = targets.shape[-2:]
        first = F.interpolate(image[None], size=(H, W), mode="bilinear", antialias=True, align_corners=False)[0]
        grid = make_grid(
            torch.cat([first[None], renders, torch.zeros_like(first)[None], targets]).cpu(),
            nrow=renders.shape[0] + 1,
            padding=1,
        )
        logger = self.logger
        if logger is not None and hasattr(logger, "experiment") and hasattr(logger.experiment, "add_image"):
            logger.experiment.add_image(f"{prefix}/renders", grid, self.global_step)
        folder = Path(self.trainer.log_dir or ".") / "renders"
        folder.mkdir(parents=True, exist_ok=True)
        from torchvision.utils import save_image

        write_atomic(folder / f"{prefix}_step{self.global_step:07d}.png", lambda tmp: save_image(grid, tmp))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    # -- optimisation ----------------------------------------------------------------------------------------

    def configure_optimizers(self):
        h = self.hparams
        encoder = list(self.net.encoder.parameters())
        encoder_ids = {id(p) for p in encoder}
        rest = [p for p in self.net.parameters() if id(p) not in encoder_ids]
        optimizer = torch.optim.AdamW(
            [{"params": encoder, "lr": h.encoder_lr}, {"params": rest, "lr": h.lr}],
            weight_decay=h.weight_decay,
            betas=tuple(h.betas),
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(h.warmup_steps, total // 10)
        # both groups end at min_lr, whatever their base rates
        scheduler = warmup_cosine(optimizer, warmup, total, [h.min_lr / h.encoder_lr, h.min_lr / h.lr])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
