"""The book's named datasets: what ``mdlearn data list`` shows and ``mdlearn data ensure`` makes (Chapter 1).

A named dataset is a synthetic world with fixed settings, generated into ``data/<name>``
(:func:`mdlearn.paths.data_dir`) once and regenerated only when the code that makes its pixels
changes.
"""

from __future__ import annotations

from .errors import UsageError
from .synthetic.nyu_sync import IndoorSpec

__all__ = ["DATASETS", "dataset_spec"]

#: The synthetic datasets the book uses, by name. ``indoor`` is the embedded default
#: (``make book`` / ``make test`` generate it into ``data/indoor``): 60 rooms x 38 views,
#: 54 training rooms (2,052 views) and 6 test rooms (228 views) at 640x480.
DATASETS: dict[str, IndoorSpec] = {
    "indoor-smoke": IndoorSpec(rooms=4, views_per_room=3, seed=2014, test_fraction=0.25),
    "indoor": IndoorSpec(rooms=60, views_per_room=38, seed=2014, test_fraction=0.1),
}


def dataset_spec(name: str) -> IndoorSpec:
    """The :class:`~mdlearn.synthetic.nyu_sync.IndoorSpec` of a named dataset (Chapter 1)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
