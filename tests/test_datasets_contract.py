"""The contract every mdlearn Dataset keeps (in the spirit of torchvision's ``DatasetTestCase``).

Each Dataset class runs over fixtures written by the project's own writers (tiny sizes,
module-scoped): the synthetic indoor world in the sync layout, a synthetic NYU raw dump prepared by
``prepare_nyu_raw``, a labeled ``.mat`` and its extraction by ``prepare_nyu_labeled``, and synthetic
KITTI drives prepared by ``prepare_kitti_raw``. Every case checks length, keys, dtypes, units,
intrinsics (image size and the known camera), repr, errors for a bad split and a wrong layout, and
that torchvision v2 flips, crops and resizes move image, depth, mask and camera together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import scipy.io
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from mdlearn.data.cache import CachedDataset, ensure_cache
from mdlearn.data.kinect import NYU_KINECT
from mdlearn.data.kitti import read_split
from mdlearn.data.kitti_dataset import KittiDepthDataset
from mdlearn.data.kitti_prepare import prepare_kitti_raw
from mdlearn.data.nyu_dataset import NYULabeledDataset, NYUSyncDataset
from mdlearn.data.nyu_prepare import prepare_nyu_labeled, prepare_nyu_raw
from mdlearn.data.sample import SAMPLE_KEYS, CameraIntrinsics, check_sample
from mdlearn.errors import FormatError, UsageError
from mdlearn.synthetic.kitti_raw import DATE, KittiRawSpec, write_kitti_raw
from mdlearn.synthetic.nyu_raw import KinectSpec, write_nyu_raw
from mdlearn.synthetic.nyu_sync import read_index
from mdlearn.synthetic.velodyne import rig_for_size
from test_nyu_labeled import H as LAB_H, W as LAB_W, _write_labeled

KITTI_SPEC = KittiRawSpec(drives=2, frames_per_drive=3, seed=5, resolution=0.1, azimuth_steps=300)
NYU_RAW_SPEC = KinectSpec(scenes=1, frames_per_scene=4, seed=7, resolution=0.25)


@dataclass
class Case:
    """One Dataset over one fixture: how to build it and what it must serve."""

    name: str
    make: Callable[..., Any]  # keyword arguments (transform=, split=) -> the Dataset
    length: int
    root: Path  # what the repr must name
    split: str
    dataset: str
    gt: str
    camera: Callable[[dict], list[float]]  # the known [fx, fy, cx, cy] of a sample's image
    depth_range: tuple[float, float]  # plausible metres for this data
    dense: bool  # every pixel has depth (synthetic renders)
    wrong_layout: Callable[[Path], tuple[Path, Callable[[], Any]]]  # (the path the error must name, build it)


def _known(K) -> list[float]:
    return [K.fx, K.fy, K.cx, K.cy]


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def nyu_prepared(tmp_path_factory):
    base = tmp_path_factory.mktemp("contract_nyu_raw")
    write_nyu_raw(base / "raw", NYU_RAW_SPEC, progress=False)
    report = prepare_nyu_raw(base / "raw", base / "sync", workers=1, progress=False)
    return base / "sync", report


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    base = tmp_path_factory.mktemp("contract_labeled")
    mat, splits = base / "nyu_depth_v2_labeled.mat", base / "splits.mat"
    _write_labeled(mat)
    scipy.io.savemat(splits, {"trainNdxs": np.array([[1], [3], [4], [6]]), "testNdxs": np.array([[2], [5]])})
    prepare_nyu_labeled(mat, splits, base / "extracted", rgb_format="png", progress=False)
    return mat, splits, base / "extracted"


@pytest.fixture(scope="module")
def kitti(tmp_path_factory):
    base = tmp_path_factory.mktemp("contract_kitti")
    write_kitti_raw(base / "raw", KITTI_SPEC, workers=1, progress=False)
    report = prepare_kitti_raw(base / "raw", base / "prep", workers=1, progress=False)
    return base / "raw", base / "prep", report


def _nyu_wrong_layout(tmp: Path):
    (tmp / "scene").mkdir(exist_ok=True)  # a folder of scenes but no list files
    return tmp / "train_files_with_gt.txt", lambda: NYUSyncDataset(tmp, "train")


def _labeled_wrong_layout(tmp: Path):
    mat = tmp / "nyu_depth_v2_labeled.mat"
    mat.write_bytes(b"this is not a MATLAB file" * 40)
    scipy.io.savemat(tmp / "splits.mat", {"trainNdxs": np.array([[1]]), "testNdxs": np.array([[2]])})
    return mat, lambda: NYULabeledDataset(mat, tmp / "splits.mat", "test")


CASES = ["indoor", "nyu-raw-prepared", "labeled-extracted-raw", "labeled-mat", "kitti-all", "kitti-test-split",
         "cached-indoor"]


def tmp_cache(request) -> Path:
    return request.getfixturevalue("tmp_path_factory").mktemp("cache") / "cache"


@pytest.fixture(scope="module", params=CASES)
def case(request, small_dataset) -> Case:
    name = request.param
    if name == "indoor":
        root, spec = small_dataset
        n = read_index(root)["counts"]["train_views"]
        return Case(name, lambda **kw: NYUSyncDataset(root, kw.pop("split", "train"), **kw), n, root, "train",
                    "nyu-sync", "filled", lambda s: _known(spec.intrinsics), (0.2, 10.0), True,
                    _nyu_wrong_layout)
    if name == "cached-indoor":
        root, spec = small_dataset
        cache = ensure_cache(NYUSyncDataset(root, "train"), tmp_cache(request), size=(60, 80), progress=False)
        n = read_index(root)["counts"]["train_views"]
        camera = lambda s: _known(spec.intrinsics.scaled(80 / spec.intrinsics.width))  # noqa: E731
        return Case(name, lambda **kw: CachedDataset(cache, kw.pop("split", "train"), **kw), n, cache, "train",
                    "nyu-sync", "filled", camera, (0.2, 10.0), True,
                    lambda tmp: (tmp / "train", lambda: CachedDataset(tmp, "train")))
    if name == "nyu-raw-prepared":
        root, report = request.getfixturevalue("nyu_prepared")
        return Case(name, lambda **kw: NYUSyncDataset(root, list_file=root / "files_with_gt.txt", **kw),
                    report.counts["frames"], root, "list", "nyu-sync", "filled",
                    lambda s: _known(NYU_KINECT.for_size(160, 120).rgb), (0.2, 10.0), False, _nyu_wrong_layout)
    if name == "labeled-extracted-raw":
        _, _, ext = request.getfixturevalue("labeled")
        return Case(name, lambda **kw: NYUSyncDataset(ext / "test", kw.pop("split", "test"), depth_kind="raw", **kw),
                    2, ext / "test", "test", "nyu-sync", "raw",
                    lambda s: _known(NYU_KINECT.for_size(LAB_W, LAB_H).rgb), (0.2, 10.0), False, _nyu_wrong_layout)
    if name == "labeled-mat":
        mat, splits, _ = request.getfixturevalue("labeled")
        return Case(name, lambda **kw: NYULabeledDataset(mat, splits, kw.pop("split", "test"), **kw), 2, mat,
                    "test", "nyu-labeled", "filled", lambda s: _known(NYU_KINECT.for_size(LAB_W, LAB_H).rgb),
                    (0.2, 10.0), True, _labeled_wrong_layout)
    raw, prep, report = request.getfixturevalue("kitti")
    rig = rig_for_size(KITTI_SPEC.resolution)
    camera = lambda s: _known(rig.intrinsics(2 if "/image_02/" in s["name"] else 3))  # noqa: E731
    if name == "kitti-all":
        n = 2 * (2 * KITTI_SPEC.frames_per_drive)
        return Case(name, lambda **kw: KittiDepthDataset(raw, prep, drop_stationary=False, **kw), n, raw, "all",
                    "kitti", "camz_time", camera, (1.0, 120.0), False,
                    lambda tmp: (tmp, lambda: KittiDepthDataset(tmp, prep)))
    n_test = sum(len(e.sides) for e in read_split(raw / "splits" / "test_files.txt"))
    return Case(name, lambda **kw: KittiDepthDataset(raw, prep, split=kw.pop("split", "test"), **kw), n_test, raw,
                "test", "kitti", "camz_time", camera, (1.0, 120.0), False,
                lambda tmp: (raw, lambda: KittiDepthDataset(raw, raw)))  # raw drives are no ground-truth folder


@pytest.fixture(scope="module")
def dataset(case):
    return case.make()


@pytest.fixture(scope="module")
def sample(dataset):
    return dataset[0]


# ------------------------------------------------------------------------------- the contract


def test_length(case, dataset):
    assert len(dataset) == case.length > 0


def test_keys_types_and_metadata(case, dataset):
    for i in (0, len(dataset) - 1):
        s = dataset[i]
        assert tuple(s) == SAMPLE_KEYS
        check_sample(s, f"{case.name}[{i}]")
        assert isinstance(s["image"], tv_tensors.Image) and s["image"].dtype == torch.float32
        assert isinstance(s["depth"], tv_tensors.Mask) and s["depth"].dtype == torch.float32
        assert isinstance(s["valid"], tv_tensors.Mask) and s["valid"].dtype == torch.bool
        assert isinstance(s["intrinsics"], CameraIntrinsics)
        assert (s["dataset"], s["split"], s["gt"]) == (case.dataset, case.split, case.gt)
        assert s["name"]
    names = [dataset[i]["name"] for i in range(len(dataset))]
    assert len(set(names)) == len(names)


def test_units(case, sample):
    img, depth, valid = sample["image"], sample["depth"], sample["valid"]
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0 and float(img.max()) > 0.05
    assert bool(torch.isfinite(depth).all()) and float(depth.min()) >= 0.0
    assert torch.equal(valid, depth > 0)
    lo, hi = case.depth_range
    d = depth[valid]
    assert d.numel() > 0 and lo <= float(d.min()) and float(d.max()) <= hi  # metres, not mm or KITTI units
    if case.dense:
        assert bool(valid.all())
    else:
        assert not bool(valid.all())  # real holes / sparse laser points are served as 0


def test_intrinsics_match_the_image_and_the_known_camera(case, sample):
    K = sample["intrinsics"]
    assert K.canvas_size == tuple(sample["image"].shape[-2:])
    assert K.tolist() == pytest.approx(case.camera(sample), rel=1e-5, abs=1e-4)


def test_repr_names_class_root_split_and_size(case, dataset):
    r = repr(dataset)
    assert r.startswith(type(dataset).__name__ + "(")
    assert str(case.root) in r and repr(case.split) in r and f"size={len(dataset)}" in r


def test_bad_split_is_a_usage_error(case):
    with pytest.raises(UsageError, match="split"):
        case.make(split="validation-set")


def test_wrong_layout_fails_early_with_a_clear_error(case, tmp_path):
    path, build = case.wrong_layout(tmp_path)
    with pytest.raises(FormatError) as err:
        build()
    msg = str(err.value)
    assert msg.startswith(f"{path}:")  # names the path first ...
    assert "expected" in msg or "not a readable MATLAB" in msg  # ... and what should be there


def test_transform_receives_the_sample(case, sample):
    flipped = case.make(transform=v2.RandomHorizontalFlip(p=1.0))[0]
    assert torch.equal(flipped["depth"], sample["depth"].flip(-1))


# ------------------------------------------------------------------- geometry under v2 transforms


def _pixels(s: dict, n: int = 25) -> list[tuple[int, int, float]]:
    """Up to ``n`` valid pixels ``(u, v, depth)`` spread over the image."""
    v, u = torch.nonzero(s["valid"][0], as_tuple=True)
    pick = np.linspace(0, len(u) - 1, min(n, len(u))).round().astype(int)
    return [(int(u[i]), int(v[i]), float(s["depth"][0, v[i], u[i]])) for i in pick]


def _back(K, u, v, d):
    fx, fy, cx, cy = K.tolist()
    return ((u - cx) / fx * d, (v - cy) / fy * d, d)


def _proj(K, X):
    fx, fy, cx, cy = K.tolist()
    return fx * X[0] / X[2] + cx, fy * X[1] / X[2] + cy


def _consistent(t: dict) -> None:
    check_sample(t, "transformed")
    assert t["intrinsics"].canvas_size == tuple(t["image"].shape[-2:]) == tuple(t["depth"].shape[-2:])


def test_flip_moves_everything_together(sample):
    t = v2.RandomHorizontalFlip(p=1.0)(sample)
    _consistent(t)
    W = sample["image"].shape[-1]
    for key in ("image", "depth", "valid"):
        assert torch.equal(t[key][..., torch.arange(W)], sample[key][..., W - 1 - torch.arange(W)])
    for u, v, d in _pixels(sample):
        X, Y, Z = _back(sample["intrinsics"], u, v, d)
        u2, v2_ = _proj(t["intrinsics"], (-X, Y, Z))  # the flipped image sees the mirrored world
        assert (u2, v2_) == pytest.approx((W - 1 - u, v), abs=1e-6)
        assert float(t["depth"][0, v, W - 1 - u]) == d


def test_crop_moves_everything_together(sample):
    H, W = sample["image"].shape[-2:]
    top, left, h, w = H // 5, W // 7, H - H // 5 - 1, W - W // 7 - 2
    t = {k: (v2.functional.crop(x, top, left, h, w) if isinstance(x, tv_tensors.TVTensor) else x)
         for k, x in sample.items()}
    rc = v2.RandomCrop((h, w))
    torch.manual_seed(0)
    t2 = rc(sample)
    _consistent(t)
    _consistent(t2)
    assert t["image"].shape[-2:] == (h, w)
    for u, v, d in _pixels(sample, 60):
        if not (top <= v < top + h and left <= u < left + w):
            continue
        assert float(t["depth"][0, v - top, u - left]) == d and bool(t["valid"][0, v - top, u - left])
        assert _proj(t["intrinsics"], _back(sample["intrinsics"], u, v, d)) == pytest.approx((u - left, v - top),
                                                                                             abs=1e-6)
    # the random crop: find where it cut from the image, then check the camera moved by that much
    fx, fy, cx, cy = sample["intrinsics"].tolist()
    dx, dy = cx - float(t2["intrinsics"][2]), cy - float(t2["intrinsics"][3])
    assert dx == int(dx) and dy == int(dy)
    assert torch.equal(t2["image"], sample["image"][:, int(dy):int(dy) + h, int(dx):int(dx) + w])
    assert torch.equal(t2["depth"], sample["depth"][:, int(dy):int(dy) + h, int(dx):int(dx) + w])


def test_resize_moves_everything_together(sample):
    H, W = sample["image"].shape[-2:]
    h, w = H // 2, W // 2
    t = v2.Resize((h, w))(sample)
    _consistent(t)
    assert t["image"].shape[-2:] == (h, w)
    assert torch.equal(t["valid"], t["depth"] > 0)
    for u, v, d in _pixels(t):
        # nearest-neighbour: the depth of a new pixel is one of the old depths of its block ...
        block = sample["depth"][0, math.floor(v * H / h):math.ceil((v + 1) * H / h),
                                math.floor(u * W / w):math.ceil((u + 1) * W / w)]
        assert d in block.flatten().tolist()
        # ... and the old pixel it came from projects into the new pixel
        su, sv = math.floor(u * W / w), math.floor(v * H / h)  # torch's nearest source pixel
        assert float(sample["depth"][0, sv, su]) == d
        pu, pv = _proj(t["intrinsics"], _back(sample["intrinsics"], su, sv, d))
        assert abs(pu - u) <= 0.5 + 1e-9 and abs(pv - v) <= 0.5 + 1e-9


# ------------------------------------------------------------------- defects each Dataset catches


def test_a_kitti_map_in_an_nyu_folder_is_refused_naming_the_file(small_dataset, tmp_path):
    """A depth PNG without an encoding record holding KITTI units (metres x 256) reads as
    millimetres with maxima near 21.7 m: the Dataset's range check names the file."""
    import shutil

    from PIL import Image

    root, _ = small_dataset
    copy = tmp_path / "indoor"
    shutil.copytree(root, copy)
    ds = NYUSyncDataset(copy, "train")
    bad = ds.depth_path(0)
    Image.fromarray(np.full((120, 160), round(85.0 * 256), np.uint16)).save(bad)
    with pytest.raises(FormatError, match=rf"{bad}: depth up to 21\.76 m, beyond the 10 m"):
        ds[0]


def test_kitti_unknown_variant_is_a_usage_error(kitti):
    raw, prep, _ = kitti
    with pytest.raises(UsageError, match="variant must be one of camz_time"):
        KittiDepthDataset(raw, prep, variant="camz")  # the prepare --variant, not a ground-truth tag
