"""Files written atomically (a crashed or interrupted run never leaves a half file that looks whole), and JSON
read with errors that name the file.

Each writer writes a hidden temporary file beside the target (same folder, so the rename stays on one file
system) and renames it into place; on any failure the temporary file is removed and the target is untouched.
What lands gets the permissions a plain `open` would give (0666 or 0777 less the umask), not the private ones
of the temporary it was written as.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process's umask (os.umask can only be read by setting it, so it is set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` to fill a new hidden temporary file beside `path` (its name ends in `path`'s suffix, so
    writers that pick a format from the name, such as PIL and torchvision, still do), then rename it to `path`.
    Returns `path`."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o666 & ~current_umask())  # mkstemp made it private
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_folder_atomic(path: str | Path, fill: Callable[[Path], Any]) -> Path:
    """Call `fill(tmp)` to fill a new hidden temporary folder beside `path`, then put it in place of `path` (an
    older folder there is removed first). On any failure the temporary folder is removed. Returns `path`."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        fill(tmp)
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp made it private
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | Path, value: Any, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(value, indent=indent))


def read_json(path: str | Path, missing: str | None = None) -> Any:
    """The JSON value in `path`. A missing file raises FileNotFoundError(`missing`, or a message naming the path),
    a file that is not UTF-8 JSON raises ValueError naming the path and the parser's complaint."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as error:
        raise FileNotFoundError(missing or f"{path}: no such file") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON: {error}") from error


def save_weights_and_config(path: str | Path, state: Mapping[str, Any], config: Mapping[str, Any]) -> Path:
    """A model as safetensors (`state`'s tensors, moved to the CPU and made contiguous) plus `<path>.json`
    (`config`, its constructor settings), each written atomically; the folder is created. Returns `path`.
    vision.checkpoint.read_weights_and_config reads the pair back."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}
    write_atomic(path, lambda tmp: save_file(tensors, str(tmp)))
    write_json_atomic(path.with_suffix(".json"), dict(config))
    return path


__all__ = [
    "read_json",
    "save_weights_and_config",
    "write_atomic",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
