"""Command-line errors as one clear line on stderr with exit code 2, never argparse's usage block."""

from __future__ import annotations

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, `PROG: error: MESSAGE` (or `error: MESSAGE` with
    `name_errors=False`), exit code 2. `error()` also serves the checks a command makes after parsing."""

    def __init__(self, *args, name_errors: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.name_errors = name_errors

    def error(self, message: str):
        prefix = f"{self.prog}: " if self.name_errors else ""
        self.exit(2, f"{prefix}error: {message}\n")


def print_error(message: str, prog: str | None = None) -> int:
    """Print the one-line error for a problem found outside the parser; returns the exit code, 2."""
    print(f"{prog + ': ' if prog else ''}error: {message}", file=sys.stderr)
    return 2


__all__ = ["OneLineParser", "print_error"]
