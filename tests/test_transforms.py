"""mdlearn.data.transforms: the paper's input sizes, the sparse-aware resize, the fine network's crop."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlearn.data.sample import check_sample, make_sample
from mdlearn.data.transforms import (KITTI_PAPER_SIZE, BottomCrop, KittiPaperCrop, SparseDepthResize,
                                     kitti_paper_input, nyu_paper_input, sample_capture_times, sparse_resize,
                                     sparse_rule_for)
from mdlearn.errors import UsageError

KITTI_K = (721.5377, 721.5377, 609.5593, 172.854)  # P_rect_02 of 2011_09_26


def _sample(depth, gt="camz_time", K=None, rgb=None):
    depth = np.asarray(depth, np.float32)
    h, w = depth.shape
    if rgb is None:
        rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3)).astype(np.uint8)
    return make_sample(rgb, depth, K or (100.0, 100.0, (w - 1) / 2, (h - 1) / 2), name="x", dataset="kitti",
                       split="test", gt=gt)


def _sparse(rng, h, w, density=0.3):
    d = rng.uniform(1.0, 80.0, (h, w)).astype(np.float32)
    return np.where(rng.random((h, w)) < density, d, 0.0).astype(np.float32)


def _blocks(h, w, oh, ow):
    """Input rows/columns each output pixel receives (pixel centre inside it)."""
    rows = [[v for v in range(h) if min(math.floor((v + 0.5) * oh / h), oh - 1) == i] for i in range(oh)]
    cols = [[u for u in range(w) if min(math.floor((u + 0.5) * ow / w), ow - 1) == j] for j in range(ow)]
    return rows, cols


@settings(max_examples=40, deadline=None)
@given(h=st.integers(2, 24), w=st.integers(2, 24), oh=st.integers(1, 12), ow=st.integers(1, 12),
       rule=st.sampled_from(["nearest", "time"]), seed=st.integers(0, 2**16))
def test_sparse_resize_never_invents_or_averages_a_depth(h, w, oh, ow, rule, seed):
    d = _sparse(np.random.default_rng(seed), h, w)
    out = sparse_resize(torch.from_numpy(d), torch.from_numpy(d > 0), oh, ow, rule).numpy()
    assert out.shape == (oh, ow)
    rows, cols = _blocks(h, w, oh, ow)
    for i in range(oh):
        for j in range(ow):
            block = d[np.ix_(rows[i], cols[j])] if rows[i] and cols[j] else np.zeros(0, np.float32)
            valid = block[block > 0]
            if valid.size == 0:
                assert out[i, j] == 0  # nothing there: no depth invented
            else:
                assert out[i, j] in valid  # exactly one of the samples of its block, never a mean
                if rule == "nearest":
                    assert out[i, j] == valid.min()


def test_nearest_rule_keeps_the_block_minimum_and_time_rule_the_sample_captured_closest_in_time():
    d = np.array([[0, 9, 4, 0],
                  [3, 0, 0, 0],
                  [0, 0, 0, 0],
                  [0, 0, 0, 7]], np.float32)
    t = torch.from_numpy(d)
    assert sparse_resize(t, t > 0, 2, 2, "nearest").tolist() == [[3, 4], [0, 7]]
    # principal point at column 1.5: column 1 faces the scanner's forward direction more
    # closely than column 0, so it was captured closer to the image, whatever its depth
    assert sparse_resize(t, t > 0, 2, 2, "time").tolist() == [[9, 4], [0, 7]]
    d2 = d.copy()
    d2[0, 1], d2[1, 0] = 3, 9
    t2 = torch.from_numpy(d2)
    assert sparse_resize(t2, t2 > 0, 2, 2, "time").tolist() == [[3, 4], [0, 7]]
    # move the principal point to the far left: now column 0 is the earlier one... and wins
    assert sparse_resize(t, t > 0, 2, 2, "time", camera=(10.0, 10.0, -5.0, 1.5)).tolist() == [[3, 4], [0, 7]]
    # the same column: equal capture times, the nearer sample wins (resolve_conflicts' tie rule)
    d3 = np.zeros((2, 2), np.float32)
    d3[0, 1], d3[1, 1] = 20.0, 6.0
    t3 = torch.from_numpy(d3)
    assert sparse_resize(t3, t3 > 0, 1, 1, "time").item() == 6.0


def test_time_rule_mirrors_about_the_principal_point():
    # left of the principal point the right column of a block wins, right of it the left one
    d = np.zeros((2, 8), np.float32)
    d[0, :] = [5, 50, 5, 50, 50, 5, 50, 5]
    t = torch.from_numpy(d)
    assert sparse_resize(t, t > 0, 1, 4, "time").tolist() == [[50, 50, 50, 50]]
    assert sparse_resize(t, t > 0, 1, 4, "nearest").tolist() == [[5, 5, 5, 5]]


@settings(max_examples=30, deadline=None)
@given(h=st.integers(2, 16), w=st.integers(2, 20), oh=st.integers(1, 8), ow=st.integers(1, 10),
       cx=st.floats(-5.0, 25.0), fx=st.floats(5.0, 800.0), seed=st.integers(0, 2**16))
def test_time_rule_is_the_smallest_capture_time_by_brute_force(h, w, oh, ow, cx, fx, seed):
    d = _sparse(np.random.default_rng(seed), h, w, density=0.5)
    out = sparse_resize(torch.from_numpy(d), torch.from_numpy(d > 0), oh, ow, "time",
                        camera=(fx, fx, cx, h / 2)).numpy()
    rows, cols = _blocks(h, w, oh, ow)
    for i in range(oh):
        for j in range(ow):
            cand = [(abs(math.atan2(-(u - cx), fx)), float(d[v, u])) for v in rows[i] for u in cols[j]
                    if d[v, u] > 0]
            # the azimuth seen from the camera, |phi|, orders the capture times; then the depth
            assert out[i, j] == (min(cand)[1] if cand else 0.0)


def test_sample_capture_times_follow_the_counter_clockwise_sweep():
    t = sample_capture_times(np.array([0.0, 100.0]), np.array([10.0, 10.0]), (100.0, 100.0, 50.0, 20.0))
    # left of the principal point (u < cx): y left > 0, azimuth > 0, captured after the image
    assert t[0] == pytest.approx(math.atan2(0.5, 1.0) / (2 * math.pi * 10.0))
    assert t[1] == pytest.approx(-t[0])


def test_only_valid_samples_take_part():
    d = torch.tensor([[2.0, 5.0], [6.0, 7.0]])
    valid = torch.tensor([[False, True], [True, True]])
    assert sparse_resize(d, valid, 1, 1, "nearest").item() == 5.0
    assert sparse_resize(d, valid, 1, 1, "time").item() == 5.0


def test_auto_rule_follows_the_ground_truth():
    d = np.zeros((4, 4), np.float32)
    d[0, 1], d[1, 0] = 9.0, 3.0
    assert SparseDepthResize(size=(2, 2))(_sample(d, "velx_nearest"))["depth"][0, 0, 0] == 3.0
    assert SparseDepthResize(size=(2, 2))(_sample(d, "camz_time"))["depth"][0, 0, 0] == 9.0
    assert SparseDepthResize(size=(2, 2))(_sample(d, "annotated"))["depth"][0, 0, 0] == 9.0
    assert sparse_rule_for("camz_nearest") == "nearest"
    with pytest.raises(UsageError, match="'filled'"):
        SparseDepthResize(scale=0.5)(_sample(d, "filled"))
    with pytest.raises(UsageError):
        SparseDepthResize(scale=0.5, rule="mean")
    with pytest.raises(UsageError):
        SparseDepthResize()


def test_sparse_resize_keeps_image_mask_and_camera_consistent():
    rng = np.random.default_rng(3)
    d = _sparse(rng, 30, 40)
    s = _sample(d, "camz_time", K=(50.0, 52.0, 19.3, 14.1))
    t = SparseDepthResize(size=(10, 16))(s)
    check_sample(t, "resized")
    assert t["image"].shape == (3, 10, 16) and torch.equal(t["valid"], t["depth"] > 0)
    fx, fy, cx, cy = t["intrinsics"].tolist()
    assert (fx, fy) == pytest.approx((50.0 * 16 / 40, 52.0 * 10 / 30))
    # every output sample came from an input sample whose 3D point projects into that output pixel
    v, u = np.nonzero(d)
    for vv, uu in zip(v, u):
        i, j = math.floor((vv + 0.5) * 10 / 30), math.floor((uu + 0.5) * 16 / 40)
        X = ((uu - 19.3) / 50.0, (vv - 14.1) / 52.0)
        pu, pv = fx * X[0] + cx, fy * X[1] + cy
        assert abs(pu - j) <= 0.5 + 1e-9 and abs(pv - i) <= 0.5 + 1e-9
        assert t["depth"][0, i, j] > 0


def test_kitti_paper_path_gives_612x184_with_the_right_camera():
    rng = np.random.default_rng(1)
    d = _sparse(rng, 375, 1242, density=0.05)
    s = _sample(d, "camz_nearest", K=KITTI_K)
    t = kitti_paper_input()(s)
    check_sample(t, "kitti paper input")
    assert tuple(t["image"].shape[-2:]) == KITTI_PAPER_SIZE == (184, 612) and t["depth"].shape == (1, 184, 612)
    fx, fy, cx, cy = KITTI_K
    # crop: 9 columns off each side, 7 rows off the top; then halve (u -> (u + 0.5) / 2 - 0.5)
    assert t["intrinsics"].tolist() == pytest.approx([fx / 2, fy / 2, (cx - 9 + 0.5) / 2 - 0.5,
                                                      (cy - 7 + 0.5) / 2 - 0.5])
    crop = d[7:, 9:1233]
    assert KittiPaperCrop()(s)["depth"][0].numpy().tolist() == crop.tolist()
    # nearest rule: every output depth is the minimum of its 2x2 block of the crop
    blocks = np.where(crop > 0, crop, np.inf).reshape(184, 2, 612, 2).min(axis=(1, 3))
    np.testing.assert_array_equal(t["depth"][0].numpy(), np.where(np.isfinite(blocks), blocks, 0))


def test_kitti_crop_of_a_smaller_synthetic_image_keeps_the_proportions():
    s = _sample(np.ones((94, 310), np.float32))
    assert KittiPaperCrop().crop_box(94, 310) == (2, 2, 92, 306)
    t = KittiPaperCrop()(s)
    assert t["image"].shape == (3, 92, 306) and t["intrinsics"].canvas_size == (92, 306)
    assert KittiPaperCrop().crop_box(370, 1226) == (2, 1, 368, 1224)  # a 2011_09_30 image


def test_bottom_crop_moves_the_camera():
    d = np.arange(1, 47 * 20 + 1, dtype=np.float32).reshape(47, 20)
    s = _sample(d, K=(30.0, 30.0, 9.5, 23.0))
    t = BottomCrop()(s)
    top = int(0.4 * 47)
    assert t["image"].shape == (3, 47 - top, 20)
    assert torch.equal(t["depth"], s["depth"][:, top:])
    assert t["intrinsics"].tolist() == [30.0, 30.0, 9.5, 23.0 - top]
    with pytest.raises(UsageError):
        BottomCrop(1.2)


def test_nyu_paper_input_halves_with_nearest_depth():
    rng = np.random.default_rng(2)
    d = rng.uniform(0.5, 9.0, (480, 640)).astype(np.float32)
    d[rng.random((480, 640)) < 0.2] = 0
    s = make_sample(rng.integers(0, 256, (480, 640, 3)).astype(np.uint8), d, (518.8579, 519.4696, 324.58, 252.74),
                    name="x", dataset="nyu-sync", split="test", gt="raw")
    t = nyu_paper_input()(s)
    check_sample(t, "nyu paper input")
    assert t["image"].shape == (3, 240, 320)
    np.testing.assert_array_equal(t["depth"][0].numpy(), d[::2, ::2])  # never a mix of depths
    assert torch.equal(t["valid"], t["depth"] > 0)
    assert t["intrinsics"].tolist() == pytest.approx([518.8579 / 2, 519.4696 / 2, (324.58 + 0.5) / 2 - 0.5,
                                                      (252.74 + 0.5) / 2 - 0.5])


@pytest.mark.parametrize("frame", ["0000000005", "0000000050", "0000000100"])
def test_kitti_paper_input_on_real_annotated_ground_truth(shared_data, frame):
    """A real 1242x375 KITTI map through the paper's path: exactly 612x184, square pixels, and
    every output depth the one the time rule picks among the samples of its 2x2 block."""
    from mdlearn.data.formats import read_depth_png_kitti, read_rgb

    pairs = shared_data / "kitti" / "gt_pairs"
    depth = read_depth_png_kitti(pairs / "depth" / f"{frame}.png")
    s = _sample(depth, "annotated", K=KITTI_K, rgb=read_rgb(pairs / "rgb" / f"{frame}.png"))
    t = kitti_paper_input()(s)
    assert tuple(t["depth"].shape[-2:]) == KITTI_PAPER_SIZE
    fx, fy, _, _ = t["intrinsics"].tolist()
    assert fx / fy == pytest.approx(KITTI_K[0] / KITTI_K[1], abs=1e-12)
    crop = depth[7:, 9:1233].reshape(184, 2, 612, 2).transpose(0, 2, 1, 3).reshape(184, 612, 4)
    cols = (np.arange(1224).reshape(612, 2) - (KITTI_K[2] - 9))  # crop columns minus cx
    out = t["depth"][0].numpy()
    for i, j in zip(*np.nonzero(crop.max(-1) > 0)):
        cand = [(abs(cols[j, k % 2]), crop[i, j, k]) for k in range(4) if crop[i, j, k] > 0]
        assert out[i, j] == min(cand)[1]
    assert ((out > 0) == (crop.max(-1) > 0)).all()
