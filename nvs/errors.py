"""Errors shared by the render command and its Python entry point (no heavy imports here)."""

from __future__ import annotations


class InputError(Exception):
    """A photo or output place that cannot be used; its message is the reason, printed after the photo's path."""
