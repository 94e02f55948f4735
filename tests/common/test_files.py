import json
import os
import stat
import subprocess
import sys

import pytest
import torch

from common.files import (
    read_json,
    save_weights_and_config,
    write_atomic,
    write_folder_atomic,
    write_json_atomic,
    write_text_atomic,
)
from vision.checkpoint import read_weights_and_config


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_folder_appears_whole_replacing_an_older_one_or_not_at_all(tmp_path):
    target = tmp_path / "scene"
    target.mkdir()
    (target / "old.txt").write_text("old")

    def fail(tmp):
        (tmp / "half.png").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_folder_atomic(target, fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    write_folder_atomic(target, lambda tmp: (tmp / "new.txt").write_text("new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]


def test_writers_replace_the_target_and_keep_the_suffix_for_format_guessing(tmp_path):
    seen = []
    write_atomic(tmp_path / "grid.png", lambda tmp: (seen.append(tmp.suffix), tmp.write_bytes(b"png")))
    assert seen == [".png"] and (tmp_path / "grid.png").read_bytes() == b"png"
    write_text_atomic(tmp_path / "a.txt", "one")
    write_text_atomic(tmp_path / "a.txt", "two")
    write_json_atomic(tmp_path / "b.json", {"k": [1, 2]})
    assert (tmp_path / "a.txt").read_text() == "two"
    assert json.loads((tmp_path / "b.json").read_text()) == {"k": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "grid.png"]


def test_model_files_round_trip_through_the_shared_reader(tmp_path):
    layer = torch.nn.Linear(3, 2)
    path = save_weights_and_config(tmp_path / "sub" / "m.safetensors", layer.state_dict(), {"width": 3})
    state, settings = read_weights_and_config(path, {"width"})
    assert settings == {"width": 3}
    assert set(state) == {"weight", "bias"} and torch.equal(state["weight"], layer.weight.detach())


def test_common_imports_nothing_heavy():
    code = "import sys, common.files, common.cli, common.schedules; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_read_json_names_the_file_when_it_is_missing_or_broken(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"a": [1, 2]}')
    assert read_json(good) == {"a": [1, 2]}
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_json(tmp_path / "absent.json")
    with pytest.raises(FileNotFoundError, match="^where is it$"):
        read_json(tmp_path / "absent.json", missing="where is it")
    broken = tmp_path / "broken.json"
    for content in (b"{oops", b"\xff\xfe not utf-8"):
        broken.write_bytes(content)
        with pytest.raises(ValueError, match="broken.json: not valid JSON"):
            read_json(broken)


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_what_lands_has_the_permissions_open_would_give(mask, tmp_path):
    """As a plain open()/mkdir under the umask would: not the private 0600/0700 of the temporary it was written as."""
    old = os.umask(mask)
    try:
        (tmp_path / "plain.txt").write_text("x")
        (tmp_path / "plain").mkdir()
        write_text_atomic(tmp_path / "atomic.txt", "x")
        write_folder_atomic(tmp_path / "atomic", lambda tmp: (tmp / "a.txt").write_text("x"))
    finally:
        os.umask(old)

    def mode(name: str) -> int:
        return stat.S_IMODE((tmp_path / name).stat().st_mode)

    assert mode("atomic.txt") == mode("plain.txt") == 0o666 & ~mask
    assert mode("atomic") == mode("plain") == 0o777 & ~mask
