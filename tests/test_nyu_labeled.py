"""The labeled set (.mat v7.3 via h5py), splits.mat, the BTS lists, prepare_nyu_labeled."""

import hashlib
import json

import h5py
import numpy as np
import pytest
import scipy.io

from mdlearn.errors import FormatError
from mdlearn.data.formats import read_depth_png_mm, read_rgb
from mdlearn.data.nyu import NYULabeled, read_files_with_gt, read_splits, scene_of_folder
from mdlearn.data.kinect import NYU_KINECT
from mdlearn.data.nyu_dataset import NYULabeledDataset, NYUSyncDataset
from mdlearn.data.transforms import nyu_paper_input
from mdlearn.data.nyu_prepare import prepare_nyu_labeled
from mdlearn.errors import UsageError
from mdlearn.synthetic.nyu_labeled import write_labeled_mat, write_splits_mat

N, H, W = 6, 12, 16
SCENES = ["bedroom", "kitchen", "bedroom", "office", "kitchen", "bathroom"]


def _write_labeled(path, n=N):
    """A small file laid out like nyu_depth_v2_labeled.mat, written by the project's writer."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 200, (n, H, W, 3)).astype(np.uint8)
    images[:, 0, 0] = (255, 0, 0)  # a red top-left corner, to catch mirrored or rotated reads
    depths = rng.uniform(1, 9, (n, H, W)).astype(np.float32)
    depths[:, 0, :] = 0.5  # a marked top row
    raw = depths.copy()
    raw[:, :, :3] = 0  # unfilled: holes on the left
    write_labeled_mat(path, images, depths, raw, [SCENES[i % len(SCENES)] for i in range(n)])
    return images, depths, raw


@pytest.fixture
def labeled(tmp_path):
    p = tmp_path / "nyu_depth_v2_labeled.mat"
    arrays = _write_labeled(p)
    s = tmp_path / "splits.mat"
    write_splits_mat(s, [1, 3, 4, 6], [2, 5])
    return p, s, arrays


# ----------------------------------------------------------------------------- real files

def test_real_splits_have_the_documented_counts(shared_data):
    train, test = read_splits(shared_data / "nyu/splits/splits.mat")
    assert (len(train), len(test)) == (795, 654)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1, 1450))


def test_real_bts_lists_match_the_official_split(shared_data):
    _, test = read_splits(shared_data / "nyu/splits/splits.mat")
    entries = read_files_with_gt(shared_data / "nyu/splits/nyudepthv2_test_files_with_gt.txt")
    assert len(entries) == 654 and all(e.focal == 518.8579 for e in entries)
    idx = sorted(int(e.rgb.split("rgb_")[1][:5]) for e in entries)
    assert np.array_equal(np.array(idx) + 1, np.sort(test))  # XXXXX is the 0-based labeled index
    train = read_files_with_gt(shared_data / "nyu/splits/nyudepthv2_train_files_with_gt.txt")
    folders = {e.rgb.split("/")[0] for e in train}
    assert len(train) == 24231 and len(folders) == 284
    scenes = {scene_of_folder(f) for f in folders}
    assert len(scenes) == 249  # the paper's 249 training scenes, recorded in 284 folders
    assert "basement_0001" in scenes and {"basement_0001a", "basement_0001b"} <= folders


def test_real_sync_pairs_load(shared_data, tmp_path):
    root = shared_data / "nyu/sync_pairs"
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"rgb_{i:05d}.jpg sync_depth_{i:05d}.png 518.8579\n" for i in (0, 50, 100)))
    ds = NYUSyncDataset(root, list_file=lst)
    for i in range(3):
        s = ds[i]
        assert s["image"].shape == (3, 480, 640) and s["depth"].shape == (1, 480, 640)
        zeros = 1 - s["valid"].float().mean().item()
        assert 0.24 < zeros < 0.34
        assert 0.3 < s["depth"][s["valid"]].min() and s["depth"].max() < 10
    half = NYUSyncDataset(root, list_file=lst, transform=nyu_paper_input())[0]
    assert half["image"].shape == (3, 240, 320) and half["depth"].shape == (1, 240, 320)
    assert float(half["intrinsics"][0]) == pytest.approx(518.8579 / 2, abs=1e-3)


# ----------------------------------------------------------------------------- the labeled .mat

def test_labeled_reader_axis_order_not_mirrored(labeled):
    p, _, (images, depths, raw) = labeled
    with NYULabeled(p) as lab:
        assert (len(lab), lab.height, lab.width) == (N, H, W)
        for i in range(N):
            img = lab.image(i)
            assert img.shape == (H, W, 3) and tuple(img[0, 0]) == (255, 0, 0)
            np.testing.assert_array_equal(img, images[i])
            np.testing.assert_array_equal(lab.depth(i), depths[i])
            np.testing.assert_array_equal(lab.depth(i, raw=True), raw[i])
        assert lab.scene_type(1) == "kitchen"
        # what the mirrored reader of some public code would give is different
        mirrored = np.rot90(np.asarray(h5py.File(p)["images"][0]).transpose(1, 2, 0), k=-1)
        assert not np.array_equal(mirrored, images[0])


def test_unreadable_mat_files(tmp_path, shared_data):
    bad = tmp_path / "broken.mat"
    bad.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(FormatError, match="broken.mat: not a readable MATLAB v7.3"):
        NYULabeled(bad)
    with pytest.raises(FormatError, match="splits.mat: not a readable MATLAB v7.3"):
        NYULabeled(shared_data / "nyu/splits/splits.mat")  # a v5 file is not the labeled set
    with pytest.raises(FormatError, match="broken.mat: not a readable MATLAB v5"):
        read_splits(bad)
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"x": 1})
    with pytest.raises(FormatError, match="other.mat: no variable 'trainNdxs'"):
        read_splits(other)
    h = tmp_path / "h.mat"
    with h5py.File(h, "w") as f:
        f["images"] = np.zeros((2, 3, 4, 4), np.uint8)
    with pytest.raises(FormatError, match="h.mat: no depths, rawDepths"):
        NYULabeled(h)


def test_prepare_nyu_labeled_writes_pairs_lists_and_hashes(labeled, tmp_path):
    p, s, (images, depths, raw) = labeled
    out = tmp_path / "out"
    m = prepare_nyu_labeled(p, s, out, rgb_format="png", progress=False)
    assert m["counts"] == {"labeled": N, "train": 4, "test": 2}
    for rel, digest in m["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    assert json.loads((out / "index.json").read_text())["files"] == m["files"]
    assert (out / "test" / "test_files_with_gt.txt").read_text().splitlines() == [
        "kitchen/rgb_00001.png kitchen/sync_depth_00001.png 518.8579",
        "kitchen/rgb_00004.png kitchen/sync_depth_00004.png 518.8579"]
    np.testing.assert_array_equal(read_rgb(out / "test/kitchen/rgb_00001.png"), images[1])
    np.testing.assert_allclose(read_depth_png_mm(out / "test/kitchen/sync_depth_00001.png"), depths[1], atol=5e-4)
    np.testing.assert_allclose(read_depth_png_mm(out / "test/kitchen/raw_depth_00001.png"), raw[1], atol=5e-4)
    # the same samples from the extracted folder and straight from the .mat
    for kind in ("filled", "raw"):
        a = NYUSyncDataset(out / "test", "test", depth_kind=kind)
        b = NYULabeledDataset(p, s, "test", depth_kind=kind)
        assert len(a) == len(b) == 2
        for i in range(2):
            sa, sb = a[i], b[i]
            assert sa["name"].split(".")[0] == sb["name"]
            assert np.array_equal(sa["image"].numpy(), sb["image"].numpy())
            np.testing.assert_allclose(sa["depth"].numpy(), sb["depth"].numpy(), atol=5e-4)
    half = NYULabeledDataset(p, s, "train", transform=nyu_paper_input((H // 2, W // 2)))[0]
    assert half["image"].shape == (3, H // 2, W // 2)
    assert float(half["intrinsics"][0]) == pytest.approx(NYU_KINECT.rgb.fx * W / 640 / 2)
    with pytest.raises(UsageError, match="already holds files"):
        prepare_nyu_labeled(p, s, out, progress=False)


def test_prepare_nyu_labeled_checks_the_split(labeled, tmp_path):
    p, _, _ = labeled
    s = tmp_path / "short.mat"
    scipy.io.savemat(s, {"trainNdxs": np.array([[1], [3]]), "testNdxs": np.array([[2], [5]])})
    with pytest.raises(FormatError, match="short.mat: the 2 train \\+ 2 test indices do not cover the 6 images"):
        prepare_nyu_labeled(p, s, tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()
