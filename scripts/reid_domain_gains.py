"""Stage 1, stage 2 and a supervised upper bound on held-out target domains, several seeds, with the tiny CPU
configs: the numbers behind the README's table of adaptation gains on domains the configs were not tuned on.

    python scripts/reid_domain_gains.py --data DIR --source SOURCE_ROOT --work RUNS --out RESULTS.jsonl
        [--source-camstyle DIR|none] [--domains NAMES] [--seeds 0,1,2] [--jobs 2] [--upper-bound]
        [--recipe NAME -- EXTRA STAGE-2 ARGS]

DIR holds one Market-1501 folder per domain (`python -m reid.data.domains --out DIR`; NAMES defaults to all of
them); SOURCE_ROOT is the labelled source (`python -m reid.data.synthetic --out D --identities 96` then
D/source). For each domain and seed:
  - stage 1: configs/reid/synthetic_source_tiny_cpu.yaml with the target's BN statistics, on SOURCE_ROOT and its
    stage-0 renders (--source-camstyle DIR; 'none': the real images only; default: the config's folder), plus
    --stage1-args;
  - stage 2: configs/reid/synthetic_target_tiny_cpu.yaml from stage 1's best checkpoint, plus the extra arguments
    after `--` (a recipe named by --recipe; `{domain}` in them becomes the domain's name, e.g. for per-domain
    folders of camera-style renders);
  - upper bound (--upper-bound): the same stage 2 with the target's true identities in place of the clusters
    (`true_labels`), i.e. what this stage reaches when its pseudo-labels are perfect.
Every model is its run's best checkpoint on validation identities held out of the target's training set; test
mAP is computed here from the exported network's embeddings on the target's test query and gallery, never by the
module's own evaluation code. Every finished run appends one JSON line to --out, and runs already there are
skipped, so a stopped sweep resumes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from reid.data.domains import DOMAINS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "reid"


def fit(config: str, run_dir: Path, seed: int, *args: str) -> Path:
    """`python -m reid fit` on one CPU thread; returns the run's log folder."""
    log = run_dir / "lightning_logs" / "version_0"
    if (log / "checkpoints" / "last.ckpt").exists():
        return log
    cmd = [sys.executable, "-m", "reid", "fit", "--config", str(CONFIGS / config), "--seed_everything", str(seed)]
    cmd += ["--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return log


def best_checkpoint(log: Path) -> Path:
    return next((log / "checkpoints").glob("best-*.ckpt"))


def test_map(checkpoint: Path, domain_root: Path) -> dict[str, float]:
    """mAP and rank-1 of a checkpoint's embeddings on a domain's test query and gallery."""
    from reid.evaluation import evaluate_folder
    from reid.export import net_from_checkpoint
    from reid.models.inference import ReIDModel

    scores = evaluate_folder(ReIDModel(net_from_checkpoint(checkpoint)).embed, domain_root)
    return {"test_mAP": round(scores["mAP"], 4), "rank1": round(scores["rank1"], 4)}


def metrics(log: Path) -> dict[str, list[float]]:
    """Every logged column of a run's metrics.csv, its non-empty values in order."""
    with open(log / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows if r.get(k)] for k in (rows[0] if rows else {})}


def stage2_diagnostics(log: Path) -> dict[str, object]:
    m = metrics(log)
    first_last = {
        name: [round(m[key][0], 4), round(m[key][-1], 4)]
        for name, key in (
            ("identity_purity_first_last", "train/purity"),
            ("camera_purity_first_last", "train/camera_purity"),
            ("num_clusters_first_last", "train/num_clusters"),
        )
        if m.get(key)
    }
    val = m.get("val/mAP", [])
    return {
        **first_last,
        "camera_purity_of_true_identities": round(m["train/camera_purity_identities"][0], 4),
        "camera_chance": round(m["train/camera_chance"][0], 4),
        "best_epoch": int(np.argmax(val)) if val else None,
        "best_val_mAP": round(max(val), 4) if val else None,
    }


class Results:
    """The JSON-lines file of finished runs, shared by the worker threads."""

    def __init__(self, path: Path):
        self.path, self.lock = path, threading.Lock()
        self.done = set()
        if path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                self.done.add((row["domain"], row["seed"], row["run"]))

    def add(self, row: dict) -> None:
        with self.lock:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
            self.done.add((row["domain"], row["seed"], row["run"]))
            print(json.dumps(row), flush=True)


def pipeline(args, results: Results, domain: str, seed: int) -> None:
    """Stage 1 then stage 2 (the recipe) for one domain and seed."""
    target = args.data / domain
    roots = ["--data.init_args.source_root", str(args.source), "--data.init_args.target_root", str(target)]
    work = args.work / domain / f"seed{seed}"
    renders = []
    if args.source_camstyle is not None:
        folder = "null" if args.source_camstyle == "none" else args.source_camstyle
        renders = ["--data.init_args.source_camstyle", folder]
    stage1_args = [*roots, *renders, *shlex.split(args.stage1_args)]
    stage1 = fit("synthetic_source_tiny_cpu.yaml", work / "stage1", seed, *stage1_args)
    base = {"domain": domain, "seed": seed, "source": str(args.source)}
    if (domain, seed, "stage1") not in results.done:
        results.add({**base, "run": "stage1", **test_map(best_checkpoint(stage1), target)})
    if (domain, seed, args.recipe) not in results.done:
        init = ["--model.init_args.source_checkpoint", str(best_checkpoint(stage1))]
        recipe = [a.replace("{domain}", domain) for a in args.stage2_args]
        stage2 = fit("synthetic_target_tiny_cpu.yaml", work / args.recipe, seed, *roots, *init, *recipe)
        row = {**base, "run": args.recipe, "stage2_args": args.stage2_args}
        results.add({**row, **test_map(best_checkpoint(stage2), target), **stage2_diagnostics(stage2)})
    if args.upper_bound and (domain, seed, f"{args.recipe}_true_labels") not in results.done:
        init = ["--model.init_args.source_checkpoint", str(best_checkpoint(stage1))]
        recipe = [a.replace("{domain}", domain) for a in args.stage2_args]
        recipe += ["--model.init_args.true_labels", "true"]
        log = fit("synthetic_target_tiny_cpu.yaml", work / f"{args.recipe}_true_labels", seed, *roots, *init, *recipe)
        row = {**base, "run": f"{args.recipe}_true_labels", "stage2_args": recipe}
        results.add(
            {**row, **test_map(best_checkpoint(log), target), "best_epoch": stage2_diagnostics(log)["best_epoch"]}
        )


def summarise(rows: list[dict], recipe: str) -> dict:
    """Per domain: test mAP of stage 1, stage 2 (`recipe`) and its true-label upper bound for every seed, the
    gains of stage 2 over stage 1, and their means."""
    table: dict[str, dict] = {}
    for row in rows:
        run = {"stage1": "stage1", recipe: "stage2", f"{recipe}_true_labels": "upper_bound"}.get(row["run"])
        if run:
            entry = table.setdefault(row["domain"], {"seeds": {}})
            entry["seeds"].setdefault(row["seed"], {})[run] = row["test_mAP"]
    for entry in table.values():
        seeds = {s: v for s, v in sorted(entry["seeds"].items()) if {"stage1", "stage2"} <= set(v)}
        entry["seeds"] = seeds
        for run in ("stage1", "stage2", "upper_bound"):
            values = [v[run] for v in seeds.values() if run in v]
            entry[f"{run}_mean"] = round(float(np.mean(values)), 4) if values else None
        gains = [v["stage2"] - v["stage1"] for v in seeds.values()]
        entry["gain_per_seed"] = [round(g, 4) for g in gains]
        entry["gain_mean"] = round(float(np.mean(gains)), 4) if gains else None
    return table


def markdown(table: dict) -> str:
    """The README's table: mean test mAP over the seeds, and each seed's gain."""

    def pct(x):
        return "–" if x is None else f"{100 * x:.1f} %"

    lines = ["| target | stage 1 | stage 2 | gain per seed | upper bound |", "| --- | --- | --- | --- | --- |"]
    for domain, e in table.items():
        gains = " / ".join(f"{100 * g:+.1f}" for g in e["gain_per_seed"])
        lines.append(
            f"| {domain} | {pct(e['stage1_mean'])} | {pct(e['stage2_mean'])} | {gains} | {pct(e['upper_bound_mean'])} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--domains", default=",".join(DOMAINS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--recipe", default="stage2")
    p.add_argument("--upper-bound", action="store_true")
    p.add_argument(
        "--source-camstyle",
        help="stage 0's renders of --source for stage 1, or 'none' for the real images only (default: the config's)",
    )
    p.add_argument("--stage1-args", default="", help="extra arguments of every stage-1 run (one string)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--summary", type=Path, help="write the per-domain summary of --out here as JSON; run nothing")
    args = p.parse_args(argv)
    if args.summary:
        rows = [json.loads(line) for line in args.out.read_text().splitlines()]
        table = summarise(rows, args.recipe)
        args.summary.write_text(json.dumps({"recipe": args.recipe, "domains": table, "runs": rows}, indent=1) + "\n")
        print(markdown(table))
        return 0
    args.stage2_args = extra
    torch.set_num_threads(1)
    results = Results(args.out)
    tasks = [(d, int(s)) for s in args.seeds.split(",") for d in args.domains.split(",")]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(pipeline, args, results, d, s) for d, s in tasks]
        for future in futures:
            future.result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
