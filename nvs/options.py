"""RenderOptions: what `python -m nvs.render` and `nvs.render_to_folder` are asked to render and write for a
photo. The command line builds one from its arguments (its defaults are these fields' defaults) and
render_to_folder from its keyword arguments; nothing below them sees an argparse object. No heavy imports here,
so the command line can check its options before importing torch."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from importlib.util import find_spec
from pathlib import Path

ORBIT_SECONDS = 4.0  # one loop of the orbit video


@dataclass(frozen=True)
class RenderOptions:
    checkpoint: Path | None = None  # model .safetensors (None: the shipped model)
    views: int = 8  # views on the orbit, view 0 at the input camera
    elevation: float = 0.0  # orbit elevation, degrees: -90 (below) to 90 (above)
    distance: float | None = None  # orbit radius (None: the input camera's)
    fov: float | None = None  # views' field of view, degrees (None: the input's)
    size: int = 128  # views are size × size pixels
    video: str = "gif"  # orbit video: gif, mp4 or none
    mesh: str = "ply"  # mesh format: ply, obj, glb or none
    mc_resolution: int = 128  # marching cubes grid per axis
    points: bool = False  # also write points.ply (depth back-projected)
    background: str | tuple[float, float, float] = "white"  # colour behind transparent pixels (a name or RGB)
    device: str = "auto"  # auto (cuda if available), cpu or cuda
    chunk: int = 16384  # rays per render chunk
    seed: int = 0  # random seed; the same seed gives the same files
    quiet: bool = False  # no progress bar

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def checked(self) -> RenderOptions:
        """These options with `background` as an RGB triple, or ValueError saying in one line what is wrong."""
        for name, low in (("views", 1), ("size", 8), ("mc_resolution", 8), ("chunk", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if not -90 <= self.elevation <= 90:
            raise ValueError(f"--elevation must be between -90 and 90 degrees, got {self.elevation:g}")
        if self.distance is not None and not self.distance > 0:
            raise ValueError(f"--distance must be positive, got {self.distance}")
        if self.fov is not None and not 0 < self.fov < 180:
            raise ValueError(f"--fov must be between 0 and 180 degrees, got {self.fov}")
        for name, choices in (("video", ("gif", "mp4", "none")), ("mesh", ("ply", "obj", "glb", "none"))):
            if getattr(self, name) not in choices:
                raise ValueError(f"--{name}: expected one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"--device: expected auto, cpu or cuda, got {self.device!r}")
        if self.video == "mp4" and find_spec("av") is None:
            raise ValueError("--video mp4 needs PyAV, which is not installed (pip install av); use --video gif")
        if self.device == "cuda":
            import torch  # only here: --help and most option errors answer without it

            if not torch.cuda.is_available():
                raise ValueError("--device cuda: no CUDA device is available here")
        background = self.background
        if isinstance(background, str):
            from matplotlib.colors import to_rgb

            try:
                background = to_rgb(background)
            except ValueError:
                raise ValueError(
                    f"--background: not a colour: {background!r} (a name such as white, or #rrggbb)"
                ) from None
        return replace(self, background=tuple(background))


__all__ = ["ORBIT_SECONDS", "RenderOptions"]
