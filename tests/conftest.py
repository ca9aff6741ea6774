"""Shared fixtures: the real-data samples in ../shared/data and small synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mdlearn.paths import shared_data_dir

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real NYU/KITTI samples (:func:`mdlearn.paths.shared_data_dir`); tests that need them skip
    (with the reason) when absent."""
    folder = shared_data_dir()
    if not (folder / "MANIFEST.md").is_file():
        pytest.skip(f"real dataset samples not found at {folder} (set MDLEARN_SHARED_DATA)")
    return folder


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> tuple[Path, object]:
    """A 3-room synthetic dataset at quarter resolution, written by the project's own writer."""
    from mdlearn.synthetic.nyu_sync import IndoorSpec, write_indoor_dataset

    spec = IndoorSpec(rooms=3, views_per_room=2, seed=11, test_fraction=0.34, resolution=0.25)
    out = tmp_path_factory.mktemp("ds") / "indoor"
    write_indoor_dataset(out, spec, workers=1, progress=False)
    return out, spec
