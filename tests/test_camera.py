import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlearn.camera import NYU_DEPTH, NYU_RGB, Intrinsics, backproject, pixel_grid, project, transform_points
from mdlearn.errors import UsageError


@settings(max_examples=40, deadline=None)
@given(
    fx=st.floats(100, 2000), fy=st.floats(100, 2000), cx=st.floats(-50, 700), cy=st.floats(-50, 500),
    seed=st.integers(0, 2**31 - 1),
)
def test_backproject_project_round_trip_is_subpixel(fx, fy, cx, cy, seed):
    K = Intrinsics(fx, fy, cx, cy, 64, 48)
    g = torch.Generator().manual_seed(seed)
    depth = 0.3 + 20.0 * torch.rand(48, 64, generator=g)
    pts = backproject(depth, K)
    uv, z = project(pts, K)
    u, v = pixel_grid(48, 64)
    assert torch.allclose(uv[..., 0], u, atol=1e-3)
    assert torch.allclose(uv[..., 1], v, atol=1e-3)
    assert torch.allclose(z, depth)


def test_backproject_known_point():
    K = Intrinsics(500.0, 400.0, 10.0, 20.0, 40, 30)
    depth = torch.zeros(30, 40)
    depth[25, 30] = 2.0
    p = backproject(depth, K)[25, 30]
    assert p.tolist() == pytest.approx([(30 - 10) / 500 * 2, (25 - 20) / 400 * 2, 2.0])
    assert backproject(depth, K)[0, 0].tolist() == [0.0, 0.0, 0.0]  # invalid pixels give the origin


def test_backproject_rejects_wrong_size():
    with pytest.raises(UsageError, match="depth map is 10x10 but the intrinsics are for 640x480"):
        backproject(torch.ones(10, 10), NYU_RGB)


def test_project_behind_camera_is_nan():
    uv, z = project(torch.tensor([[0.0, 0.0, -1.0], [0.1, 0.0, 1.0]]), NYU_RGB)
    assert torch.isnan(uv[0]).all() and not torch.isnan(uv[1]).any()
    assert z[0] == -1.0


def test_scaled_intrinsics_preserve_rays():
    """The ray through a pixel centre is the same ray after resizing the image."""
    K2 = NYU_RGB.scaled(0.5)
    assert (K2.width, K2.height) == (320, 240)
    # pixel (u, v) at full size covers [(u-.5), (u+.5)]; its centre maps to (u + .5) * .5 - .5
    u, v = 100.0, 200.0
    u2, v2 = (u + 0.5) * 0.5 - 0.5, (v + 0.5) * 0.5 - 0.5
    ray1 = ((u - NYU_RGB.cx) / NYU_RGB.fx, (v - NYU_RGB.cy) / NYU_RGB.fy)
    ray2 = ((u2 - K2.cx) / K2.fx, (v2 - K2.cy) / K2.fy)
    assert ray1 == pytest.approx(ray2, rel=1e-9)


def test_transform_points_matches_matrix():
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    T[:3, 3] = [1, 2, 3]
    p = transform_points(torch.tensor(T), torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))
    assert p.tolist() == [[1.0, 3.0, 3.0]]


def test_intrinsics_dict_round_trip():
    assert Intrinsics.from_dict(NYU_RGB.to_dict()) == NYU_RGB
    assert NYU_RGB.matrix()[0, 2].item() == pytest.approx(NYU_RGB.cx)


# ------------------------------------------------------------------------- the NYU Kinect, once

def test_nyu_cameras_are_the_toolbox_numbers_on_the_0_based_grid():
    # camera_params.m: cx_rgb = 3.2558244941119034e+02 on the toolbox's meshgrid(1:640, 1:480)
    assert NYU_RGB.cx == pytest.approx(325.58244941119034 - 1) and NYU_RGB.cy == pytest.approx(253.73616633400465 - 1)
    assert NYU_DEPTH.cx == pytest.approx(313.04475870804731 - 1) and NYU_DEPTH.cy == pytest.approx(238.44389626620386 - 1)
    # the same ray through the toolbox's pixel (u + 1, v + 1) and mdlearn's pixel (u, v)
    u, v = 100.0, 400.0
    toolbox_ray = ((u + 1) - 325.58244941119034) / NYU_RGB.fx, ((v + 1) - 253.73616633400465) / NYU_RGB.fy
    ray = (u - NYU_RGB.cx) / NYU_RGB.fx, (v - NYU_RGB.cy) / NYU_RGB.fy
    assert ray == pytest.approx(toolbox_ray, abs=1e-12)


def test_synthetic_and_prepared_nyu_share_one_camera():
    from mdlearn.data.kinect import NYU_KINECT
    from mdlearn.synthetic.nyu_sync import IndoorSpec

    assert NYU_KINECT.rgb == NYU_RGB and NYU_KINECT.depth == NYU_DEPTH
    assert IndoorSpec(rooms=1, views_per_room=1).intrinsics == NYU_KINECT.rgb
    half = IndoorSpec(rooms=1, views_per_room=1, resolution=0.5).intrinsics
    assert half == NYU_KINECT.for_size(320, 240).rgb


def test_one_nyu_depth_cap():
    from mdlearn.data import kinect, nyu
    from mdlearn.evaluation import nyu_eigen

    assert nyu.NYU_MAX_DEPTH is kinect.NYU_MAX_DEPTH == 10.0 and nyu_eigen.max_depth == 10.0
    assert not hasattr(kinect, "TOOLBOX_MAX_DEPTH")
