"""The simulated Kinect (mdlearn.synthetic.nyu_raw) and the raw pipeline of mdlearn.data.nyu:
synchronisation, registration against exact ground truth, prepare (resume, no overwrite, bad scenes)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlearn.errors import FormatError
from mdlearn.data.formats import read_depth_png_mm
from mdlearn.camera import Intrinsics
from mdlearn.data.kinect import RAW_INVALID, read_accel_dump, read_kinect_disparity, read_kinect_ppm
from mdlearn.data.nyu import list_raw_scene, nearest_frames, synchronise
from mdlearn.data.nyu_dataset import NYUSyncDataset
from mdlearn.data.nyu_prepare import prepare_nyu_raw
from mdlearn.data.transforms import nyu_paper_input
from mdlearn.errors import UsageError
from mdlearn.synthetic.nyu_raw import (PROJECTOR_BASELINE, KinectSpec, _projector_shadow, expected_sync,
                                      read_frames_json, read_ground_truth, write_nyu_raw)

SPEC = KinectSpec(scenes=2, frames_per_scene=10, seed=7, resolution=0.25)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("nyuraw") / "raw"
    write_nyu_raw(out, SPEC, progress=False)
    return out


@pytest.fixture(scope="module")
def prepared(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("nyusync") / "sync"
    report = prepare_nyu_raw(raw_dir, out, workers=2, progress=False)
    return out, report


def _scenes(raw_dir):
    return sorted(p for p in raw_dir.iterdir() if p.is_dir())


# ----------------------------------------------------------------------------- the simulation

def test_simulated_dump_has_the_raw_layout(raw_dir):
    scenes = _scenes(raw_dir)
    assert len(scenes) == 2
    for sd in scenes:
        names = sorted(p.name for p in sd.iterdir())
        index = (sd / "INDEX.txt").read_text().split()
        assert sorted(index) == sorted(n for n in names if n[:2] in ("r-", "d-", "a-"))
        s = list_raw_scene(sd)
        assert len(s.depth) == 10 and len(s.rgb) >= 8 and len(s.accel) >= 3
        raw = read_kinect_disparity(sd / s.depth[0].name)
        assert raw.shape == (120, 160) and raw.max() <= RAW_INVALID
        assert read_kinect_ppm(sd / s.rgb[0].name).shape == (120, 160, 3)
        for f in s.rgb:  # ground truth for every RGB frame
            gt = read_ground_truth(sd / "groundtruth" / (f.name[:-4] + ".npy"))
            assert gt.shape == (120, 160) and gt.min() > 0
        # jittery, different frame rates
        dd, dr = np.diff([f.timestamp for f in s.depth]), np.diff([f.timestamp for f in s.rgb])
        assert dd.std() > 0.003 and dr.std() > 0.003


def test_simulation_has_one_to_many_cases_and_holes(raw_dir):
    dropped, holes = 0, []
    for sd in _scenes(raw_dir):
        fr = read_frames_json(sd)
        dropped += sum(not e["kept"] for e in fr["expected_sync"])
        holes += [d["holes"] for d in fr["depth"]]
        raws = [read_kinect_disparity(sd / d["name"]) for d in fr["depth"]]
        assert any((r == RAW_INVALID).any() for r in raws)
    assert dropped >= 2
    assert max(h["shadow"] for h in holes) > 0 and max(h["out_of_range"] for h in holes) >= 0


def test_projector_shadow_of_a_step_has_the_predicted_width():
    """A box at 2 m in front of a wall at 4 m: the projector (to the right) leaves a shadow on the
    wall just left of the box, fx * b * (1/2 - 1/4) pixels wide."""
    K = Intrinsics(500.0, 500.0, 99.5, 0.5, 200, 2)
    depth = np.full((2, 200), 4.0)
    depth[:, 100:150] = 2.0
    shadow = _projector_shadow(depth, K)
    width = 500 * PROJECTOR_BASELINE * (1 / 2 - 1 / 4)  # 9.375 px
    cols = np.flatnonzero(shadow[0])
    assert cols.max() == 99 and abs(len(cols) - width) <= 1
    assert not shadow[:, 100:].any()


def test_accelerometer_gives_the_camera_tilt(raw_dir):
    sd = _scenes(raw_dir)[0]
    fr = read_frames_json(sd)
    depth_t = np.array([d["t"] for d in fr["depth"]])
    for a in fr["accel"][:5]:
        rec = read_accel_dump(sd / a["name"])
        j = int(np.argmin(np.abs(depth_t - a["t"])))
        if abs(depth_t[j] - a["t"]) > 0.02:
            continue
        R = np.array(fr["depth"][j]["world_from_depth"])[:3, :3]
        up = R.T @ [0, 1, 0]
        f = rec.mks() / np.linalg.norm(rec.mks())
        assert np.degrees(np.arccos(np.clip(f @ up, -1, 1))) < 3.0


# ----------------------------------------------------------------------------- synchronisation

@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=30, unique=True),
       st.lists(st.integers(0, 10_000), min_size=1, max_size=30, unique=True))
def test_nearest_frames_matches_brute_force(tq, tr):
    tq, tr = np.sort(tq) / 100.0, np.sort(tr) / 100.0
    got = nearest_frames(tq, tr)
    want, _ = expected_sync(tq, tr)
    np.testing.assert_array_equal(got, want)


def test_nearest_frames_ties_go_to_the_later_frame():
    assert nearest_frames(np.array([1.5]), np.array([1.0, 2.0]))[0] == 1


def test_synchronise_keeps_exactly_the_expected_frames(raw_dir):
    for sd in _scenes(raw_dir):
        sync = synchronise(list_raw_scene(sd))
        exp = read_frames_json(sd)["expected_sync"]
        assert [p["depth"] for p in sync.pairs] == [e["depth"] for e in exp if e["kept"]]
        assert [p["rgb"] for p in sync.pairs] == [e["rgb"] for e in exp if e["kept"]]
        assert [d["depth"] for d in sync.dropped] == [e["depth"] for e in exp if not e["kept"]]
        c = sync.counts
        assert c["kept"] + c["dropped_one_to_many"] == c["depth_frames"] == 10
        assert len({p["rgb"] for p in sync.pairs}) == len(sync.pairs)  # one-to-one
        assert "dropped" in sync.summary()


# ----------------------------------------------------------------------------- prepare

def test_prepared_depth_matches_the_ground_truth(raw_dir, prepared):
    out, report = prepared
    assert sorted(report.written) == [p.name for p in _scenes(raw_dir)] and not report.skipped
    n_frames = 0
    for sd in _scenes(raw_dir):
        doc = json.loads((out / sd.name / "sync.json").read_text())
        for f in doc["frames"]:
            d = read_depth_png_mm(out / sd.name / f["depth_out"])
            gt = read_ground_truth(sd / "groundtruth" / (f["rgb"][:-4] + ".npy"))
            v = d > 0
            rel = np.abs(d[v] - gt[v]) / gt[v]
            assert 0.6 < v.mean() < 0.95, v.mean()  # the depth camera sees less than the RGB camera
            assert np.median(rel) < 0.01, np.median(rel)
            n_frames += 1
    assert n_frames == report.counts["frames"] > 0
    lines = (out / "files_with_gt.txt").read_text().splitlines()
    assert len(lines) == n_frames and lines[0].endswith(" 129.7145")  # focal at 160x120
    ds = NYUSyncDataset(out, list_file=out / "files_with_gt.txt")
    s = ds[0]
    assert s["image"].shape == (3, 120, 160) and s["depth"].shape == (1, 120, 160)
    assert float(s["intrinsics"][0]) == pytest.approx(129.7145, abs=1e-4)  # the camera prepare registered into
    half = NYUSyncDataset(out, list_file=out / "files_with_gt.txt", transform=nyu_paper_input((60, 80)))[0]
    assert half["image"].shape == (3, 60, 80) and float(half["intrinsics"][0]) == pytest.approx(129.7145 / 2, abs=1e-4)


def test_min_max_mask_removes_pixels(raw_dir, tmp_path):
    a = prepare_nyu_raw(raw_dir, tmp_path / "a", workers=1, progress=False, min_max_mask=True)
    b = prepare_nyu_raw(raw_dir, tmp_path / "b", workers=1, progress=False, min_max_mask=False)
    name = a.written[0]
    da = read_depth_png_mm(tmp_path / "a" / name / "sync_depth_00000.png")
    db = read_depth_png_mm(tmp_path / "b" / name / "sync_depth_00000.png")
    assert (da > 0).sum() < (db > 0).sum()
    assert ((da > 0) <= (db > 0)).all()


def test_prepare_resumes_and_never_overwrites_silently(raw_dir, prepared, tmp_path):
    out = tmp_path / "sync"
    shutil.copytree(prepared[0], out)
    first, second = sorted(p.name for p in _scenes(raw_dir))
    stamp = os.stat(out / first / "sync_depth_00000.png").st_mtime_ns
    # a killed run: the second scene never finished, a stale partial folder of a dead process is left
    shutil.rmtree(out / second)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / f"{second}.partial-{dead.pid}").mkdir()
    (out / f"{second}.partial-{dead.pid}" / "junk").write_text("x")
    r = prepare_nyu_raw(raw_dir, out, workers=1, progress=False)
    assert r.resumed == [first] and r.written == [second] and not r.skipped
    assert os.stat(out / first / "sync_depth_00000.png").st_mtime_ns == stamp
    assert not (out / f"{second}.partial-{dead.pid}").exists()
    # a folder that is not a finished scene is left alone and reported
    shutil.rmtree(out / second)
    (out / second).mkdir()
    (out / second / "mine.txt").write_text("keep me")
    r = prepare_nyu_raw(raw_dir, out, workers=1, progress=False)
    assert "not overwriting" in r.skipped[second] and (out / second / "mine.txt").exists()
    # other settings on the same output: refuse
    with pytest.raises(UsageError, match="prepared with settings"):
        prepare_nyu_raw(raw_dir, out, workers=1, progress=False, min_max_mask=False)


def _bad_raw_dir(raw_dir, tmp_path):
    bad = tmp_path / "bad"
    good, victim = _scenes(raw_dir)
    shutil.copytree(good, bad / "good")
    # truncated depth frame
    shutil.copytree(victim, bad / "truncated")
    d = bad / "truncated" / synchronise(list_raw_scene(bad / "truncated")).pairs[0]["depth"]
    d.write_bytes(d.read_bytes()[:500])
    # no depth frames
    shutil.copytree(victim, bad / "nodepth")
    for p in (bad / "nodepth").glob("d-*.pgm"):
        p.unlink()
    # timestamps out of order: a depth frame whose counter says it came earlier than its time says
    shutil.copytree(victim, bad / "order")
    frames = sorted((bad / "order").glob("d-*.pgm"), key=lambda p: float(p.name.split("-")[1]))
    kind, t, c = frames[3].name[:-4].split("-")
    frames[3].rename(frames[3].with_name(f"d-{t}-{int(c) - 10**7}.pgm"))
    # an RGB frame with the wrong magic number
    shutil.copytree(victim, bad / "badmagic")
    r = bad / "badmagic" / synchronise(list_raw_scene(bad / "badmagic")).pairs[-1]["rgb"]
    r.write_bytes(b"P3" + r.read_bytes()[2:])
    # an empty folder
    (bad / "empty").mkdir()
    return bad, d.name


def test_prepare_skips_bad_scenes_and_reports_them(raw_dir, tmp_path):
    bad, truncated = _bad_raw_dir(raw_dir, tmp_path)
    r = prepare_nyu_raw(bad, tmp_path / "out", workers=2, progress=False)
    assert r.written == ["good"]
    assert set(r.skipped) == {"truncated", "nodepth", "order", "empty", "badmagic"}
    assert "not a binary PPM" in r.skipped["badmagic"] and ".ppm" in r.skipped["badmagic"]
    assert truncated in r.skipped["truncated"] and "truncated" in r.skipped["truncated"]
    assert "no depth frames" in r.skipped["nodepth"] and "no depth frames" in r.skipped["empty"]
    assert "out of order" in r.skipped["order"]
    assert not any(".partial" in p.name for p in (tmp_path / "out").iterdir())
    assert not (tmp_path / "out" / "truncated").exists()
    assert "skipped truncated" in r.summary()


def test_list_raw_scene_errors(tmp_path):
    with pytest.raises(FormatError, match="not a scene folder"):
        list_raw_scene(tmp_path / "missing")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "d-1.000000-5.pgm").write_bytes(b"")
    with pytest.raises(FormatError, match="no RGB frames"):
        list_raw_scene(tmp_path / "s")
    (tmp_path / "s" / "r-1.000000-5.ppm").write_bytes(b"")
    (tmp_path / "s" / "d-2.000000-5.pgm").write_bytes(b"")
    with pytest.raises(FormatError, match="d-2.000000-5.pgm: depth timestamps out of order"):
        list_raw_scene(tmp_path / "s")


def test_prepare_into_a_folder_inside_the_raw_folder(raw_dir, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(_scenes(raw_dir)[0], raw / "scene_a")
    r = prepare_nyu_raw(raw, raw / "sync", workers=1, progress=False)
    assert r.written == ["scene_a"] and not r.skipped
    r = prepare_nyu_raw(raw, raw / "sync", workers=1, progress=False)
    assert r.resumed == ["scene_a"] and not r.skipped
    # a single scene folder given directly as RAW_DIR
    r = prepare_nyu_raw(raw / "scene_a", tmp_path / "one", workers=1, progress=False)
    assert r.written == ["scene_a"]


def test_prepare_a_scene_of_real_kinect_frames(shared_data, tmp_path):
    """The real raw frame pair, filed as a two-frame scene, goes through prepare unchanged in
    geometry: the written depth is register_depth's (to the millimetre), the RGB undistort_rgb's."""
    from mdlearn.data.formats import read_rgb
    from mdlearn.data.kinect import format_raw_name, register_depth, undistort_rgb

    src = shared_data / "nyu/raw_frame"
    scene = tmp_path / "raw" / "basement_real"
    scene.mkdir(parents=True)
    for i in range(2):
        t = 1315403270.0 + i / 15
        shutil.copyfile(src / "NYU_color.ppm", scene / format_raw_name("r", t, 100 + i))
        shutil.copyfile(src / "NYU_depth.pgm", scene / format_raw_name("d", t + 0.01, 900 + i))
    r = prepare_nyu_raw(tmp_path / "raw", tmp_path / "sync", workers=1, rgb_format="png", progress=False)
    assert r.written == ["basement_real"] and r.counts["frames"] == 2
    raw = read_kinect_disparity(src / "NYU_depth.pgm")
    depth = read_depth_png_mm(tmp_path / "sync/basement_real/sync_depth_00001.png")
    np.testing.assert_allclose(depth, register_depth(raw, min_max_mask=True), atol=5e-4)
    rgb = read_rgb(tmp_path / "sync/basement_real/rgb_00001.png")
    np.testing.assert_array_equal(rgb, undistort_rgb(read_kinect_ppm(src / "NYU_color.ppm")))
    assert (tmp_path / "sync/files_with_gt.txt").read_text().splitlines()[0] == \
        "basement_real/rgb_00000.png basement_real/sync_depth_00000.png 518.8579"


def test_prepare_interrupted_then_resumed(raw_dir, tmp_path, monkeypatch):
    """Ctrl-C in the middle of the second scene: the first scene is finished and kept, the second
    is redone by the next run, and the result equals an uninterrupted run."""
    import mdlearn.data.nyu_prepare as nyu

    real = nyu._prepare_frame
    first, second = sorted(p.name for p in _scenes(raw_dir))
    n_first = len(synchronise(list_raw_scene(raw_dir / first)).pairs)
    calls = {"n": 0}

    def flaky(task):
        calls["n"] += 1
        if calls["n"] == n_first + 2:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(nyu, "_prepare_frame", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_nyu_raw(raw_dir, tmp_path / "out", workers=1, progress=False)
    assert (tmp_path / "out" / first / "sync.json").is_file() and not (tmp_path / "out" / second).exists()
    assert not any(".partial" in p.name for p in (tmp_path / "out").iterdir())  # nothing half-written
    monkeypatch.setattr(nyu, "_prepare_frame", real)
    r = prepare_nyu_raw(raw_dir, tmp_path / "out", workers=1, progress=False)
    assert r.resumed == [first] and r.written == [second]
    assert not any(".partial" in p.name for p in (tmp_path / "out").iterdir())
    ref = prepare_nyu_raw(raw_dir, tmp_path / "ref", workers=1, progress=False)
    assert ref.counts["frames"] == r.counts["frames"] + n_first
    assert (tmp_path / "out" / "files_with_gt.txt").read_text() == (tmp_path / "ref" / "files_with_gt.txt").read_text()
