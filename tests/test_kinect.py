"""mdlearn.data.kinect: raw Kinect encodings (real byte order), conversions, distortion, registration."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlearn.camera import Intrinsics
from mdlearn.data.formats import read_depth_png_mm
from mdlearn.errors import FormatError, UsageError
from mdlearn.data.kinect import (ACCEL_STRUCT, NYU_KINECT, RAW_INVALID, TOOLBOX_R, TOOLBOX_T, AccelRecord,
                                 Distortion, KinectCalibration, disparity_to_metres, format_raw_name, mask_min_max,
                                 metres_to_disparity, parse_raw_name, read_accel_dump, read_kinect_depth,
                                 read_kinect_disparity, read_kinect_ppm, register_depth, register_depth_toolbox,
                                 NYU_MAX_DEPTH, TOOLBOX_MIN_RAW, undistort_rgb,
                                 write_accel_dump, write_kinect_pgm, write_kinect_ppm)


# ----------------------------------------------------------------------------- the real frame

def test_real_depth_frame_decodes_to_the_documented_values(shared_data):
    raw = read_kinect_disparity(shared_data / "nyu/raw_frame/NYU_depth.pgm")
    assert raw.shape == (480, 640) and raw.dtype == np.uint16
    assert (raw.min(), raw.max()) == (839, 2047)
    assert (raw == RAW_INVALID).sum() == 22199
    m = read_kinect_depth(shared_data / "nyu/raw_frame/NYU_depth.pgm")
    valid = m[m > 0]
    assert valid.size == raw.size - 22199
    assert valid.min() == pytest.approx(1.39, abs=0.005) and valid.max() == pytest.approx(6.69, abs=0.005)


def test_real_depth_frame_read_big_endian_is_rejected(shared_data, tmp_path):
    # the header claims big-endian; honouring it gives values far beyond 11 bits, which we refuse
    data = (shared_data / "nyu/raw_frame/NYU_depth.pgm").read_bytes()
    payload = np.frombuffer(data[17:], dtype="<u2").astype(">u2").tobytes()  # swap: a "standard" PGM
    swapped = tmp_path / "be.pgm"
    swapped.write_bytes(data[:17] + payload)
    with pytest.raises(FormatError, match="be.pgm.*11 bits"):
        read_kinect_disparity(swapped)


def test_real_rgb_frame(shared_data):
    rgb = read_kinect_ppm(shared_data / "nyu/raw_frame/NYU_color.ppm")
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8 and rgb.std() > 10


def _edge_score(depth, gray, dx, dy, border=20):
    a, b, c = depth[:-1, :-1], depth[:-1, 1:], depth[1:, :-1]
    jump = lambda p, q: (p > 0) & (q > 0) & (np.abs(p - q) > 0.05 * np.minimum(p, q))  # noqa: E731
    edges = np.roll(jump(a, b) | jump(a, c), (dy, dx), axis=(0, 1))
    g = np.hypot(np.abs(np.diff(gray, axis=1))[:-1, :], np.abs(np.diff(gray, axis=0))[:, :-1])
    edges[:border] = edges[-border:] = False
    edges[:, :border] = edges[:, -border:] = False
    return g[edges].mean()


def test_real_frame_registered_depth_edges_line_up_with_the_image(shared_data):
    """Depth discontinuities of the registered frame sit on image edges: shifting the depth edges
    by any offset in a +-6 px window lowers the mean image gradient found under them."""
    raw = read_kinect_disparity(shared_data / "nyu/raw_frame/NYU_depth.pgm")
    gray = undistort_rgb(read_kinect_ppm(shared_data / "nyu/raw_frame/NYU_color.ppm")).astype(float).mean(2)
    reg = register_depth(raw)
    assert 0.6 < (reg > 0).mean() < 0.9
    scores = {(dx, dy): _edge_score(reg, gray, dx, dy) for dx in range(-6, 7) for dy in range(-6, 7)}
    best = max(scores, key=scores.get)
    assert abs(best[0]) <= 1 and abs(best[1]) <= 1, best
    far = np.mean([v for (dx, dy), v in scores.items() if max(abs(dx), abs(dy)) == 6])
    assert scores[(0, 0)] > 1.5 * far
    # the unregistered frame (depth-camera pixels) lines up worse with the RGB image
    unreg = disparity_to_metres(raw)
    assert _edge_score(unreg, gray, 0, 0) < 0.85 * scores[(0, 0)]


# ----------------------------------------------------------------------------- round trips

@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31))
def test_pgm_round_trip_real_byte_order(h, w, seed):
    import tempfile
    from pathlib import Path

    raw = np.random.default_rng(seed).integers(0, 2048, (h, w)).astype(np.uint16)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "d-1.0-1.pgm"
        write_kinect_pgm(p, raw)
        data = p.read_bytes()
        assert data.startswith(f"P5\n{w} {h}\n65535\n".encode())
        payload = data[len(f"P5\n{w} {h}\n65535\n"):]
        assert payload[:2] == struct.pack("<H", int(raw[0, 0]))  # little-endian on disk
        np.testing.assert_array_equal(read_kinect_disparity(p), raw)


def test_ppm_and_accel_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 9, 3)).astype(np.uint8)
    write_kinect_ppm(tmp_path / "r.ppm", rgb)
    np.testing.assert_array_equal(read_kinect_ppm(tmp_path / "r.ppm"), rgb)
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "r.ppm")), rgb)  # a standard PPM
    rec = AccelRecord(-12, -810, 95, 3, 4)
    write_accel_dump(tmp_path / "a.dump", rec)
    assert (tmp_path / "a.dump").stat().st_size == ACCEL_STRUCT.size == 12
    back = read_accel_dump(tmp_path / "a.dump")
    assert back == rec
    assert np.linalg.norm(back.mks()) == pytest.approx(9.80665 * np.linalg.norm([12, 810, 95]) / 819)


def test_raw_names():
    n = format_raw_name("d", 1315403270.612296, 3850951695)
    assert n == "d-1315403270.612296-3850951695.pgm"
    p = parse_raw_name(n)
    assert (p.kind, p.timestamp, p.counter) == ("d", 1315403270.612296, 3850951695)
    assert parse_raw_name("r-12941.6324869-2938947.ppm").timestamp == 12941.6324869
    assert parse_raw_name("INDEX.txt") is None and parse_raw_name("d-1.0-2.ppm") is None


# ----------------------------------------------------------------------------- bad files

@pytest.mark.parametrize("content, message", [
    (b"P5\n640 480\n65535\n" + b"\0" * 1000, "truncated: 1000 payload bytes, expected 614400"),
    (b"P6\n4 4\n65535\n" + b"\0" * 32, "not a binary PGM"),
    (b"P5\n4 4\n255\n" + b"\0" * 16, "8-bit PGM"),
    (b"P5\n4", "truncated or malformed header"),
    (b"", "not a binary PGM"),
])
def test_bad_pgm_errors_name_the_file(tmp_path, content, message):
    p = tmp_path / "d-1.5-7.pgm"
    p.write_bytes(content)
    with pytest.raises(FormatError, match=f"d-1.5-7.pgm: .*{message}"):
        read_kinect_disparity(p)


@pytest.mark.parametrize("content, message", [
    (b"P6\n640 480\n255\n" + b"\0" * 5000, "truncated"),
    (b"P5\n2 2\n255\n" + b"\0" * 4, "not a binary PPM"),
    (b"P6\n2 2\n65535\n" + b"\0" * 24, "8-bit PPM"),
])
def test_bad_ppm_errors_name_the_file(tmp_path, content, message):
    p = tmp_path / "r-1.5-7.ppm"
    p.write_bytes(content)
    with pytest.raises(FormatError, match=f"r-1.5-7.ppm: .*{message}"):
        read_kinect_ppm(p)


def test_bad_accel_dump_and_missing_file(tmp_path):
    (tmp_path / "a.dump").write_bytes(b"\0" * 11)
    with pytest.raises(FormatError, match="a.dump: 11 bytes, expected 12"):
        read_accel_dump(tmp_path / "a.dump")
    with pytest.raises(FormatError, match="nope.pgm: no such file"):
        read_kinect_disparity(tmp_path / "nope.pgm")


# ----------------------------------------------------------------------------- conversions

def test_disparity_to_metres_rules():
    raw = np.array([0, 599, 600, 839, 1000, 1057, 1058, 1092, 1093, 2046, 2047])
    m = disparity_to_metres(raw)
    assert m.dtype == np.float32
    assert m[0] == 0 and m[1] == 0  # below the toolbox's 600
    assert m[2] == pytest.approx(351.3 / 492.5)
    assert m[4] == pytest.approx(351.3 / 92.5)
    assert m[5] == pytest.approx(351.3 / 35.5) and m[5] <= 10
    assert m[6] == 0  # 10.04 m: beyond the toolbox's 10 m
    assert (m[7:] == 0).all()  # negative or absurd depths, no reading
    d = np.array([0.8, 2.0, 5.0, 9.5])
    np.testing.assert_allclose(disparity_to_metres(np.rint(metres_to_disparity(d))), d, rtol=0.02)


def test_mask_min_max_removes_the_extreme_levels_only():
    raw = np.array([[700, 700, 800, 900], [1000, 1000, 2047, 850]], dtype=np.uint16)
    out = mask_min_max(raw)
    assert (out == RAW_INVALID).sum() == 5  # two at 700 (min), two at 1000 (max), the hole
    assert out[0, 2] == 800 and out[1, 3] == 850


@settings(max_examples=30, deadline=None)
@given(st.floats(-0.6, 0.6), st.floats(-0.45, 0.45))
def test_distortion_removal_inverts_application(x, y):
    for dist in (NYU_KINECT.rgb_distortion, NYU_KINECT.depth_distortion):
        xd, yd = dist.apply(np.array(x), np.array(y))
        xu, yu = dist.remove(xd, yd)
        assert abs(xu - x) < 1e-9 and abs(yu - y) < 1e-9


def test_calibration_reproduces_the_toolbox_projection():
    M, t = np.asarray(NYU_KINECT.rotation), np.asarray(NYU_KINECT.translation)
    assert np.linalg.det(M) == pytest.approx(1.0) and np.allclose(M @ M.T, np.eye(3))
    assert np.linalg.det(TOOLBOX_R) == pytest.approx(-1.0)  # the toolbox's matrix is improper
    P = np.random.default_rng(1).uniform([-2, -1.5, 1], [2, 1.5, 6], (50, 3))
    tb = P @ TOOLBOX_R.T + TOOLBOX_T
    ours = P @ M.T + t
    np.testing.assert_allclose(tb[:, :2] / tb[:, 2:], ours[:, :2] / ours[:, 2:], atol=1e-12)
    assert (ours[:, 2] > 0).all()
    # the RGB camera sits 2.5 cm along +x of the depth camera, in the [t_x; t_z; t_y] order
    centre = -M.T @ t
    np.testing.assert_allclose(centre, M.T @ TOOLBOX_T, atol=1e-12)
    assert centre[0] == pytest.approx(0.02503, abs=1e-4)


def test_register_a_plane_without_distortion_or_offset():
    """A fronto-parallel plane seen through ideal, co-located cameras registers exactly."""
    K = Intrinsics(100.0, 100.0, 31.5, 23.5, 64, 48)
    none = Distortion(0, 0, 0, 0, 0)
    calib = KinectCalibration(K, K, none, none, ((1, 0, 0), (0, 1, 0), (0, 0, 1)), (0.0, 0.0, 0.0))
    raw = np.full((48, 64), 1000, np.uint16)
    raw[:, :3] = RAW_INVALID
    d = register_depth(raw, calib)
    np.testing.assert_allclose(d[:, 3:], 351.3 / 92.5, rtol=1e-6)
    assert (d[:, :3] == 0).all()


def test_register_z_buffer_keeps_the_nearest_point():
    """Two depth pixels landing on one RGB pixel: the nearer wins, whatever their order."""
    K = Intrinsics(100.0, 100.0, 1.5, 0.0, 4, 1)
    none = Distortion(0, 0, 0, 0, 0)
    # shift the RGB camera by b along x so that points at different depths collide
    b = 0.1
    calib = KinectCalibration(K, K, none, none, ((1, 0, 0), (0, 1, 0), (0, 0, 1)), (-b, 0.0, 0.0))
    # pixel u at depth z lands at u - 1.5 + 1.5 - 100*b/z: u=2 at 5 m and u=1 at 9.9 m both land on 0
    raw = np.full((1, 4), RAW_INVALID, np.uint16)
    # u=2 at 5 m -> 2 - 2 = 0 ; u=1 at ~10 m -> 1 - 1 = 0
    raw[0, 2] = np.rint(1092.5 - 351.3 / 5.0)
    raw[0, 1] = np.rint(1092.5 - 351.3 / 9.9)
    d = register_depth(raw, calib)
    z5 = 351.3 / (1092.5 - raw[0, 2])
    assert d[0, 0] == pytest.approx(z5) and (d[0, 1:] == 0).all()


def test_undistort_rgb_keeps_the_centre_and_moves_the_corners(shared_data):
    rgb = read_kinect_ppm(shared_data / "nyu/raw_frame/NYU_color.ppm")
    und = undistort_rgb(rgb)
    assert und.shape == rgb.shape and und.dtype == np.uint8
    c = (slice(230, 250), slice(310, 330))
    assert np.abs(und[c].astype(int) - rgb[c].astype(int)).mean() < 3
    assert np.abs(und[:40, :40].astype(int) - rgb[:40, :40].astype(int)).mean() > 3


def test_min_max_mask_inside_registration_equals_masking_first(shared_data):
    raw = read_kinect_disparity(shared_data / "nyu/raw_frame/NYU_depth.pgm")
    a = register_depth(raw, min_max_mask=True)
    b = register_depth(mask_min_max(raw))
    np.testing.assert_array_equal(a, b)
    assert (a > 0).sum() < (register_depth(raw) > 0).sum()


def test_registered_field_of_view_matches_the_real_sync_files(shared_data):
    """Where the registered real frame has depth (the depth camera's field of view seen from the
    RGB camera) matches the valid region of the public sync files, side by side within 4 px."""
    from mdlearn.data.formats import read_depth_png_mm

    def extent(d):
        v = d > 0
        cols, rows = np.flatnonzero(v.mean(0) > 0.3), np.flatnonzero(v.mean(1) > 0.3)
        return np.array([cols.min(), cols.max(), rows.min(), rows.max()])

    ours = extent(register_depth(read_kinect_disparity(shared_data / "nyu/raw_frame/NYU_depth.pgm")))
    theirs = np.median([extent(read_depth_png_mm(shared_data / f"nyu/sync_pairs/sync_depth_{i:05d}.png"))
                        for i in (0, 50, 100)], axis=0)
    assert np.abs(ours - theirs).max() <= 4, (ours, theirs)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.floats(-0.3, 0.3), st.floats(-0.1, 0.1))
def test_register_depth_equals_a_point_by_point_z_buffer(seed, tx, ty):
    """The vectorised registration equals the toolbox's loop (back-project, transform, project,
    round, nearest wins), written out point by point, on frames where many points collide."""
    K_d = Intrinsics(12.0, 12.0, 3.5, 2.5, 8, 6)
    K_r = Intrinsics(10.0, 10.0, 3.7, 2.4, 8, 6)
    dist = Distortion(-0.1, 0.05, 0.001, -0.002, 0.0)
    a = 0.05
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    calib = KinectCalibration(K_r, K_d, dist, dist, tuple(map(tuple, R)), (tx, ty, 0.01))
    rng = np.random.default_rng(seed)
    raw = rng.integers(600, 1058, (6, 8)).astype(np.uint16)
    raw[rng.uniform(size=raw.shape) < 0.2] = RAW_INVALID
    got = register_depth(raw, calib)
    want = np.zeros((6, 8))
    best = np.full((6, 8), np.inf)
    for v in range(6):
        for u in range(8):
            z = disparity_to_metres(raw[v:v + 1, u:u + 1])[0, 0]
            if z <= 0:
                continue
            x, y = dist.remove(np.array((u - K_d.cx) / K_d.fx), np.array((v - K_d.cy) / K_d.fy))
            P = R @ np.array([x * z, y * z, z]) + np.array([tx, ty, 0.01])
            if P[2] <= 0:
                continue
            ur, vr = round(K_r.fx * P[0] / P[2] + K_r.cx), round(K_r.fy * P[1] / P[2] + K_r.cy)
            if 0 <= ur < 8 and 0 <= vr < 6 and P[2] < best[vr, ur]:
                best[vr, ur] = P[2]
                want[vr, ur] = P[2]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_toolbox_value_differs_from_rgb_z_by_millimetres(shared_data):
    raw = read_kinect_disparity(shared_data / "nyu/raw_frame/NYU_depth.pgm")
    a, b = register_depth(raw), register_depth(raw, value="toolbox")
    both = (a > 0) & (b > 0)
    assert both.mean() > 0.6
    assert np.abs(a[both] - b[both]).max() < 0.03 and np.median(np.abs(a[both] - b[both])) < 0.01


def _ideal_colocated(w=64, h=48):
    K = Intrinsics(100.0, 100.0, (w - 1) / 2, (h - 1) / 2, w, h)
    none = Distortion(0, 0, 0, 0, 0)
    eye = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    return KinectCalibration(K, K, none, none, eye, (0.0, 0.0, 0.0))


def test_toolbox_registration_of_a_plane_leaves_the_last_row_and_column_empty():
    calib = _ideal_colocated()
    raw = np.full((48, 64), 1000, np.uint16)
    raw[:, :3] = RAW_INVALID
    d = register_depth_toolbox(raw, calib)
    np.testing.assert_allclose(d[:-1, 3:-1], 351.3 / 92.5, rtol=1e-6)
    assert (d[:, :3] == 0).all() and (d[-1] == 0).all() and (d[:, -1] == 0).all()
    ours = register_depth(raw, calib)
    np.testing.assert_allclose(d[:-1, :-1], ours[:-1, :-1], rtol=1e-6)


def test_toolbox_noise_mask_is_the_frames_largest_raw_value():
    """Without holes, the largest raw level (the farthest depth) is masked, the nearest kept;
    with a hole, the mask is the hole (2047) and the farthest level stays."""
    calib = _ideal_colocated()
    raw = np.full((48, 64), 1000, np.uint16)
    raw[10:20, 10:20] = 1001
    raw[30:40, 30:40] = 900
    d = register_depth_toolbox(raw, calib)
    assert (d[10:20, 10:20] == 0).all() and (d[31:39, 31:39] > 0).all()
    raw[0, 0] = RAW_INVALID
    assert (register_depth_toolbox(raw, calib)[11:19, 11:19] > 0).all()


def test_toolbox_clips_junk_beyond_ten_metres_where_mdlearn_drops_it():
    calib = _ideal_colocated()
    raw = np.full((48, 64), 1000, np.uint16)
    raw[:, :2] = RAW_INVALID
    raw[20:30, 20:30] = 1070  # 351.3 / 22.5 = 15.6 m
    assert (register_depth_toolbox(raw, calib)[21:29, 21:29] == 10.0).all()
    assert (register_depth(raw, calib)[20:30, 20:30] == 0).all()
    with pytest.raises(UsageError):
        register_depth_toolbox(raw, calib, value="depth")


def test_toolbox_registration_of_the_real_frame_agrees_in_the_interior(shared_data):
    raw = read_kinect_disparity(shared_data / "nyu/raw_frame/NYU_depth.pgm")
    ours, tb = register_depth(raw), register_depth_toolbox(raw)
    both = (ours > 0) & (tb > 0)
    assert both.mean() > 0.6 and tb.max() <= 10.0
    rel = np.abs(ours[both] - tb[both]) / ours[both]
    assert np.median(rel) < 0.01
    assert (tb > 0).sum() < (ours > 0).sum()  # resampling next to holes costs pixels


def test_real_sync_depth_respects_the_toolbox_range(shared_data):
    """Chapters 1 and 2: a toolbox-registered NYU depth map has no valid depth nearer than raw
    600 (0.71 m) or beyond 10 m -- not 'a few percent nearer than half a metre'."""
    near = float(disparity_to_metres(np.array([TOOLBOX_MIN_RAW]))[0])
    assert near == pytest.approx(0.713, abs=1e-3)
    for i in (0, 50, 100):
        d = read_depth_png_mm(shared_data / f"nyu/sync_pairs/sync_depth_{i:05d}.png")
        ok = d[d > 0]
        assert ok.min() >= near - 1e-3 and ok.max() <= NYU_MAX_DEPTH
        assert 2.0 < np.median(ok) < 4.0
