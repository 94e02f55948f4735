"""python -m vision fit|validate|test --config configs/vision/X.yaml [--trainer.devices N ...] (LightningCLI)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.cli import LightningCLI

import vision  # noqa: F401  (registers the models with timm)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"  # in a source checkout (not part of a wheel)
INTERRUPTED = 130  # the shell's exit code for a command stopped by Ctrl-C (128 + SIGINT)
SUBCOMMANDS = {
    "fit": "Train (and validate) the model the config names.",
    "validate": "One pass over the validation set, printing its metrics.",
    "test": "One pass over the test set, printing its metrics.",
    "predict": "Run the model over the prediction set.",
}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, DefaultHelpFormatter):
    """jsonargparse's help, with the description and the list of configs kept as written (not re-wrapped)."""


class InputError(Exception):
    """A wrong option or input found by the CLI itself: one line on stderr, exit code 2."""


class DescribedCLI(LightningCLI):
    """LightningCLI whose subcommand list says in a whole sentence what each does (Lightning's own list shows the
    first line of the Trainer's docstrings, which stops mid-sentence) and whose `--ckpt_path last` finds the run's
    newest last.ckpt."""

    def _add_subcommands(self, parser, **kwargs) -> None:
        super()._add_subcommands(parser, **kwargs)
        action = getattr(parser, "_subcommands_action", None)
        for choice in getattr(action, "_choices_actions", []):
            if choice.dest in SUBCOMMANDS:
                choice.help = SUBCOMMANDS[choice.dest]

    def _run_subcommand(self, subcommand: str) -> None:
        kwargs = self.config_init[subcommand]
        if kwargs.get("ckpt_path") == "last":
            # Lightning looks only in this run's own checkpoint folder, under a new and empty version_N, and so
            # warns and starts from scratch.
            kwargs["ckpt_path"] = str(last_checkpoint(self.trainer))
        super()._run_subcommand(subcommand)


def last_checkpoint(trainer: L.Trainer) -> Path:
    """The newest last*.ckpt in a ModelCheckpoint's own folder or in any version of the run's log folder."""
    logger = trainer.logger
    root = Path(getattr(logger, "root_dir", None) or trainer.default_root_dir)
    folders = [Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)]
    folders += [root / "checkpoints", *root.glob("*/checkpoints")]
    found = [path for folder in folders for path in folder.glob("last*.ckpt")]
    if not found:
        raise InputError(f"--ckpt_path last: no last.ckpt under {root} (leave out --ckpt_path to start afresh)")
    return max(found, key=lambda path: path.stat().st_mtime)


def first_sentence(text: str) -> str:
    """Up to the first '.' or ';' that ends a clause outside parentheses, or a ':' after a title long enough to
    stand alone ("Stage 1 on CPU: source pre-training ..." keeps its explanation)."""
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        ends = i + 1 == len(text) or text[i + 1] == " "
        if depth == 0 and ends and (char in ".;" or (char == ":" and i >= 30)):
            return text[:i]
    return text


def config_summary(path: Path) -> str:
    """What a config runs: the first sentence of its leading comment."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith(("python -m", "One pair:", "--")):
            break
        lines.append(text)
    return first_sentence(" ".join(lines)) or "(no description)"


def configs_epilog(package: str) -> str:
    """The shipped configs for `package`, one a line with what each runs."""
    folder = CONFIGS / package
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not files:
        return f"Configs: configs/{package}/ in the source repository."
    width = max(len(f.name) for f in files)
    rows = [f"  {f.name:<{width}}  {config_summary(f)}" for f in files]
    return f"shipped configs ({folder}):\n" + "\n".join(rows)


def prog_name(module: str, script: str) -> str:
    """The name the user typed: the console script's, or `python -m <module>`."""
    return script if Path(sys.argv[0]).name == script else f"python -m {module}"


def cli_kwargs(module: str, script: str, description: str, package: str) -> dict[str, Any]:
    """LightningCLI's parser_kwargs: the tool's name, what it does, its subcommands in words, its configs."""
    kwargs: dict[str, Any] = {
        "prog": prog_name(module, script),
        "description": description,
        "epilog": configs_epilog(package) + f"\n\nExample: {prog_name(module, script)} fit --config configs/"
        f"{package}/<name>.yaml   (see `{prog_name(module, script)} fit --help` for every option)",
        "formatter_class": _HelpFormatter,
    }
    for name, text in SUBCOMMANDS.items():
        kwargs[name] = {"description": text}
    return kwargs


DESCRIPTION = (
    "Train and evaluate the vision backbones (ViTs with linear and other efficient attention, hierarchical\n"
    "linear-attention models, MAE pre-training) from a config file; the config names the model and data classes."
)


def run(make_cli: Callable[[], Any], prog: str) -> None:
    """Runs a LightningCLI with the README's command-line conventions: a missing file or folder, or an InputError,
    is one line on stderr and exit code 2; Ctrl-C exits 130 without a traceback."""
    try:
        make_cli()
    except KeyboardInterrupt:
        _interrupted(prog)
    except SystemExit as stop:
        if isinstance(stop.__context__, KeyboardInterrupt):  # Lightning stops the run on Ctrl-C, then exits 1
            _interrupted(prog)
        raise
    except (InputError, FileNotFoundError, NotADirectoryError) as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(2)


def _interrupted(prog: str) -> None:
    print(f"{prog}: interrupted; checkpoints written so far are kept (resume with --ckpt_path last)", file=sys.stderr)
    sys.exit(INTERRUPTED)


def main(args=None, *, parser_kwargs: dict[str, Any] | None = None) -> None:
    """LightningCLI in subclass mode (the config names the LightningModule and LightningDataModule)."""
    parser_kwargs = parser_kwargs or cli_kwargs("vision", "vision", DESCRIPTION, "vision")
    run(
        lambda: DescribedCLI(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            parser_kwargs=parser_kwargs,
            args=args,
        ),
        parser_kwargs["prog"],
    )


if __name__ == "__main__":
    main()
