"""The sync-layout writer and reader, round-tripped through the project's own files."""

import json
import shutil

import numpy as np
import pytest

from mdlearn.data.nyu import read_files_with_gt
from mdlearn.data.nyu_dataset import NYUSyncDataset
from mdlearn.errors import UsageError
from mdlearn.synthetic import nyu_sync as ds
from mdlearn.synthetic.nyu_sync import IndoorSpec, ensure_indoor_dataset, is_complete, read_index, write_indoor_dataset
from mdlearn.synthetic.indoor import render_view


def test_layout_index_and_lists(small_dataset):
    root, spec = small_dataset
    index = read_index(root)
    assert index["counts"] == {"rooms": 3, "views": 6, "train_views": 4, "test_views": 2, "test_rooms": 1}
    assert index["intrinsics"]["width"] == 160 and index["intrinsics"]["height"] == 120
    rooms = {r["name"]: r["split"] for r in index["rooms"]}
    for split in ("train", "test"):
        entries = read_files_with_gt(root / f"{split}_files_with_gt.txt")
        assert entries and all(rooms[e.rgb.split("/")[0]] == split for e in entries)  # split by room
        for e in entries:
            assert (root / e.rgb).is_file() and (root / e.depth).is_file()
            assert e.rgb.split("/")[1].startswith("rgb_") and e.depth.split("/")[1].startswith("sync_depth_")
    assert not list(root.parent.glob("*.partial-*"))


def test_written_depth_reads_back_within_1mm_of_the_render(small_dataset):
    root, spec = small_dataset
    index = read_index(root)
    data = NYUSyncDataset(root, "train")
    for i in range(len(data)):
        sample = data[i]
        view_meta = next(v for v in index["views"] if v["rgb"] == sample["name"])
        room_index = next(r["index"] for r in index["rooms"] if r["name"] == view_meta["room"])
        view_no = int(sample["name"].split("_")[-1].split(".")[0])
        view = render_view(spec.seed, room_index, view_no, K=spec.intrinsics)
        assert np.abs(sample["depth"][0].numpy() - view.depth).max() <= 0.001
        np.testing.assert_array_equal((sample["image"] * 255).round().byte().permute(1, 2, 0).numpy(), view.rgb)
        np.testing.assert_allclose(np.array(view_meta["pose"]), view.pose, atol=1e-8)
        assert sample["valid"].all()


def test_same_spec_same_bytes(small_dataset, tmp_path):
    root, spec = small_dataset
    again = write_indoor_dataset(tmp_path / "again", spec, workers=2, progress=False)
    for f in sorted(p.relative_to(root) for p in root.rglob("*.png")):
        assert (root / f).read_bytes() == (again / f).read_bytes(), f
    a, b = read_index(root), read_index(again)
    assert a["views"] == b["views"] and a["depth_stats"] == b["depth_stats"]


def test_refuses_to_overwrite_and_ensure_is_idempotent(small_dataset, tmp_path):
    root, spec = small_dataset
    with pytest.raises(UsageError, match="already holds files of mdlearn-indoor-sync"):
        write_indoor_dataset(root, spec, progress=False)
    assert is_complete(root, spec)
    mtime = (root / "index.json").stat().st_mtime_ns
    ensure_indoor_dataset(root, spec, progress=False)
    assert (root / "index.json").stat().st_mtime_ns == mtime  # nothing redone
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not written by mdlearn-indoor-sync"):
        ensure_indoor_dataset(other, spec, progress=False)
    assert (other / "notes.txt").read_text() == "mine"


def test_stale_dataset_is_regenerated(small_dataset, tmp_path):
    root, spec = small_dataset
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    index = json.loads((copy / "index.json").read_text())
    index["source_hash"] = "older-renderer"
    (copy / "index.json").write_text(json.dumps(index))
    assert not is_complete(copy, spec)
    ensure_indoor_dataset(copy, spec, progress=False)
    assert is_complete(copy, spec)


def test_interrupted_run_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = ds._render_room

    def flaky(task):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(ds, "_render_room", flaky)
    spec = IndoorSpec(rooms=3, views_per_room=1, seed=0, resolution=0.1)
    with pytest.raises(KeyboardInterrupt):
        write_indoor_dataset(tmp_path / "out", spec, workers=1, progress=False)
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs,msg", [
    ({"rooms": 0, "views_per_room": 1}, "--rooms"),
    ({"rooms": 2, "views_per_room": -1}, "--views-per-room"),
    ({"rooms": 2, "views_per_room": 1, "resolution": -0.5}, "--resolution"),
    ({"rooms": 2, "views_per_room": 1, "test_fraction": 1.5}, "--test-fraction"),
    ({"rooms": 2, "views_per_room": 1, "seed": -4}, "--seed"),
])
def test_impossible_specs(tmp_path, kwargs, msg):
    with pytest.raises(UsageError, match=msg):
        write_indoor_dataset(tmp_path / "x", IndoorSpec(**kwargs), progress=False)
    assert not (tmp_path / "x").exists()


def test_unwritable_output_location(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="a_file"):
        write_indoor_dataset(blocker / "out", IndoorSpec(rooms=1, views_per_room=1), progress=False)


def test_test_split_is_by_room_and_deterministic():
    spec = IndoorSpec(rooms=60, views_per_room=1, seed=2014, test_fraction=0.1)
    assert spec.test_rooms() == spec.test_rooms() and len(spec.test_rooms()) == 6
    assert IndoorSpec(rooms=1, views_per_room=1).test_rooms() == []
    assert len(IndoorSpec(rooms=2, views_per_room=1, test_fraction=0.01).test_rooms()) == 1


def test_list_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "list.txt"
    bad.write_text("a/rgb_0.png a/sync_depth_0.png 518.8\nbroken line\n")
    with pytest.raises(Exception, match=r"list\.txt:2"):
        read_files_with_gt(bad)
