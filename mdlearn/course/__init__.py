"""The course machinery: chapter presets, running chapters with papermill, building the book,
assignments and their autograder, and ``mdlearn reproduce`` (the chapters run as the chain
behind the paper's Table 1).

Kept apart from the library a researcher imports (:mod:`mdlearn.data`, :mod:`mdlearn.losses`,
...): nothing outside :mod:`mdlearn.course` and :mod:`mdlearn.cli` imports it.
"""

from .presets import CHAPTER_PRESETS, PRESETS, chapter_config

__all__ = ["CHAPTER_PRESETS", "PRESETS", "chapter_config"]
