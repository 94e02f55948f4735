"""Compare exported NViST models on synthetic scenes none of them was trained on: every metric of `nvs test`
(full-image and object PSNR, silhouette IoU, depth abs-rel, and their trivial baselines), per model and test set.

    python scripts/compare_nvs_models.py nvs/assets/nvist_default.safetensors runs/new.safetensors \
        --sets classic:100 varied:100 --scenes 40 --out docs/bench/nvs-default-models.json

A test set is STYLE:SEED (a generator style and a seed the models were not trained with); its scenes are rendered
once under --data (views at the models' input size) and every scene is held out. STYLE `raycast` is the family of
scripts/raycast_scenes.py, another renderer (open3d's ray caster on meshes) that shares no code with ours.
Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def evaluate(model_path: Path, root: Path, style: str, seed: int, scenes: int, views: int) -> dict[str, float]:
    import lightning as L

    from nvs.data.datamodule import NViSTData
    from nvs.training import NViSTModule
    from nvs.weights import load_model

    net = load_model(model_path)
    config = net.config
    module = NViSTModule(model=dataclasses.asdict(config))
    module.net.load_state_dict(net.state_dict())
    size = config.image_height
    folder = root / f"{style}_{seed}_{scenes}x{views}_{size}"
    generate = {"scenes": scenes, "views": views, "size": size, "seed": seed, "style": style}
    if style == "raycast":  # another renderer's family, written once by scripts/raycast_scenes.py
        from raycast_scenes import write_scenes

        if not (folder / ".complete").exists():
            write_scenes(folder, scenes, views, size, seed)
            (folder / ".complete").write_text(json.dumps(generate))
        generate = None
    data = NViSTData(
        root=str(folder),
        input_height=size,
        input_width=config.image_width,
        target_height=size,
        target_width=config.image_width,
        targets=views - 1,
        holdout_every=1,
        batch_size=1,
        generate=generate,
    )
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (results,) = trainer.test(module, datamodule=data, verbose=False)
    return {key.removeprefix("test/"): round(float(value), 4) for key, value in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="exported models (.safetensors + .json)")
    parser.add_argument("--sets", nargs="+", default=["classic:100", "varied:100"], help="STYLE:SEED test sets")
    parser.add_argument("--scenes", type=int, default=40, help="scenes per test set (default 40)")
    parser.add_argument("--views", type=int, default=8, help="views per scene: one input, the rest novel (default 8)")
    parser.add_argument("--data", type=Path, default=Path("data/model_comparison"), help="where scenes are rendered")
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    args = parser.parse_args(argv)
    rows = []
    for spec in args.sets:
        style, _, seed = spec.partition(":")
        for model in args.models:
            metrics = evaluate(model, args.data, style, int(seed or 0), args.scenes, args.views)
            rows.append({"model": str(model), "style": style, "seed": int(seed or 0), **metrics})
    columns = ["psnr", "psnr_input_baseline", "psnr_object", "iou", "iou_input_baseline", "depth_absrel"]
    columns += ["depth_absrel_baseline"]
    print(f"{'model':48} {'set':12} " + " ".join(f"{c[:18]:>18}" for c in columns))
    for row in rows:
        values = " ".join(f"{row.get(c, float('nan')):>18.4f}" for c in columns)
        print(f"{row['model'][-48:]:48} {row['style'] + ':' + str(row['seed']):12} {values}")
    if args.out:
        from common.files import write_json_atomic

        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out, {"scenes": args.scenes, "views": args.views, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
