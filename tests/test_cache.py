"""The training-resolution cache (mdlearn.data.cache): round trip, staleness, complete-or-absent, ownership."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mdlearn.data import cache as cache_mod
from mdlearn.data.augment import paper_augmentation
from mdlearn.data.cache import CachedDataset, ensure_cache, write_cache
from mdlearn.data.nyu_dataset import NYUSyncDataset
from mdlearn.data.sample import SAMPLE_KEYS, check_sample
from mdlearn.data.transforms import nyu_paper_input
from mdlearn.errors import FormatError, UsageError
from mdlearn.synthetic.nyu_sync import IndoorSpec, write_indoor_dataset

SIZE = (60, 80)  # half of the 160x120 source


@pytest.fixture(scope="module")
def source_root(tmp_path_factory):
    spec = IndoorSpec(rooms=2, views_per_room=3, seed=5, test_fraction=0.5, resolution=0.25)
    out = tmp_path_factory.mktemp("cache_src") / "indoor"
    write_indoor_dataset(out, spec, workers=1, progress=False)
    return out


def expected_sample(ds: Dataset, i: int) -> dict:
    """What the cache must hold for sample i: the on-the-fly path's sample (the same resize)."""
    return nyu_paper_input(SIZE)(ds[i])


def stamp(folder):
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in sorted(folder.iterdir())}


def test_round_trip_equals_the_resized_source(source_root, tmp_path):
    src = NYUSyncDataset(source_root, "train")
    out = ensure_cache(src, tmp_path / "cache", size=SIZE, split="train", progress=False)
    cached = CachedDataset(out, "train")
    assert len(cached) == len(src) == 3
    for i in range(len(src)):
        got, want = cached[i], expected_sample(src, i)
        check_sample(got, where=f"cached[{i}]")
        assert list(got) == list(SAMPLE_KEYS)
        for k in ("name", "dataset", "split", "gt"):
            assert got[k] == want[k]
        assert (got["image"] - want["image"]).abs().max() <= 0.5 / 255 + 1e-6  # uint8 storage
        d, e = got["depth"], want["depth"]
        assert torch.equal(d > 0, e > 0) and torch.equal(got["valid"], want["valid"])
        assert ((d - e).abs() <= e * 2.0 ** -11).all()  # float16: half a unit in the last place
        assert float((d - e).abs().max()) > 0  # float16 really rounds (the test could fail)
        assert got["intrinsics"].canvas_size == SIZE
        assert torch.equal(got["intrinsics"], want["intrinsics"])
    # the augmentation applies unchanged
    torch.manual_seed(0)
    check_sample(paper_augmentation("nyu", input_size=(48, 64))(cached[0]))


def test_workers_write_the_same_cache(source_root, tmp_path):
    src = NYUSyncDataset(source_root, "train")
    a = ensure_cache(src, tmp_path / "a", size=SIZE, split="train", progress=False)
    b = ensure_cache(src, tmp_path / "b", size=SIZE, split="train", workers=2, progress=False)
    for f in ("images.npy", "depth.npy", "intrinsics.npy", "meta.json", "index.json"):
        assert (a / "train" / f).read_bytes() == (b / "train" / f).read_bytes()


def test_unchanged_source_is_reused_and_a_changed_list_regenerates(source_root, tmp_path):
    out = tmp_path / "cache"
    src = NYUSyncDataset(source_root, "train")
    ensure_cache(src, out, size=SIZE, split="train", progress=False)
    before = stamp(out / "train")
    ensure_cache(NYUSyncDataset(source_root, "train"), out, size=SIZE, split="train", progress=False)
    assert stamp(out / "train") == before  # not rewritten
    # a changed list file (one line dropped) is another source: the cache is regenerated
    lines = (source_root / "train_files_with_gt.txt").read_text().splitlines(keepends=True)
    short = tmp_path / "short.txt"
    short.write_text("".join(lines[:2]))
    src2 = NYUSyncDataset(source_root, "train", list_file=short)
    ensure_cache(src2, out, size=SIZE, split="train", progress=False)
    assert stamp(out / "train") != before
    assert len(CachedDataset(out, "train")) == 2
    # another size, or another resize, is stale too
    ensure_cache(src2, out, size=(30, 40), split="train", progress=False)
    assert CachedDataset(out, "train")[0]["image"].shape == (3, 30, 40)
    assert not list(tmp_path.glob("cache/*.partial-*")) and not list(tmp_path.glob("cache/*.old-*"))
    # a cache of an older format version is regenerated
    index = json.loads((out / "train" / "index.json").read_text())
    (out / "train" / "index.json").write_text(json.dumps({**index, "version": 0}))
    before = stamp(out / "train")
    ensure_cache(src2, out, size=(30, 40), split="train", progress=False)
    assert stamp(out / "train") != before
    assert json.loads((out / "train" / "index.json").read_text())["version"] == cache_mod.CACHE_VERSION


class Failing(Dataset):
    """A source that breaks while the cache is being written."""

    def __init__(self, inner: Dataset, fail_at: int):
        self.inner, self.fail_at = inner, fail_at

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        if i == self.fail_at:
            raise RuntimeError("disk on fire")
        return self.inner[i]


def test_a_failure_mid_write_leaves_nothing_or_the_old_cache(source_root, tmp_path):
    out = tmp_path / "cache"
    src = NYUSyncDataset(source_root, "train")
    with pytest.raises(RuntimeError, match="disk on fire"):
        ensure_cache(Failing(src, 2), out, size=SIZE, split="train", progress=False)
    assert not (out / "train").exists()
    assert [p.name for p in out.iterdir()] == []  # no partial folder left behind
    # over an existing (now stale) cache: the failure leaves the old one in place, intact
    ensure_cache(src, out, size=SIZE, split="train", progress=False)
    before = stamp(out / "train")
    with pytest.raises(RuntimeError):
        ensure_cache(Failing(src, 1), out, size=(30, 40), split="train", progress=False)
    assert stamp(out / "train") == before
    assert len(CachedDataset(out, "train")) == 3


def test_refuses_to_overwrite_a_folder_it_did_not_write(source_root, tmp_path):
    out = tmp_path / "cache"
    (out / "train").mkdir(parents=True)
    (out / "train" / "notes.txt").write_text("mine")
    src = NYUSyncDataset(source_root, "train")
    with pytest.raises(UsageError, match="train"):
        ensure_cache(src, out, size=SIZE, split="train", progress=False)
    assert (out / "train" / "notes.txt").read_text() == "mine"
    # a folder with a foreign index.json is foreign too
    (out / "train" / "index.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(UsageError):
        ensure_cache(src, out, size=SIZE, split="train", progress=False)
    # nor another mdlearn job's output (here the synthetic dataset itself)
    with pytest.raises(UsageError, match="mdlearn-indoor"):
        ensure_cache(src, source_root.parent, size=SIZE, split=source_root.name, progress=False)
    assert (source_root / "train_files_with_gt.txt").is_file()
    # and write_cache never overwrites without being asked
    ensure_cache(src, tmp_path / "ok", size=SIZE, split="train", progress=False)
    with pytest.raises(UsageError):
        write_cache(src, tmp_path / "ok", SIZE, split="train", progress=False)


def test_reading_something_that_is_not_a_cache_is_a_format_error(source_root, tmp_path):
    with pytest.raises(FormatError, match="not an mdlearn cache"):
        CachedDataset(source_root, "train")  # an mdlearn dataset, but not a cache
    src = NYUSyncDataset(source_root, "test")
    out = ensure_cache(src, tmp_path / "c", size=SIZE, split="test", progress=False)
    expected = cache_mod._expected(src, SIZE, nyu_paper_input(SIZE))
    assert cache_mod.is_current(out / "test", *expected)
    os.remove(out / "test" / "depth.npy")
    assert not cache_mod.is_current(out / "test", *expected)
    with pytest.raises(FormatError, match="incomplete"):
        CachedDataset(out, "test")


def test_cached_arrays_are_memory_mapped_with_the_documented_dtypes(source_root, tmp_path):
    out = ensure_cache(NYUSyncDataset(source_root, "train"), tmp_path / "c", size=SIZE, split="train", progress=False)
    images = np.load(out / "train" / "images.npy", mmap_mode="r")
    depth = np.load(out / "train" / "depth.npy", mmap_mode="r")
    assert isinstance(images, np.memmap) and images.dtype == np.uint8 and images.shape == (3, 3, *SIZE)
    assert depth.dtype == np.float16 and depth.shape == (3, 1, *SIZE)
    index = json.loads((out / "train" / "index.json").read_text())
    assert index["version"] == cache_mod.CACHE_VERSION and index["spec"]["source"]["content"]["entries"] and index["format"] == "mdlearn-cache"


def _identity(x):
    return x


def test_augmented_loading_is_reproducible_through_the_loader_generator(source_root, tmp_path):
    """The seeding recipe of mdlearn.data.augment: the DataLoader's generator fixes every worker's draws."""
    out = ensure_cache(NYUSyncDataset(source_root, "train"), tmp_path / "c", size=SIZE, split="train", progress=False)
    ds = CachedDataset(out, "train", transform=paper_augmentation("nyu", input_size=(48, 64)))

    def run(seed: int) -> list[torch.Tensor]:
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, collate_fn=_identity,
                                             generator=torch.Generator().manual_seed(seed))
        return [s["depth"] for s in loader] + [s["image"] for s in loader]

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


class Relabelled(Dataset):
    """The source's samples under another dataset name (a stand-in for a KITTI source)."""

    def __init__(self, inner: Dataset, dataset: str):
        self.inner, self.dataset = inner, dataset

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        return {**self.inner[i], "dataset": self.dataset}


def test_sparse_sources_must_name_their_resize_and_identity_sees_the_camera(source_root, tmp_path):
    src = NYUSyncDataset(source_root, "train")
    with pytest.raises(UsageError, match="kitti_paper_input"):
        ensure_cache(Relabelled(src, "kitti"), tmp_path / "k", size=SIZE, progress=False)
    assert not (tmp_path / "k").exists()
    from dataclasses import replace

    from mdlearn.camera import NYU_RGB

    other = NYUSyncDataset(source_root, "train", intrinsics=replace(NYU_RGB.scaled(0.25), cx=79.5))
    assert cache_mod.dataset_identity(other) != cache_mod.dataset_identity(src)
    assert cache_mod.dataset_identity(NYUSyncDataset(source_root, "train")) == cache_mod.dataset_identity(src)
