"""python -m vision.bench --suite e2e, tiny enough for the CPU: the JSON's schema, its rows, the PNG, bad arguments."""

import json

import pytest

from vision import bench

ROW_FIELDS = {"model", "attn_kind", "res", "batch", "compiled", "train_img_s", "infer_img_s", "peak_mem_gib"}


def run_e2e(tmp_path, *extra):
    args = ["--suite", "e2e", "--device", "cpu", "--res", "32", "--batch", "2", "--repeats", "1"]
    assert bench.main([*args, "--out", str(tmp_path), *extra]) == 0
    report = json.loads((tmp_path / "vision-e2e-cpu.json").read_text())
    assert (tmp_path / "vision-e2e-cpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return report


def test_e2e_suite_writes_the_table(tmp_path):
    models = ["vit_small_patch16_224", "lavit_small_patch16_224", "mala_t", "deit_tiny_patch16_224"]
    report = run_e2e(tmp_path, "--models", *models, "--kinds", "softmax", "nala", "--compile", "off")
    assert {"gpu", "torch", "rows"} <= set(report) and report["torch"].startswith("2.")
    rows = report["rows"]
    assert all(ROW_FIELDS <= set(r) for r in rows)
    assert [(r["model"], r["attn_kind"]) for r in rows] == [
        ("vit_small_patch16_224", "timm"),
        ("lavit_small_patch16_224", "softmax"),
        ("lavit_small_patch16_224", "nala"),
        ("mala_t", "mala+softmax"),
        ("deit_tiny_patch16_224", "timm"),
    ]
    for r in rows:
        assert r["error"] is None and (r["res"], r["batch"], r["compiled"]) == (32, 2, False)
        assert r["train_img_s"] > 0 and r["infer_img_s"] > 0
        assert r["peak_mem_gib"] is not None and r["peak_mem_gib"] >= 0  # the process's peak RSS on Linux
    params = {r["model"]: r["params_m"] for r in rows}
    assert 21 < params["vit_small_patch16_224"] < 23 and 5 < params["deit_tiny_patch16_224"] < 6  # ViT-S, DeiT-Ti


def test_e2e_suite_has_a_compiled_column(tmp_path):
    report = run_e2e(tmp_path, "--models", "lavit_small_patch16_224", "--kinds", "mala", "--compile", "both")
    assert [(r["attn_kind"], r["compiled"]) for r in report["rows"]] == [("mala", False), ("mala", True)]
    assert all(r["error"] is None and r["train_img_s"] > 0 and r["infer_img_s"] > 0 for r in report["rows"])


@pytest.mark.parametrize(
    "args", [["--models", "resnet50"], ["--res", "100"], ["--batch", "0"]], ids=["model", "res", "batch"]
)
def test_e2e_bad_arguments_exit_2_and_write_nothing(args, tmp_path, capsys):
    assert bench.main(["--suite", "e2e", "--device", "cpu", "--out", str(tmp_path), *args]) == 2
    assert capsys.readouterr().err.startswith("error: --") and not list(tmp_path.iterdir())
