"""mdlearn.data.kitti and kitti_depth: readers, projection and conflict rules.

Real files from ../shared/data/kitti (skipped with a reason when absent) and constructed cases
with known answers.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlearn.data import kitti
from mdlearn.data import kitti_depth as kd
from mdlearn.errors import FormatError
from mdlearn.data.formats import read_depth_png_kitti, read_rgb, write_depth_png_kitti

SIZE = (1242, 375)
# MANIFEST.md: points of each object frame in the image (int truncation) and their camera z range
OBJECT_FRAMES = {"000001": (120268, 18630, 4.77, 76.73), "000002": (126891, 20210, 4.50, 79.21)}


@pytest.fixture(scope="module")
def kdir(shared_data):
    return shared_data / "kitti"


@pytest.fixture(scope="module")
def raw_calib(kdir):
    return kitti.read_raw_calibration(kdir / "raw" / "2011_09_26")


# ------------------------------------------------------------------------------- real files


@pytest.mark.parametrize("frame", sorted(OBJECT_FRAMES))
def test_raw_and_object_calibration_agree(kdir, raw_calib, frame):
    obj = kitti.read_object_calibration(kdir / "object_frames" / "calib" / f"{frame}.txt", SIZE)
    for c in range(4):
        np.testing.assert_allclose(obj.P_rect[c], raw_calib.P_rect[c], rtol=0, atol=1e-9)
        np.testing.assert_allclose(obj.velo_to_image(c), raw_calib.velo_to_image(c), rtol=0, atol=1e-9)
    assert raw_calib.image_size[2] == SIZE
    assert raw_calib.baseline() == pytest.approx(0.532, abs=0.005)  # the colour cameras' baseline


@pytest.mark.parametrize("frame", sorted(OBJECT_FRAMES))
def test_real_scan_lands_in_the_image(kdir, raw_calib, frame):
    n_total, n_in, zmin, zmax = OBJECT_FRAMES[frame]
    pts = kitti.read_velodyne(kdir / "object_frames" / "velodyne" / f"{frame}.bin")
    assert pts.shape == (n_total, 4) and pts.dtype == np.float32
    floor = kd.project_scan(pts, raw_calib, 2, SIZE, pixel="floor")
    assert floor.index.size == n_in  # exactly the MANIFEST's count
    assert floor.camz.min() == pytest.approx(zmin, abs=0.01) and floor.camz.max() == pytest.approx(zmax, abs=0.01)
    rnd = kd.project_scan(pts, raw_calib, 2, SIZE, pixel="round")
    assert abs(rnd.index.size - n_in) / n_in < 0.005
    assert (pts[rnd.index, 0] > 0).all()


@pytest.mark.parametrize("frame", sorted(OBJECT_FRAMES))
def test_pixel_rules_on_real_scans(kdir, raw_calib, frame):
    """What the three pixel rules do to a real scan (Chapter 3): monodepth2's rule is the
    round rule moved one pixel up and left, exactly; round and floor agree on a coordinate
    about half the time, so on both coordinates for about a quarter of the points."""
    pts = kitti.read_velodyne(kdir / "object_frames" / "velodyne" / f"{frame}.bin")
    by = {r: kd.sparse_depth(pts, raw_calib, 2, SIZE, pixel=r) for r in kd.PIXEL_RULES}
    np.testing.assert_array_equal(by["monodepth2"][:-1, :-1], by["round"][1:, 1:])
    rnd = kd.project_scan(pts, raw_calib, 2, SIZE, pixel="round")
    same = (np.floor(rnd.uv) == np.rint(rnd.uv)).all(1).mean()
    assert 0.2 < same < 0.3, same  # sub-pixel positions spread evenly over the pixel
    assert by["floor"].astype(bool).sum() != by["round"].astype(bool).sum()


def test_annotated_ground_truth_decodes(kdir):
    for png in sorted((kdir / "gt_pairs" / "depth").glob("*.png")):
        depth = read_depth_png_kitti(png)
        assert depth.shape == (375, 1242) and depth.dtype == np.float32
        valid = depth > 0
        assert 0.18 <= valid.mean() <= 0.21, png.name  # MANIFEST: 19-21 % valid
        assert 4.0 < depth[valid].min() and depth[valid].max() < 90.0


def test_split_lists_load(kdir):
    s = kdir / "splits"
    counts = {n: len(kitti.read_split(s / f"{n}.txt")) for n in
              ("eigen_test_files", "eigen_benchmark_test_files", "eigen_train_files", "eigen_val_files")}
    assert counts == {"eigen_test_files": 697, "eigen_benchmark_test_files": 652,
                      "eigen_train_files": 22600, "eigen_val_files": 888}
    test = kitti.read_split(s / "eigen_test_files.txt")
    assert test[0] == kitti.SplitEntry("2011_09_26/2011_09_26_drive_0002_sync", 69, ("l",))
    assert len({e.drive for e in test}) == 28
    train = kitti.read_split(s / "eigen_train_files.txt")
    assert len(kitti.expand_sides(train)) == 45200  # both cameras, unassociated
    bench = {(e.drive, e.frame) for e in kitti.read_split(s / "eigen_benchmark_test_files.txt")}
    assert bench <= {(e.drive, e.frame) for e in test}
    assert len(test) - len(bench) == 45  # test frames without annotated ground truth


def test_real_raw_drive_metadata(kdir):
    drive = kdir / "raw" / "2011_09_26" / "2011_09_26_drive_0001_sync"
    packet = kitti.read_oxts_packet(drive / "oxts" / "data" / "0000000000.txt")
    fields = dict(zip(kitti.OXTS_FIELDS, packet))
    assert fields["vf"] == pytest.approx(13.1727, abs=1e-3) and fields["az"] == pytest.approx(10.21, abs=0.01)
    assert not kitti.stationary_mask(packet[None])[0]
    cam = kitti.read_timestamps(drive / "image_02" / "timestamps.txt")
    velo = kitti.read_timestamps(drive / "velodyne_points" / "timestamps.txt")
    start = kitti.read_timestamps(drive / "velodyne_points" / "timestamps_start.txt")
    end = kitti.read_timestamps(drive / "velodyne_points" / "timestamps_end.txt")
    assert len(cam) == len(velo) == 108
    # one sweep per frame (~0.1 s), the scanner faces forward mid-sweep, the camera fires then
    assert np.allclose((end - start) / 1e9, 0.103, atol=0.005)
    assert np.abs((velo - (start + end) / 2) / 1e9).max() < 0.005
    assert np.abs((cam - velo) / 1e9).max() < 0.02


# ------------------------------------------------------------------------ constructed cases


def _identity_calib(f=100.0, w=64, h=48):
    """A rig whose camera sits at the Velodyne origin: camera x = -vel y, y = -vel z, z = vel x."""
    Tr = np.eye(4)
    Tr[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]
    P = np.array([[f, 0, (w - 1) / 2, 0], [0, f, (h - 1) / 2, 0], [0, 0, 1, 0]], dtype=np.float64)
    return kitti.Calibration({c: P for c in range(4)}, np.eye(3), Tr, {c: (w, h) for c in range(4)})


def test_projection_of_known_points():
    calib = _identity_calib()
    pts = np.array([[10.0, 0.0, 0.0, 0.5],      # straight ahead: the centre pixel area
                    [10.0, 1.0, 0.0, 0.5],      # 1 m to the left at 10 m: 10 px left of centre
                    [-5.0, 0.0, 0.0, 0.5],      # behind
                    [10.0, -100.0, 0.0, 0.5]])  # far outside the image
    proj = kd.project_scan(pts, calib, 2)
    assert proj.index.tolist() == [0, 1]
    assert np.allclose(proj.uv, [[31.5, 23.5], [21.5, 23.5]])
    assert proj.camz.tolist() == [10.0, 10.0]


def test_time_rule_picks_the_point_captured_with_the_image():
    """Two points in one pixel: a cyclist at 6 m seen 40 ms before the image (it has since moved
    on), and the wall behind it at 15 m seen 1 ms after. The image shows the wall."""
    calib = _identity_calib()
    pts = np.array([[6.0, 0.0, 0.0, 0.3], [15.0, 0.0, 0.0, 0.3], [8.0, 2.0, 0.0, 0.3]])
    times = np.array([-0.040, 0.001, 0.0])
    by_time = kd.sparse_depth(pts, calib, 2, times=times, rule="time")
    by_depth = kd.sparse_depth(pts, calib, 2, times=times, rule="nearest")
    u0, v0 = 32, 24  # round(31.5) = 32 (numpy rounds half to even), round(23.5) = 24
    assert by_time[v0, u0] == 15.0 and by_depth[v0, u0] == 6.0
    assert (by_time > 0).sum() == (by_depth > 0).sum() == 2


def test_time_offsets_follow_the_spin():
    pts = np.array([[1.0, 0.0, 0], [0.0, 1.0, 0], [0.0, -1.0, 0], [-1.0, 1e-9, 0]])
    t = kd.sweep_time_offsets(pts, rate_hz=10.0, direction="clockwise")
    assert np.allclose(t, [0.0, -0.025, 0.025, -0.05])
    assert np.allclose(kd.sweep_time_offsets(pts, direction="counterclockwise"), -t)
    # KITTI's default: ahead at the trigger, the car's right (y < 0) before it, its left after
    assert np.allclose(kd.sweep_time_offsets(pts, rate_hz=10.0), [0.0, 0.025, -0.025, 0.05])


def test_real_scans_spin_in_scan_direction(kdir):
    """A Velodyne ``.bin`` stores the points in firing order, so from one point to the next the
    azimuth moves with the spin (apart from the wrap-around once per ring and a few dropped
    returns); its dominant sign is the spin direction: + for counter-clockwise seen from above."""
    sign = {"counterclockwise": 1.0, "clockwise": -1.0}[kd.SCAN_DIRECTION]
    for frame in sorted(OBJECT_FRAMES):
        pts = kitti.read_velodyne(kdir / "object_frames" / "velodyne" / f"{frame}.bin")
        az = np.arctan2(pts[:, 1].astype(np.float64), pts[:, 0].astype(np.float64))
        step = np.angle(np.exp(1j * np.diff(az)))  # wrapped to (-pi, pi]
        step = step[step != 0]
        along = (np.sign(step) == sign).mean()
        assert along > 0.99, (frame, along)  # measured: 1.0 (000001), 0.99997 (000002)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 10_000))
def test_one_point_per_pixel_and_it_is_the_chosen_one(w, h, seed):
    rng = np.random.default_rng(seed)
    n = 200
    lin = rng.integers(0, w * h, n)
    vals = rng.uniform(1, 80, n)
    dt = rng.uniform(-0.05, 0.05, n)
    for rule in ("time", "nearest"):
        keep = kd.resolve_conflicts(lin, vals, rule, dt)
        assert np.array_equal(lin[keep], np.unique(lin))  # one per occupied pixel (no index aliasing)
        key = np.abs(dt) if rule == "time" else vals
        for k in keep:
            assert key[k] == key[lin == lin[k]].min()


def test_depth_caps_match_the_public_scripts():
    assert (kitti.KITTI_MIN_DEPTH, kitti.KITTI_MAX_DEPTH) == (1e-3, 80.0)


# --------------------------------------------------------------------------- bad input


def test_kitti_depth_png_round_trip(tmp_path):
    depth = np.array([[0.0, 1.0], [79.99, 5.123]], np.float32)
    write_depth_png_kitti(tmp_path / "d.png", depth)
    back = read_depth_png_kitti(tmp_path / "d.png")
    assert np.abs(back - depth).max() <= 1 / 512 + 1e-6 and back[0, 0] == 0
    with pytest.raises(FormatError, match="exceeds"):
        write_depth_png_kitti(tmp_path / "e.png", np.full((2, 2), 300.0))


def test_bin_size_not_multiple_of_16(tmp_path):
    p = tmp_path / "0000000000.bin"
    p.write_bytes(np.zeros(10, np.float32).tobytes())  # 40 bytes
    with pytest.raises(FormatError, match=r"0000000000\.bin.*40 bytes is not a multiple of 16"):
        kitti.read_velodyne(p)
    with pytest.raises(FormatError, match="no such Velodyne scan"):
        kitti.read_velodyne(tmp_path / "missing.bin")


def test_calibration_missing_key(tmp_path, kdir):
    d = tmp_path / "2011_09_26"
    d.mkdir()
    text = (kdir / "raw" / "2011_09_26" / "calib_cam_to_cam.txt").read_text()
    (d / "calib_cam_to_cam.txt").write_text("\n".join(l for l in text.splitlines() if not l.startswith("P_rect_02")))
    (d / "calib_velo_to_cam.txt").write_text((kdir / "raw" / "2011_09_26" / "calib_velo_to_cam.txt").read_text())
    with pytest.raises(FormatError, match=r"calib_cam_to_cam\.txt: missing key 'P_rect_02'"):
        kitti.read_raw_calibration(d)
    (d / "calib_velo_to_cam.txt").write_text("R: 1 0 0 0 1 0 0 0 1\n")
    (d / "calib_cam_to_cam.txt").write_text(text)
    with pytest.raises(FormatError, match=r"calib_velo_to_cam\.txt: missing key 'T'"):
        kitti.read_raw_calibration(d)


def test_calibration_value_that_is_not_a_number(tmp_path):
    # written by the project's own writer, then one value corrupted: reported as what it is
    d = tmp_path / "2011_09_26"
    calib = kitti.Calibration({c: np.hstack([np.diag([700.0, 700.0, 1.0]), np.zeros((3, 1))]) for c in range(4)},
                              np.eye(3), np.eye(4), {c: (1242, 375) for c in range(4)})
    kitti.write_raw_calibration(d, calib)
    assert kitti.read_raw_calibration(d).P_rect[2][0, 0] == 700.0
    cc = d / "calib_cam_to_cam.txt"
    lines = cc.read_text().splitlines()
    n = next(i for i, l in enumerate(lines) if l.startswith("P_rect_02:"))
    lines[n] = lines[n].replace("7.000000e+02", "7.000000e+O2", 1)
    cc.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=rf"calib_cam_to_cam\.txt:{n + 1}: key 'P_rect_02' has a value that "
                                          r"is not a number: '7\.000000e\+O2'"):
        kitti.read_raw_calibration(d)
    # also where the key is not used by the reader (it used to vanish silently)
    lines[n] = lines[n].replace("7.000000e+O2", "7.000000e+02")
    lines.append("S_99: 1242 37S")
    cc.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match="key 'S_99' has a value that is not a number: '37S'"):
        kitti.read_calib_file(cc)


def test_bad_timestamps_oxts_and_split_lines(tmp_path):
    with pytest.raises(FormatError, match="no such timestamps file"):
        kitti.read_timestamps(tmp_path / "timestamps.txt")
    (tmp_path / "t.txt").write_text("2011-09-26 13:02:25.961661696\nyesterday\n")
    with pytest.raises(FormatError, match=r"t\.txt:2: not a timestamp"):
        kitti.read_timestamps(tmp_path / "t.txt")
    (tmp_path / "o.txt").write_text("1 2 3\n")
    with pytest.raises(FormatError, match=r"o\.txt: expected 30 OXTS values, found 3"):
        kitti.read_oxts_packet(tmp_path / "o.txt")
    (tmp_path / "s.txt").write_text("2011_09_26/2011_09_26_drive_0002_sync 69 x\n")
    with pytest.raises(FormatError, match=r"s\.txt:1: not an Eigen split line"):
        kitti.read_split(tmp_path / "s.txt")


def test_timestamps_round_trip(tmp_path):
    ns = np.array([1317042145961661696, 1317042146064785152], np.int64)
    kitti.write_timestamps(tmp_path / "t.txt", ns)
    assert (tmp_path / "t.txt").read_text().splitlines()[0] == "2011-09-26 13:02:25.961661696"
    assert np.array_equal(kitti.read_timestamps(tmp_path / "t.txt"), ns)


def test_stationary_rules():
    ox = np.zeros((3, 30))
    ox[:, kitti.OXTS_FIELDS.index("vf")] = [0.0, 0.3, 12.0]   # standing, creeping, cruising
    ox[:, kitti.OXTS_FIELDS.index("af")] = [0.0, 0.5, 0.0]
    assert kitti.stationary_mask(ox).tolist() == [True, True, False]
    assert kitti.stationary_mask(ox, threshold=0.2).tolist() == [True, False, False]
    # the paper's literal wording also drops the car cruising at constant speed
    assert kitti.stationary_mask(ox, rule="acceleration").tolist() == [True, False, True]


def test_linear_pixel_index_does_not_alias():
    """monodepth2's duplicate lookup uses row * (W - 1) + col - 1 (issue #506), which maps pixel
    (row 1, col 0) and (row 0, col W - 1) to one index and so resolves "conflicts" between
    points in different pixels. mdlearn's index row * W + col keeps them apart."""
    W = 8
    rows, cols = np.array([1, 0]), np.array([0, W - 1])
    assert len(set(rows * (W - 1) + cols - 1)) == 1  # the public formula aliases them
    keep = kd.resolve_conflicts(rows * W + cols, np.array([5.0, 9.0]), "nearest")
    assert sorted(keep.tolist()) == [0, 1]  # both points survive


def test_missing_ground_truth_is_counted_per_variant(tmp_path, kdir):
    from mdlearn.data.kitti_dataset import ground_truth_path, missing_ground_truth

    entries = kitti.read_split(kdir / "splits" / "eigen_test_files.txt")[:5]
    ann = tmp_path / "data_depth_annotated"
    for e in entries[:3]:  # annotated maps for three of the five frames
        p = ann / "val" / e.drive.split("/")[1] / "proj_depth" / "groundtruth" / "image_02" / f"{e.frame:010d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes((kdir / "gt_pairs" / "depth" / "0000000005.png").read_bytes())
    assert missing_ground_truth(entries, ann, "annotated") == 2
    assert missing_ground_truth(entries, tmp_path / "prepared", "camz_time") == 5
    found = ground_truth_path(ann, entries[0].drive, entries[0].frame, "image_02", "annotated")
    assert read_depth_png_kitti(found).shape == (375, 1242)


def test_real_drive_folder_without_scans_is_reported(kdir):
    drive = kitti.find_drives(kdir / "raw")[0]
    assert drive.key == "2011_09_26/2011_09_26_drive_0001_sync"
    assert len(drive.timestamps("velodyne_points_start")) == 108
    assert drive.calibration().baseline() == pytest.approx(0.532, abs=0.005)
    with pytest.raises(FormatError, match=r"velodyne_points/data: missing folder"):
        drive.check()  # the sample holds timestamps and one OXTS packet, not the scans
