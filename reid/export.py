"""ONNX export of the inference embedding: RGB images in 0..1 at a fixed size -> L2-normalised BMFN features,
with ImageNet normalisation and flip-averaging inside the graph and a dynamic batch axis."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from common.cli import OneLineParser, print_error
from common.files import write_atomic

from .models.core_reid import CoreReIDNet
from .models.inference import ReIDModel


class _Embedding(nn.Module):
    def __init__(self, model: ReIDModel):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        return self.model.net.embed((images - self.model.mean) / self.model.std)


def export_onnx(
    model: ReIDModel | CoreReIDNet,
    path: str | Path,
    height: int | None = None,
    width: int | None = None,
    *,
    opset: int = 18,
) -> Path:
    """Write `path` (one .onnx file, atomically): input "images" [N, 3, height, width] float32 RGB in 0..1 (the
    model's input size by default; resize before feeding), output "embeddings" [N, 3C], N dynamic."""
    if isinstance(model, CoreReIDNet):
        model = ReIDModel(model)
    if not isinstance(model, ReIDModel):
        raise TypeError(f"model: expected a ReIDModel or CoreReIDNet, got {type(model).__name__}")
    height, width = height or model.input_size[0], width or model.input_size[1]
    if min(height, width) < 32:
        raise ValueError(f"height, width: expected at least 32 each, got {height}x{width}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = _Embedding(model).eval()
    device = model.mean.device
    example = torch.rand(2, 3, height, width, device=device)  # batch 2: a batch of 1 would be specialised away
    was_training = model.training
    model.eval()
    try:
        write_atomic(
            path,
            lambda tmp: torch.onnx.export(
                module,
                (example,),
                str(tmp),
                input_names=["images"],
                output_names=["embeddings"],
                dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            ),
        )
    finally:
        model.train(was_training)
    return path


def net_from_checkpoint(path: str | Path) -> CoreReIDNet:
    """The inference network of a stage-1 (its network) or stage-2 (its EMA teacher) Lightning checkpoint, or
    of a saved model, without the classifier."""
    from .engine.checkpoints import read_network

    weights, config = read_network(str(path))
    weights = {k: v for k, v in weights.items() if not k.startswith("classifier.")}
    net = CoreReIDNet(config["trunk"], 0, config.get("trunk_kwargs"), tuple(config["input_size"]))
    net.load_state_dict(weights, strict=True)
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    """python -m reid.export CHECKPOINT --out model.safetensors [--onnx model.onnx]"""

    from .models.inference import save_model

    parser = OneLineParser(
        name_errors=False,
        prog="python -m reid.export",
        description="A Lightning checkpoint of stage 1 "
        "or 2 -> the inference model (safetensors + JSON) and optionally ONNX.",
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the .safetensors file to write (+ .json beside it)")
    parser.add_argument("--onnx", type=Path, help="also write the ONNX embedding graph here")
    args = parser.parse_args(argv)
    try:
        if args.out.suffix != ".safetensors":
            raise ValueError(f"--out {args.out}: expected a .safetensors path")
        net = net_from_checkpoint(args.checkpoint)
        save_model(net, args.out)
        if args.onnx:
            export_onnx(net, args.onnx)
    except (ValueError, OSError) as error:
        return print_error(str(error))
    print(f"wrote {args.out}" + (f" and {args.onnx}" if args.onnx else ""))
    return 0


__all__ = ["export_onnx", "main", "net_from_checkpoint"]

if __name__ == "__main__":
    raise SystemExit(main())
