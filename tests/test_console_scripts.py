"""[project.scripts]: every console script points at a callable that exists, names itself as the user typed it,
and the Lightning tools' --help says what the tool does and lists the shipped configs."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def scripts_table() -> dict[str, str]:
    """pyproject.toml's [project.scripts] (read by hand: tomllib is Python 3.11+, the project supports 3.10)."""
    text = (ROOT / "pyproject.toml").read_text()
    table = text.split("\n[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]+)"', table, flags=re.MULTILINE))


SCRIPTS = scripts_table()


def entry_point(name: str):
    module, _, attribute = SCRIPTS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def test_every_tool_has_a_console_script():
    assert set(SCRIPTS) == {"nvs-render", "reid-search", "lavis3d-demo", "nvs", "reid", "vision"}
    for name in SCRIPTS:
        assert callable(entry_point(name)), name


@pytest.mark.parametrize("name, words", [("nvs-render", "Novel views"), ("reid-search", "Ranks the images")])
def test_command_help_names_the_script(name, words, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [f"/venv/bin/{name}", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        entry_point(name)()
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {name} ") and words in out


@pytest.mark.parametrize(
    "name, says, config",
    [
        ("nvs", "Train and evaluate NViST", "tiny_synthetic_cpu.yaml"),
        ("reid", "Train and evaluate CORE-ReID", "synthetic_target_tiny_cpu.yaml"),
        ("vision", "Train and evaluate the vision backbones", "shapes_tiny_cpu.yaml"),
    ],
)
def test_lightning_help_says_what_the_tool_does_and_lists_its_configs(name, says, config, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [f"/venv/bin/{name}"])
    with pytest.raises(SystemExit) as exit_info:
        entry_point(name)(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {name} ") and "__main__.py" not in out
    assert says in out
    shipped = sorted(p.name for p in (ROOT / "configs" / name).glob("*.yaml"))
    listed = [line.split()[0] for line in out.split("shipped configs", 1)[1].splitlines()[1:] if line.strip()]
    assert listed[: len(shipped)] == shipped and config in shipped
    assert "Train (and validate) the model the config names." in out  # whole sentences, not Lightning's cut ones
    assert "never run on your\n" not in out
