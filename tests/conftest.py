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


@pytest.fixture
def prepared_street(tmp_path, monkeypatch) -> tuple[Path, Path, str]:
    """Two synthetic KITTI raw drives (the first for training, the last for testing) through
    ``mdlearn prepare kitti-raw``, with one test frame's depth map removed so that every
    consumer must count it rather than fail or skip it silently. Returns (raw, depth, test drive)."""
    from mdlearn.cli import main
    from mdlearn.synthetic.kitti_raw import KittiRawSpec, write_kitti_raw

    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path / "data"))
    raw, depth = tmp_path / "raw", tmp_path / "kitti"
    write_kitti_raw(raw, KittiRawSpec(drives=2, frames_per_drive=3, seed=3, resolution=0.25, azimuth_steps=500),
                    workers=1, progress=False)
    assert main(["prepare", "kitti-raw", str(raw), str(depth), "--workers", "1", "--quiet"]) == 0
    test_drive = (raw / "splits" / "test_files.txt").read_text().split()[0]
    (depth / test_drive / "proj_depth" / "camz_time" / "image_02" / "0000000001.png").unlink()
    return raw, depth, test_drive
