"""Named run sizes: the ``smoke``, ``book`` and ``full`` presets of every chapter (Chapter 1).

A chapter's ``parameters`` cell selects a preset; the next cell calls :func:`chapter_config`,
which returns that preset's values with any explicitly given parameter overriding them. The same
names drive ``mdlearn chapter run NAME --preset P`` and papermill's ``-p preset P``.

* ``smoke`` — seconds per chapter; what CI runs (nbval).
* ``book`` — the default: a few minutes per chapter on a laptop CPU; what the HTML book shows.
* ``full`` — paper scale, meant for a GPU.

A chapter's data is a named dataset of :mod:`mdlearn.datasets` (its ``dataset`` parameter): the
sizes of generated worlds live there, next to the function that makes them.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError

__all__ = ["PRESETS", "CHAPTER_PRESETS", "DRAFT_CHAPTERS", "chapter_config"]

PRESETS = ("smoke", "book", "full")

#: Per chapter: the values each preset gives the chapter's parameters.
CHAPTER_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "01_depth_from_a_single_image": {
        "smoke": {"dataset": "indoor-smoke", "n_samples": 3, "n_stats_views": 6, "dollhouse_scales": [0.5, 2.0],
                  "cloud_stride": 8},
        "book": {"dataset": "indoor", "n_samples": 6, "n_stats_views": 300, "dollhouse_scales": [0.25, 0.5, 2.0, 1.7],
                 "cloud_stride": 4},
        "full": {"dataset": "indoor", "n_samples": 8, "n_stats_views": 2280, "dollhouse_scales": [0.25, 0.5, 2.0, 1.7, 3.3],
                 "cloud_stride": 2},
    },
    # chapters 2 and 3 take their simulated raw world by name from mdlearn.datasets (its spec lives there)
    "02_aligning_rgb_and_depth": {
        "smoke": {"dataset": "nyu-raw-smoke", "real_raw_dir": None},
        "book": {"dataset": "nyu-raw-book", "real_raw_dir": None},
        "full": {"dataset": "nyu-raw-full", "real_raw_dir": None},
    },
    "03_depth_from_a_laser_scanner": {
        "smoke": {"dataset": "kitti-raw-smoke", "real_raw_dir": None},
        "book": {"dataset": "kitti-raw-book", "real_raw_dir": None},
        "full": {"dataset": "kitti-raw-full", "real_raw_dir": None},
    },
    "04_scale_invariant_error": {
        "smoke": {"dataset": "indoor-smoke", "n_train_views": 9, "n_test_views": 3, "n_pairwise": 400, "fit_steps": 60},
        "book": {"dataset": "indoor", "n_train_views": 400, "n_test_views": 228, "n_pairwise": 2000, "fit_steps": 300},
        "full": {"dataset": "indoor", "n_train_views": 2052, "n_test_views": 228, "n_pairwise": 4000, "fit_steps": 500},
    },
    "05_data_augmentation": {
        "smoke": {"dataset": "indoor-smoke", "sample_index": 0, "n_draws": 3, "recipe": "smoke", "n_timing": 8},
        "book": {"dataset": "indoor", "sample_index": 400, "n_draws": 4, "recipe": "book", "n_timing": 64},
        "full": {"dataset": "indoor", "sample_index": 400, "n_draws": 6, "recipe": "paper", "n_timing": 256},
    },
    "06_the_coarse_network": {
        "smoke": {"recipe": "smoke", "n_show": 2, "n_templates": 4, "data_root": None, "test_root": None},
        "book": {"recipe": "book", "n_show": 4, "n_templates": 8, "data_root": None, "test_root": None},
        "full": {"recipe": "paper", "n_show": 6, "n_templates": 8, "data_root": None, "test_root": None},
    },
    "07_the_fine_network": {
        "smoke": {"recipe": "smoke", "n_show": 2, "lambda0_samples": 16, "data_root": None, "test_root": None},
        "book": {"recipe": "book", "n_show": 4, "lambda0_samples": 6000, "data_root": None, "test_root": None},
        "full": {"recipe": "paper", "n_show": 6, "lambda0_samples": 1_500_000, "data_root": None, "test_root": None},
    },
    "08_training_on_a_gpu": {
        "smoke": {"recipe": "smoke", "demo_samples": 16, "n_timing": 2, "gpu": "A100", "gpu_fraction": 0.3},
        "book": {"recipe": "book", "demo_samples": 480, "n_timing": 16, "gpu": "A100", "gpu_fraction": 0.3},
        "full": {"recipe": "paper", "demo_samples": 3200, "n_timing": 64, "gpu": "A100", "gpu_fraction": 0.3},
    },
    "09_evaluation": {
        "smoke": {"recipe": "smoke", "street": "kitti-raw-smoke", "n_show": 3, "results_file": None,
                  "data_root": None, "test_root": None, "synthetic": True,
                  "kitti_recipe": "kitti-smoke", "kitti_root": None, "kitti_test_root": None,
                  "table2_file": None, "kitti_synthetic": True},
        "book": {"recipe": "book", "street": "kitti-raw-book", "n_show": 4, "results_file": None,
                  "data_root": None, "test_root": None, "synthetic": True,
                  "kitti_recipe": "kitti-book", "kitti_root": None, "kitti_test_root": None,
                  "table2_file": None, "kitti_synthetic": True},
        "full": {"recipe": "paper", "street": "kitti-raw-full", "n_show": 6, "results_file": None,
                  "data_root": None, "test_root": None, "synthetic": True,
                  "kitti_recipe": "kitti-paper", "kitti_root": None, "kitti_test_root": None,
                  "table2_file": None, "kitti_synthetic": True},
    },
}


#: Chapters in the repository that the book does not show yet, with the reason. They run in the
#: test suite (``smoke``) like every chapter; ``_toc.yml`` leaves them out until the reason is gone.
DRAFT_CHAPTERS: dict[str, str] = {}


def chapter_config(chapter: str, preset: str, **overrides: Any) -> dict[str, Any]:
    """The parameters of ``chapter`` under ``preset``, with non-``None`` ``overrides`` applied.

    Introduced in Chapter 1. Raises :class:`~mdlearn.errors.UsageError` for an unknown chapter,
    preset or parameter name.
    """
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if chapter not in CHAPTER_PRESETS:
        raise UsageError(f"unknown chapter {chapter!r}; known: {', '.join(CHAPTER_PRESETS)}")
    cfg = dict(CHAPTER_PRESETS[chapter][preset])
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in cfg:
            raise UsageError(f"chapter {chapter} has no parameter {key!r}; known: {', '.join(cfg)}")
        cfg[key] = value
    cfg["preset"] = preset
    return cfg
