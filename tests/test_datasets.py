"""mdlearn.datasets: every dataset the book generates, by name, and the chapters that use them."""

import pytest

from mdlearn.cli import main
from mdlearn.course.presets import CHAPTER_PRESETS, PRESETS, chapter_config
from mdlearn.datasets import DATASETS, dataset_spec, ensure_dataset, get_dataset
from mdlearn.errors import UsageError
from mdlearn.synthetic.kitti_raw import KittiRawSpec
from mdlearn.synthetic.nyu_raw import KinectSpec, read_manifest
from mdlearn.synthetic.nyu_sync import IndoorSpec


def test_every_chapter_takes_a_registered_dataset_of_its_own_kind():
    from mdlearn.recipes import get_recipe

    kinds = {"01": IndoorSpec, "02": KinectSpec, "03": KittiRawSpec}
    for chapter, presets in CHAPTER_PRESETS.items():
        assert set(presets) == set(PRESETS)
        for preset in PRESETS:
            cfg = chapter_config(chapter, preset)
            # chapters that train take their data through a training recipe
            name = cfg["dataset"] if "dataset" in cfg else get_recipe(cfg["recipe"]).dataset
            d = get_dataset(name)
            assert isinstance(d.spec, kinds.get(chapter[:2], IndoorSpec)), (chapter, preset)
            if chapter[:2] in ("02", "03"):
                assert d.chapter == int(chapter[:2]) and d.name.endswith(preset)


def test_the_chapters_worlds_keep_their_sizes():
    # the values chapters 2 and 3 built their specs from before the registry (their printed numbers)
    assert dataset_spec("nyu-raw-smoke") == KinectSpec(scenes=1, frames_per_scene=8, seed=2014, resolution=0.25)
    assert dataset_spec("nyu-raw-book") == KinectSpec(scenes=3, frames_per_scene=24, seed=2014, resolution=0.5)
    assert dataset_spec("nyu-raw-full") == KinectSpec(scenes=8, frames_per_scene=60, seed=2014, resolution=1.0)
    assert dataset_spec("kitti-raw-smoke") == KittiRawSpec(2, 8, seed=2014, resolution=0.25, azimuth_steps=1000)
    assert dataset_spec("kitti-raw-book") == KittiRawSpec(4, 30, seed=2014, resolution=0.5, azimuth_steps=2000)
    assert dataset_spec("kitti-raw-full") == KittiRawSpec(8, 100, seed=2014, resolution=1.0, azimuth_steps=4000)
    for d in DATASETS.values():
        d.spec.validate()


def test_unknown_names_and_workers_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown dataset 'nope'; known: indoor-smoke, indoor, nyu-raw-smoke"):
        get_dataset("nope")
    with pytest.raises(UsageError, match="--workers must be at least 1, got 0"):
        ensure_dataset("nyu-raw-smoke", root=tmp_path, workers=0)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_data_ensure_and_list_see_a_chapter_world(tmp_path, capsys):
    assert main(["data", "list", "--root", str(tmp_path)]) == 0
    assert "nyu-raw-smoke" in capsys.readouterr().out
    assert not get_dataset("nyu-raw-smoke").is_ready(tmp_path)
    assert main(["data", "ensure", "nyu-raw-smoke", "--root", str(tmp_path), "--quiet"]) == 0
    assert f"nyu-raw-smoke: generated in {tmp_path / 'nyu-raw-smoke'}" in capsys.readouterr().out
    assert read_manifest(tmp_path / "nyu-raw-smoke")["spec"]["frames_per_scene"] == 8
    assert main(["data", "ensure", "nyu-raw-smoke", "--root", str(tmp_path), "--quiet"]) == 0
    assert "nyu-raw-smoke: up to date" in capsys.readouterr().out
    assert main(["data", "list", "--root", str(tmp_path)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("nyu-raw-smoke"))
    assert line.endswith("[ready]") and "ch. 2" in line
