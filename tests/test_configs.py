"""Every LightningCLI config in configs/ parses against the classes it names (nothing is trained)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*/*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_parses(config):
    package = config.parent.name
    result = subprocess.run(
        [sys.executable, "-m", package, "fit", "--config", str(config), "--print_config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trainer:" in result.stdout and "model:" in result.stdout


def test_every_package_with_a_cli_has_configs():
    assert {p.parent.name for p in CONFIGS} == {"vision", "nvs", "reid"}
