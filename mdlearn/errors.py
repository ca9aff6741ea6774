"""Every exception mdlearn raises on purpose, each with a message meant for the user (Chapter 1).

The command line prints the message on one line: :class:`UsageError` (impossible arguments) exits
with status 2, any other :class:`MdlearnError` (a failure while working) with status 1.
:class:`UsageError` and :class:`FormatError` are also ``ValueError``s, so callers that catch
``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = ["MdlearnError", "UsageError", "FormatError", "NonFiniteLossError"]


class MdlearnError(Exception):
    """A failure with a message that names what went wrong and where (a file, an argument)."""


class UsageError(MdlearnError, ValueError):
    """Impossible arguments: an unknown preset, zero rooms, an unwritable output folder, ...

    The command line reports it on one line and exits with status 2.
    """


class FormatError(MdlearnError, ValueError):
    """A file is missing, unreadable or not in the expected encoding. The message names the file."""


class NonFiniteLossError(MdlearnError, FloatingPointError):
    """The loss came out NaN or infinite: training on it would silently destroy the weights (Chapter 4)."""
