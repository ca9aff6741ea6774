"""Exceptions that carry a message meant for the user (the CLI prints them on one line)."""

from __future__ import annotations

__all__ = ["MdlearnError", "UsageError", "FormatError"]


class MdlearnError(Exception):
    """A failure with a message that names what went wrong and where (a file, an argument)."""


class UsageError(MdlearnError, ValueError):
    """Impossible arguments: an unknown preset, zero rooms, an unwritable output folder, ...

    The command line reports it on one line and exits with status 2.
    """


class FormatError(MdlearnError, ValueError):
    """A file is missing, unreadable or not in the expected encoding. The message names the file."""
