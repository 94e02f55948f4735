"""Every LightningCLI config in configs/ parses against the classes it names (nothing is trained)."""

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*/*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_parses(config, monkeypatch, capsys):
    # In process: `python -m <package>` is this same `main`, and a subprocess per config would spend most of its
    # time importing torch and Lightning again (the training tests run `python -m <package> fit` itself).
    package = config.parent.name
    monkeypatch.setattr(sys, "argv", [package, "fit", "--config", str(config), "--print_config"])
    with pytest.raises(SystemExit) as raised:
        importlib.import_module(f"{package}.__main__").main()
    printed = capsys.readouterr()
    assert raised.value.code in (0, None), printed.err[-2000:]
    assert "trainer:" in printed.out and "model:" in printed.out


def test_every_package_with_a_cli_has_configs():
    assert {p.parent.name for p in CONFIGS} == {"vision", "nvs", "reid"}
