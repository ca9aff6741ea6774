"""Numbers the prose quotes, glued from the computation (Chapter 1 introduces it; issue 12).

A chapter computes a number in a code cell and names it with :func:`glue_number`; its markdown
shows it with myst-nb's role, ``{glue:text}`name:.1f``` (the part after the last colon is a
Python format specification). The built book then prints the value the chapter computed at the
preset it was executed with, so the prose cannot drift from the computation.

Where myst-nb is not installed (Colab, a bare ``pip install``) :func:`glue_number` only checks
the value: the notebook runs the same, and the role stays visible as text in Jupyter.
``tests/test_glue.py`` checks that every key a chapter's markdown uses is glued by one of its
code cells, and that every glued key is used.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

__all__ = ["glue_number", "GLUE_ROLE", "GLUE_CALL"]

#: a glue role in markdown: ``{glue}`key```, ``{glue:text}`key:fmt```; group 1 the key
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`")
#: a :func:`glue_number` call in a code cell; group 1 the key (a string literal)
GLUE_CALL = re.compile(r"glue_number\(\s*[\"']([^\"']+)[\"']")


def _plain(value: Any) -> int | float:
    """``value`` (a Python, NumPy or 0-d torch number) as a Python ``int`` or ``float``."""
    if hasattr(value, "item"):  # a NumPy scalar or 0-d array, a 0-d torch tensor
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"glue_number takes a real number, got {type(value).__name__}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def glue_number(name: str, value: Any) -> None:
    """Glue a computed number under ``name`` for the chapter's markdown.

    ``value`` is a Python, NumPy or 0-d torch real number (not a bool); it is stored as a plain
    ``int`` or ``float``, so that myst-nb's format specifications apply to it (the ``repr`` of a
    NumPy scalar, ``np.float64(0.28)``, would not parse). Nothing is displayed in the notebook,
    and the call returns ``None``, so that it may end a cell without printing the value again.
    Without myst-nb the call only checks the value. Raises :class:`TypeError` for anything else.
    """
    if not name or not re.fullmatch(r"[\w.-]+", name):
        raise TypeError(f"glue_number: name {name!r} must be letters, digits, '_', '.' or '-'")
    number = _plain(value)
    try:
        from myst_nb import glue
    except ImportError:  # Colab, Binder without the book's extras: nothing to glue into
        return
    glue(name, number, display=False)
