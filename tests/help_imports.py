"""What a command's `--help` imports, for the tests that keep start-up light."""

import subprocess
import sys


def help_and_imports(module: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `python -X importtime -W error -m <module> --help`: the finished process (text output) and the names
    of the modules it imported, read from importtime's report on stderr."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-W", "error", "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import")}
    return result, imported
