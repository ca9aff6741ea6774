"""Synthetic street drives in the KITTI raw layout, read back by mdlearn.data.kitti, prepared and served.

The fixtures are written by the project's own writer (small: quarter resolution, few frames).
"""

import json
import shutil

import numpy as np
import pytest
import torch

from mdlearn import camera
from mdlearn.cli import main
from mdlearn.data import kitti
from mdlearn.data import kitti_depth as kd
from mdlearn.data.formats import read_depth_png_kitti, read_rgb
from mdlearn.data.kitti_dataset import KittiDepthDataset
from mdlearn.data.kitti_prepare import prepare_kitti_raw
from mdlearn.data.transforms import BottomCrop, kitti_paper_input
from mdlearn.jobs import MANIFEST_NAME
from mdlearn.errors import UsageError
from mdlearn.synthetic import street as st
from mdlearn.synthetic.kitti_raw import KittiRawSpec, oxts_packet, sample_motion, write_kitti_raw
from mdlearn.synthetic.velodyne import KITTI_RIG, VELODYNE_HEIGHT, Scanner, rig_for_size, world_from_camera

SPEC = KittiRawSpec(drives=2, frames_per_drive=6, seed=5, resolution=0.25, azimuth_steps=1000)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("kitti") / "raw"
    write_kitti_raw(out, SPEC, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("kitti") / "prep"
    report = prepare_kitti_raw(raw, out, workers=1, progress=False)
    return out, report


def test_layout_reads_back_as_kitti_raw(raw):
    drives = kitti.find_drives(raw)
    assert [d.key for d in drives] == ["2014_12_08/2014_12_08_drive_0001_sync", "2014_12_08/2014_12_08_drive_0002_sync"]
    calib = drives[0].calibration()
    w, h = calib.image_size[2]
    assert (w, h) == (round(1242 * 0.25), round(375 * 0.25))
    for d in drives:
        assert d.check() == 6
        assert read_rgb(d.image_path(0, "image_03")).shape == (h, w, 3)
        assert d.oxts().shape == (6, 30)
        start, end = d.timestamps("velodyne_points_start"), d.timestamps("velodyne_points_end")
        assert np.allclose((end - start) / 1e9, 0.1)
    assert "P_rect_02:" in (raw / "2014_12_08" / "calib_cam_to_cam.txt").read_text()
    train, test = kitti.read_split(raw / "splits" / "train_files.txt"), kitti.read_split(raw / "splits" / "test_files.txt")
    assert len(train) == 6 and len(test) == 6 and {e.drive for e in test} == {drives[1].key}
    assert train[0].sides == ("l", "r") and test[0].sides == ("l",)


def test_calibration_text_round_trip(tmp_path):
    kitti.write_raw_calibration(tmp_path, KITTI_RIG)
    back = kitti.read_raw_calibration(tmp_path)
    for c in (2, 3):
        np.testing.assert_allclose(back.velo_to_image(c), KITTI_RIG.velo_to_image(c), rtol=1e-5, atol=1e-4)
    assert back.image_size[2] == (1242, 375)


def test_rig_geometry():
    pose = world_from_camera(KITTI_RIG, 2, 0.0, 0.0)
    assert pose[1, 3] == pytest.approx(VELODYNE_HEIGHT - 0.076, abs=0.01)  # cameras 8 cm below the scanner
    assert pose[0, 3] == pytest.approx(0.27, abs=0.01)  # and 27 cm in front of it
    assert pose[:3, 2] @ np.array([1.0, 0, 0]) > 0.999  # looking along the road
    small = rig_for_size(0.5)
    assert small.image_size[2] == (621, 188)
    K = small.intrinsics(2)
    assert K.fx == pytest.approx(721.5377 * 621 / 1242)


def test_empty_street_depth_is_the_ground_plane():
    s0 = st.sample_street(1, 0)
    empty = st.Street((), s0.materials, s0.road_half, s0.sidewalk, s0.ground, s0.sun, s0.ambient, s0.length)
    calib = rig_for_size(0.25)
    pose = world_from_camera(calib, 2, 0.0, 1.75)
    K = calib.intrinsics(2)
    rgb, depth = st.render(empty, pose, K)
    ground = depth > 0
    assert ground[-1].all() and not ground[0].any()  # road at the bottom, sky at the top
    pts = camera.backproject(torch.from_numpy(depth), K)[torch.from_numpy(ground)].numpy().astype(np.float64)
    world = pts @ pose[:3, :3].T + pose[:3, 3]
    assert np.abs(world[:, 1]).max() < 1e-3 * np.abs(pts[:, 2]).max()  # every hit lies on y = 0


def test_same_seed_same_bytes(tmp_path):
    spec = KittiRawSpec(drives=1, frames_per_drive=2, seed=9, resolution=0.1, azimuth_steps=200)
    a = write_kitti_raw(tmp_path / "a", spec, workers=1, progress=False)
    b = write_kitti_raw(tmp_path / "b", spec, workers=1, progress=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "index.json")
    assert len(files) > 15
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_projected_scan_matches_exact_depth(raw):
    for d in kitti.find_drives(raw):
        calib = d.calibration()
        for f in d.frames:
            pts = kitti.read_velodyne(d.velodyne_path(f))
            truth_t = np.load(d.path / "mdlearn_truth" / "velodyne_times" / f"{f:010d}.npy")
            assert np.abs(kd.sweep_time_offsets(pts) - truth_t).max() < 1e-5  # time follows from azimuth
            dt = (d.timestamps("image_02")[f] - d.timestamps("velodyne_points")[f]) / 1e9
            sparse = kd.sparse_depth(pts, calib, 2, image_dt=dt)
            dense = read_depth_png_kitti(d.path / "mdlearn_truth" / "depth_02" / f"{f:010d}.png")
            hit = (sparse > 0) & (dense > 0)
            rel = np.abs(sparse[hit] - dense[hit]) / dense[hit]
            assert hit.sum() > 1000 and np.median(rel) < 0.01, (d.key, f, np.median(rel))
            assert ((sparse > 0) & (dense == 0)).sum() <= 0.005 * (sparse > 0).sum()  # hardly any in the sky
            # the scan covers only the lower part of the image, as on the real rig
            rows = np.nonzero((sparse > 0).any(1))[0]
            assert 0.25 * sparse.shape[0] < rows.min() < 0.5 * sparse.shape[0]


def test_oxts_is_consistent_with_the_motion(raw):
    for d in kitti.find_drives(raw):
        ox = d.oxts()
        t = d.timestamps("oxts") / 1e9
        i = kitti.OXTS_FIELDS.index
        lat, lon = np.radians(ox[:, i("lat")]), np.radians(ox[:, i("lon")])
        north = np.diff(lat) * 6378137.0
        east = np.diff(lon) * 6378137.0 * np.cos(lat[0])
        travelled = np.hypot(north, east)
        v = ox[:, i("vf")]
        expected = (v[1:] + v[:-1]) / 2 * np.diff(t)
        assert np.abs(travelled - expected).max() < 0.05 + 0.3 * np.abs(np.diff(v)).max()
        assert np.allclose(ox[:, i("vf")], np.hypot(ox[:, i("vn")], ox[:, i("ve")]), atol=1e-9)
        assert np.allclose(ox[:, i("az")], 9.81)


def test_motion_profile_integrates():
    m, kind = sample_motion(3, 0, 6.0)
    assert kind == "stop" and m.speed(0.45 * 6.0) == 0.0 and m.speed(100.0) > 5.0
    dt = 1e-3
    for t in (0.5, 1.7, 2.9, 4.2):
        assert (m.distance(t + dt) - m.distance(t)) / dt == pytest.approx(m.speed(t + dt / 2), abs=1e-2)
        if abs(m.acceleration(t)) > 0:
            assert (m.speed(t + dt) - m.speed(t)) / dt == pytest.approx(m.acceleration(t), abs=1e-6)
    packet = oxts_packet(m, 2.0)
    assert packet.shape == (30,)


def test_stationary_frames_of_the_stop_drive(raw):
    stop, cruise = kitti.find_drives(raw)
    assert kitti.stationary_mask(stop.oxts()).sum() >= 2
    assert kitti.stationary_mask(cruise.oxts()).sum() == 0
    assert kitti.stationary_mask(cruise.oxts(), "acceleration").all()  # the literal reading drops cruising


def test_prepare_writes_sparse_pngs_and_resumes(raw, prepared, tmp_path):
    out, report = prepared
    assert len(report.written) == 2 and report.counts["maps"] == 2 * 6 * 2 and not report.resumed
    assert not report.skipped and report.exit_code == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["spec"]["variant"] == "camz" and manifest["spec"]["rule"] == "time" and manifest["tag"] == "camz_time"
    assert manifest["counts"]["stationary"] == report.counts["stationary"] >= 2
    d = kitti.find_drives(raw)[0]
    png = out / d.key / "proj_depth" / "camz_time" / "image_03" / "0000000004.png"
    depth = read_depth_png_kitti(png)
    assert depth.shape == (94, 310) and (depth > 0).mean() > 0.2
    again = prepare_kitti_raw(raw, out, workers=1, progress=False)
    assert not again.written and len(again.resumed) == 2 and again.counts["maps"] == 0
    # resumable per drive: a drive whose maps are gone is redone; two workers give the same bytes
    shutil.rmtree(out / d.key / "proj_depth" / "camz_time")
    assert prepare_kitti_raw(raw, out, workers=2, progress=False).written == [d.key]
    other = prepare_kitti_raw(raw, tmp_path / "p2", workers=2, progress=False)
    assert other.counts["maps"] == 24 and png.read_bytes() == (tmp_path / "p2" / png.relative_to(out)).read_bytes()
    assert not list(out.rglob("*.partial-*"))


def test_prepare_skips_bad_drives_and_reports(raw, tmp_path):
    bad = tmp_path / "raw"
    shutil.copytree(raw, bad)
    date = bad / "2014_12_08"
    src = date / "2014_12_08_drive_0002_sync"
    for n in (3, 4, 5):
        shutil.copytree(src, date / f"2014_12_08_drive_000{n}_sync")
    (date / "2014_12_08_drive_0002_sync" / "image_02" / "timestamps.txt").unlink()
    (date / "2014_12_08_drive_0003_sync" / "image_03" / "data" / "0000000005.png").unlink()
    binf = date / "2014_12_08_drive_0004_sync" / "velodyne_points" / "data" / "0000000002.bin"
    binf.write_bytes(binf.read_bytes()[:1000])  # 1000 = 62.5 points
    report = prepare_kitti_raw(bad, tmp_path / "out", workers=2, progress=False)
    reasons = report.skipped
    assert "no such timestamps file" in reasons["2014_12_08/2014_12_08_drive_0002_sync"]
    assert "mismatched frame counts" in reasons["2014_12_08/2014_12_08_drive_0003_sync"]
    assert "1000 bytes is not a multiple of 16" in reasons["2014_12_08/2014_12_08_drive_0004_sync frame 2"]
    assert report.counts["maps"] == (6 + 5 + 6) * 2  # drives 1, 4 (minus the broken scan), 5
    assert "3 skipped" in report.summary() and report.exit_code == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no drives found"):
        prepare_kitti_raw(tmp_path / "empty", tmp_path / "o2", progress=False)


def test_dataset_serves_unassociated_samples_and_the_paper_input(raw, prepared):
    out, report = prepared
    ds = KittiDepthDataset(raw, out)
    assert ds.dropped_stationary == 2 * report.counts["stationary"]
    assert len(ds) == 2 * (12 - report.counts["stationary"]) and ds.missing == 0
    cams = {ds[i]["name"].split("/")[2] for i in range(len(ds))}
    assert cams == {"image_02", "image_03"}
    full = ds[0]
    assert full["image"].shape == (3, 94, 310) and full["gt"] == "camz_time"
    K = kitti.find_drives(raw)[0].calibration().intrinsics(2)
    assert full["intrinsics"].tolist() == pytest.approx([K.fx, K.fy, K.cx, K.cy])
    # the paper's input: 1224x368 of 1242x375 at this resolution (306x92), halved
    s = kitti_paper_input()(full)
    assert s["image"].shape == (3, 46, 153) and s["depth"].shape == (1, 46, 153)
    assert s["valid"].dtype == torch.bool and torch.equal(s["valid"], s["depth"] > 0)
    assert s["image"].min() >= 0 and s["image"].max() <= 1
    assert BottomCrop()(s)["image"].shape[-2] == 46 - int(0.4 * 46)
    assert not s["valid"][0, : int(0.25 * 46)].any()  # nothing above the top beam
    entries = [kitti.SplitEntry("2014_12_08/2014_12_08_drive_0002_sync", 1, ("l",)),
               kitti.SplitEntry("2014_12_08/2014_12_08_drive_0002_sync", 99, ("l", "r"))]
    split = KittiDepthDataset(raw, out, entries=entries)
    assert len(split) == 1 and split.missing == 2


def test_cli_synth_and_prepare(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["synth", "kitti-raw", str(out), "--drives", "1", "--frames-per-drive", "2", "--resolution", "0.1",
                 "--azimuth-steps", "200", "--workers", "1", "--quiet"]) == 0
    assert "wrote 1 drives x 2 frames" in capsys.readouterr().out
    assert main(["prepare", "kitti-raw", str(out), str(tmp_path / "p"), "--rule", "nearest", "--variant", "velx",
                 "--workers", "1", "--quiet"]) == 0
    assert "velx_nearest" in capsys.readouterr().out
    assert main(["synth", "kitti-raw", str(tmp_path / "x"), "--drives", "0", "--frames-per-drive", "2"]) == 2
    assert "--drives must be a positive integer" in capsys.readouterr().err
    assert main(["prepare", "kitti-raw", str(tmp_path / "nothing"), str(tmp_path / "p3")]) == 2


def test_time_rule_on_a_sweep_seen_twice():
    """A cyclist crosses in front of the camera. A scan that merges the previous sweep (captured
    0.1 s earlier) with the current one has two points in many pixels; only the current sweep's
    points describe the image. The time rule keeps exactly those; nearest depth keeps the cyclist's
    stale points wherever it was nearer."""
    calib = rig_for_size(0.25)
    gy, gz = np.meshgrid(np.arange(-3, 3, 0.03), np.arange(-1.5, 0.5, 0.05))
    wall = np.c_[np.full(gy.size, 20.0), gy.ravel(), gz.ravel()]  # seen now
    cy, cz = np.meshgrid(np.arange(-1.0, 1.0, 0.02), np.arange(-1.5, 0.2, 0.03))
    cyclist = np.c_[np.full(cy.size, 8.0), cy.ravel(), cz.ravel()]  # seen one sweep earlier
    pts = np.c_[np.r_[cyclist, wall], np.zeros(len(cyclist) + len(wall))].astype(np.float32)
    times = np.r_[kd.sweep_time_offsets(cyclist) - 0.1, kd.sweep_time_offsets(wall)]
    by_time = kd.sparse_depth(pts, calib, 2, times=times, rule="time")
    by_depth = kd.sparse_depth(pts, calib, 2, times=times, rule="nearest")
    seen = kd.sparse_depth(np.c_[wall, np.zeros(len(wall))], calib, 2, rule="nearest") > 0  # pixels the wall covers
    z_wall = 20.0 - 0.27  # the wall's camera z-depth: the cameras sit 27 cm in front of the scanner
    assert seen.sum() > 500
    assert np.abs(by_time[seen] - z_wall).max() < 0.05  # the time rule shows the wall everywhere it is
    stale = seen & (by_depth < 10)
    assert stale.sum() > 0.3 * seen.sum()  # nearest depth keeps the cyclist that has gone


def test_scanner_spins_the_way_the_capture_times_assume():
    """Columns in capture order: counter-clockwise by default (the azimuth grows, from behind via
    the car's right to ahead at t = 0), and each column's time is what sweep_time_offsets says."""
    for direction, sign in (("counterclockwise", 1.0), ("clockwise", -1.0)):
        sc = Scanner(azimuth_steps=360, direction=direction)
        az, t = sc.column_azimuths(), sc.column_offsets()
        assert (np.sign(np.diff(az)) == sign).all() and np.all(np.diff(t) > 0)
        pts = np.c_[np.cos(az), np.sin(az)]
        assert np.allclose(kd.sweep_time_offsets(pts, sc.rate_hz, direction), t, atol=1e-12)
    az = Scanner(azimuth_steps=360).column_azimuths()
    assert np.sin(az[t < 0]).max() < 0 < np.sin(az[t > 0]).min()  # right side first, left after
    with pytest.raises(UsageError, match="Scanner direction"):
        Scanner(direction="up")
