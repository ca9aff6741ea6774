"""Ray casting against constructed cases whose answers are known in closed form."""

import math

import numpy as np
import pytest
import torch

from mdlearn.camera import Intrinsics
from mdlearn.synthetic import indoor
from mdlearn.synthetic.raycast import interior_exit, ray_box, ray_sphere, ray_vertical_cylinder

K = Intrinsics(fx=100.0, fy=100.0, cx=79.5, cy=59.5, width=160, height=120)
EMPTY = indoor.Room(size=(6.0, 3.0, 8.0), materials=(indoor.Material((0.5, 0.5, 0.5)),),
                    surface_materials=(0, 0, 0, 0, 0, 0), window_material=0)


@pytest.mark.parametrize("distance", [0.7, 2.0, 5.5])
def test_facing_a_wall_gives_its_distance_everywhere(distance):
    """A camera looking along +z at the far wall sees constant z-depth = distance on the wall."""
    room = indoor.Room(size=(60.0, 40.0, 2.0 + distance), materials=EMPTY.materials,
                       surface_materials=(0,) * 6, window_material=0)
    _, depth = indoor.render(room, indoor.look_pose((30.0, 20.0, 2.0), yaw=0.0, pitch=0.0), K)
    np.testing.assert_allclose(depth, distance, rtol=1e-5)


@pytest.mark.parametrize("height,pitch_deg", [(1.0, 15.0), (1.5, 30.0), (1.8, 45.0)])
def test_tilted_floor_matches_closed_form(height, pitch_deg):
    """Camera at height h pitched down by theta: floor depth in row v is h / (cos t (v-cy)/fy + sin t)."""
    theta = math.radians(pitch_deg)
    _, depth = indoor.render(EMPTY, indoor.look_pose((3.0, height, 0.5), yaw=0.0, pitch=-theta), K)
    v = np.arange(K.height, dtype=np.float64)
    denom = np.cos(theta) * (v - K.cy) / K.fy + np.sin(theta)
    expected = height / np.where(denom > 0, denom, np.nan)
    floor_rows = np.isfinite(expected) & (expected * np.cos(theta) < 7.0)  # rows whose floor point is in the room
    rows = np.nonzero(floor_rows)[0][-20:]
    np.testing.assert_allclose(depth[rows], np.broadcast_to(expected[rows, None], (len(rows), K.width)), rtol=1e-4)


def test_rolled_camera_floor_depth_depends_on_image_direction():
    """With a roll, equal-depth lines on the floor tilt: the left and right ends of a row differ."""
    pose = indoor.look_pose((3.0, 1.5, 0.5), yaw=0.0, pitch=-0.5, roll=math.radians(5))
    _, depth = indoor.render(EMPTY, pose, K)
    assert abs(depth[-1, 0] - depth[-1, -1]) > 0.01


def test_ray_box_axis_aligned_and_rotated():
    o = torch.zeros(3)
    d = torch.tensor([[0.0, 0.0, 1.0]])
    t = ray_box(o, d, torch.tensor([0.0, 0.0, 5.0]), torch.tensor([1.0, 1.0, 1.0]), yaw=0.0)
    assert t.item() == pytest.approx(4.0)
    # rotated by 45 degrees: the nearest corner edge is at 5 - sqrt(2)
    t = ray_box(o, d, torch.tensor([0.0, 0.0, 5.0]), torch.tensor([1.0, 1.0, 1.0]), yaw=math.pi / 4)
    assert t.item() == pytest.approx(5.0 - math.sqrt(2.0), rel=1e-5)
    # a miss and a box behind the camera
    assert math.isinf(ray_box(o, d, torch.tensor([3.0, 0.0, 5.0]), torch.ones(3), 0.0).item())
    assert math.isinf(ray_box(o, d, torch.tensor([0.0, 0.0, -5.0]), torch.ones(3), 0.0).item())


def test_ray_cylinder_side_and_cap():
    o = torch.tensor([0.0, 1.0, 0.0])
    side = ray_vertical_cylinder(o, torch.tensor([[0.0, 0.0, 1.0]]), 0.0, 4.0, 0.0, 2.0, 0.5)
    assert side.item() == pytest.approx(3.5)
    # looking down onto the top cap at height 0.5 from y = 1
    cap = ray_vertical_cylinder(o, torch.tensor([[0.0, -1.0, 0.0]]), 0.0, 0.0, 0.0, 0.5, 0.3)
    assert cap.item() == pytest.approx(0.5)
    # passing above the cylinder
    miss = ray_vertical_cylinder(o, torch.tensor([[0.0, 0.0, 1.0]]), 0.0, 4.0, 0.0, 0.5, 0.5)
    assert math.isinf(miss.item())


def test_ray_sphere():
    t = ray_sphere(torch.zeros(3), torch.tensor([[0.0, 0.0, 2.0]]), torch.tensor([0.0, 0.0, 10.0]), 1.0)
    assert t.item() == pytest.approx(4.5)  # unnormalised direction: t scales with 1/|d|


def test_interior_exit_faces_and_parallel_rays():
    lo, hi = torch.zeros(3), torch.tensor([4.0, 3.0, 5.0])
    o = torch.tensor([1.0, 1.0, 1.0])
    dirs = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 1.0, 0.0],
                         [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    t, face = interior_exit(o, dirs, lo, hi)
    assert t.tolist() == pytest.approx([3.0, 1.0, 1.0, 2.0, 1.0, 4.0])
    assert face.tolist() == [1, 0, 2, 3, 4, 5]
    assert (t > 0).all()  # exactly parallel rays never pick a face behind them


def test_every_pixel_of_a_sampled_room_has_positive_finite_depth():
    for r in range(3):
        v = indoor.render_view(5, r, 0, K=K)
        assert np.isfinite(v.depth).all() and (v.depth > 0).all()
        assert v.rgb.shape == (K.height, K.width, 3) and v.rgb.dtype == np.uint8
