"""python -m reid.gan: stage 0 of CORE-ReID (reid/gan/cli.py)."""

import sys

from .cli import main

main(sys.argv[1:])
