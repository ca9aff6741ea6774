"""The synthetic indoor world: determinism, NYU-like poses and depth statistics, dollhouse invariance."""

import math

import numpy as np
import pytest

from mdlearn.camera import NYU_RGB
from mdlearn.datasets import DATASETS
from mdlearn.synthetic import indoor
from mdlearn.synthetic.nyu_sync import is_complete

K_SMALL = NYU_RGB.scaled(0.25)


def test_same_seed_same_views_other_seed_other_views():
    a = indoor.render_view(3, 2, 1, K=K_SMALL)
    b = indoor.render_view(3, 2, 1, K=K_SMALL)
    c = indoor.render_view(4, 2, 1, K=K_SMALL)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.pose, b.pose)
    assert not np.array_equal(a.depth, c.depth)
    assert indoor.sample_room(3, 2) == indoor.sample_room(3, 2)


def test_pose_does_not_depend_on_resolution():
    small = indoor.render_view(1, 0, 0, K=K_SMALL)
    large = indoor.render_view(1, 0, 0, K=NYU_RGB.scaled(0.5))
    np.testing.assert_array_equal(small.pose, large.pose)


def test_poses_are_nyu_like():
    """Standing height, looking down a little, small roll, inside the room, away from furniture."""
    for r in range(6):
        room = indoor.sample_room(21, r)
        for v in range(3):
            view = indoor.render_view(21, r, v, K=K_SMALL, room=room)
            R, t = view.pose[:3, :3], view.pose[:3, 3]
            W, H, D = room.size
            assert 1.0 <= t[1] <= 1.8 and 0 < t[0] < W and 0 < t[2] < D
            forward, right = R[:, 2], R[:, 0]
            pitch = math.degrees(math.asin(forward[1]))
            roll = math.degrees(math.asin(right[1]))
            assert -26 <= pitch <= -2, pitch
            assert abs(roll) <= 6.5, roll
            assert np.allclose(R.T @ R, np.eye(3), atol=1e-9) and np.linalg.det(R) == pytest.approx(1.0)
            assert (view.depth < 0.5).mean() <= 0.05


def test_rooms_vary_in_size_like_real_rooms():
    sizes = np.array([indoor.sample_room(0, i).size for i in range(40)])
    widths, heights, depths = sizes.T
    assert widths.min() >= 2.6 and widths.max() <= 7.0 and np.ptp(widths) > 2.5
    assert heights.min() >= 2.35 and heights.max() <= 3.2
    assert depths.min() >= 3.0 and depths.max() <= 8.5 and np.ptp(depths) > 3.0
    assert all(len(indoor.sample_room(0, i).boxes) >= 3 for i in range(10))


@pytest.mark.parametrize("s", [2.0, 0.5, 1.7, 0.31])
def test_dollhouse_scaling_keeps_the_image_and_scales_depth(s):
    room = indoor.sample_room(2014, 3)
    pose = indoor.sample_pose(room, np.random.default_rng(7), K_SMALL)
    rgb1, d1 = indoor.render(room, pose, K_SMALL)
    pose_s = pose.copy()
    pose_s[:3, 3] *= s
    rgb2, d2 = indoor.render(room.scaled(s), pose_s, K_SMALL)
    np.testing.assert_allclose(d2 / d1, s, rtol=1e-4)
    changed = np.abs(rgb1.astype(int) - rgb2.astype(int))
    if math.log2(s).is_integer():
        assert changed.max() == 0  # powers of two scale floats exactly
    else:
        assert (changed > 0).mean() < 1e-3  # rounding at texture edges only


def test_scaled_rejects_non_positive():
    with pytest.raises(ValueError):
        indoor.sample_room(0, 0).scaled(0.0)


def _depth_sample_of_default_dataset(n_views: int = 150) -> np.ndarray:
    """Depths of the default dataset: read from data/indoor if generated, else rendered small."""
    from mdlearn.data.formats import read_depth_png_mm
    from mdlearn.paths import data_dir
    from mdlearn.synthetic.nyu_sync import read_index

    spec = DATASETS["indoor"].spec
    root = data_dir() / "indoor"
    if is_complete(root, spec):
        views = read_index(root)["views"]
        pick = np.linspace(0, len(views) - 1, n_views).round().astype(int)
        return np.concatenate([read_depth_png_mm(root / views[i]["depth"]).ravel() for i in pick])
    rooms = np.linspace(0, spec.rooms - 1, 30).round().astype(int)
    return np.concatenate([indoor.render_view(spec.seed, int(r), v, K=NYU_RGB.scaled(0.125)).depth.ravel()
                           for r in rooms for v in (0, 7)])


def test_default_dataset_depth_statistics_resemble_nyu():
    d = _depth_sample_of_default_dataset()
    assert 2.5 <= np.median(d) <= 3.5, np.median(d)
    assert np.percentile(d, 99) <= 10.0 and d.max() <= 10.5
    assert np.percentile(d, 99.9) >= 5.0  # far walls and corridors reach well past the room
    assert (d < 0.5).mean() < 0.05


def test_default_dataset_is_large_enough_for_the_book():
    spec = DATASETS["indoor"].spec
    n_test_rooms = len(spec.test_rooms())
    assert spec.rooms >= 50
    assert (spec.rooms - n_test_rooms) * spec.views_per_room >= 2000
    assert n_test_rooms * spec.views_per_room >= 200
