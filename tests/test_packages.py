"""The nvs and reid packages load their public names on first use: importing them is cheap (no torch), the names
are the objects their modules define, and submodules stay reachable as attributes."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_importing_the_packages_does_not_import_torch():
    heavy = "('torch', 'timm', 'nvs.render', 'reid.search')"
    code = f"import sys, nvs, reid; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "package, names",
    [
        (
            "nvs",
            ["InputError", "NViST", "NViSTConfig", "RadianceField", "load_model", "render_to_folder", "save_model"],
        ),
        ("reid", ["CoreReIDNet", "Match", "ReIDModel", "evaluate", "identity", "load_model", "rank", "re_ranking"]),
    ],
)
def test_public_names_resolve_to_their_modules_objects(package, names):
    import importlib

    module = importlib.import_module(package)
    for name in names:
        value = getattr(module, name)
        assert value is getattr(importlib.import_module(value.__module__), name)
        assert name in dir(module) and name in module.__all__
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        module.not_a_name  # noqa: B018


def test_submodules_stay_reachable_and_re_ranking_stays_the_function():
    import nvs
    import reid
    import reid.re_ranking  # noqa: F401  (binds the submodule to the package, which must not hide the function)

    assert callable(nvs.cameras.orbit_poses) and callable(reid.evaluation.evaluate)
    assert reid.re_ranking.__name__ == "re_ranking" and callable(reid.re_ranking)
