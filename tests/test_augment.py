"""Paper augmentation (mdlearn.data.augment): geometry kept consistent across image, depth, mask and camera."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from mdlearn.camera import NYU_RGB, backproject, project
from mdlearn.data.augment import (INPUT_SIZE, RandomColorScale, RandomZoom, color_scale, paper_augmentation,
                                  test_transform, zoom)
from mdlearn.data.sample import check_sample, make_sample
from mdlearn.synthetic import indoor

K_ODD = (50.0, 47.0, 2.3, 1.6)  # fx != fy, principal point off-centre: catches swapped axes


def coded_sample(h: int, w: int, holes: float = 0.0, seed: int = 0, K=K_ODD) -> dict:
    """A sample whose every pixel is identifiable: red = column, green = row, a unique depth per pixel."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:h, 0:w]
    img = np.stack([u / (w - 1), v / (h - 1), rng.uniform(0, 1, (h, w))], -1)
    depth = (1.0 + 0.01 * (v * w + u)).astype(np.float32)
    depth[rng.uniform(size=(h, w)) < holes] = 0.0
    rgb = torch.from_numpy(img).permute(2, 0, 1).float()
    return make_sample(rgb, depth, K, name="coded", dataset="nyu-sync", split="train", gt="filled")


def source_pixel(sample: dict, w: int, out_depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, col) of the source pixel each output depth came from (decoded from the unique depths)."""
    idx = torch.round((out_depth - 1.0) / 0.01).long()
    return idx // w, idx % w


def assert_consistent(sample: dict) -> None:
    check_sample(sample)
    assert torch.equal(sample["valid"], sample["valid"] & (sample["depth"] > 0))
    assert torch.equal(sample["valid"], sample["depth"] > 0)


# ------------------------------------------------------------------------------------------ scale


def test_zoom_divides_every_depth_by_s_with_nearest_pixels():
    h, w, s = 4, 6, 1.5  # 6x9 exactly: output pixel u' samples source floor((u' + 0.5) / s)
    src = coded_sample(h, w, holes=0.3, seed=1)
    for out in (zoom(src, s), RandomZoom((s, s))(src)):
        assert_consistent(out)
        assert out["depth"].shape == (1, 6, 9)
        rows = torch.div(torch.arange(6) + 0.5, s, rounding_mode="floor").long()
        cols = torch.div(torch.arange(9) + 0.5, s, rounding_mode="floor").long()
        expected = src["depth"][0][rows][:, cols] / s
        assert torch.equal(out["depth"][0], expected)
        assert torch.equal(out["valid"][0], src["valid"][0][rows][:, cols])
        fx, fy, cx, cy = out["intrinsics"].tolist()
        assert (fx, fy) == pytest.approx((K_ODD[0] * s, K_ODD[1] * s))
        assert (cx, cy) == pytest.approx(((K_ODD[2] + 0.5) * s - 0.5, (K_ODD[3] + 0.5) * s - 0.5))


def test_zoomed_pair_is_the_shrunk_world_seen_by_the_zoomed_camera():
    """Back-projecting (depth / s, intrinsics s f) gives the source's 3-D points divided by s."""
    src = coded_sample(8, 10, seed=2)
    out = zoom(src, 1.5)
    p_out = backproject(out["depth"][0], out["intrinsics"].to_intrinsics())
    r, c = source_pixel(src, 10, out["depth"][0] * 1.5)
    p_src = backproject(src["depth"][0], src["intrinsics"].to_intrinsics())[r, c]
    # the nearest source pixel is at most half a source pixel away from the output pixel's ray
    K = src["intrinsics"].to_intrinsics()
    z = p_src[..., 2]
    torch.testing.assert_close(p_out[..., 2], z / 1.5, rtol=1e-6, atol=0)
    assert ((p_out[..., 0] - p_src[..., 0] / 1.5).abs() <= 0.5 * z / K.fx / 1.5 + 1e-6).all()
    assert ((p_out[..., 1] - p_src[..., 1] / 1.5).abs() <= 0.5 * z / K.fy / 1.5 + 1e-6).all()


@pytest.mark.parametrize("s", [1.25, 1.5])
def test_scale_augmentation_against_the_renderer(s):
    """The augmented pair equals the render of the room shrunk by s, seen by the camera zoomed by s.

    Depth: for every output pixel the rendered depth of its ray must lie between the nearest
    source depths / s (exact for a plane seen across the 2x2 source pixels around the ray). The
    same check on the zoom *without* dividing depth fails nearly everywhere.
    """
    K0 = NYU_RGB.scaled(0.25)
    room = indoor.sample_room(2014, 3)
    pose = indoor.sample_pose(room, np.random.default_rng(7), K0)
    rgb, depth = indoor.render(room, pose, K0)
    src = make_sample(rgb, depth, K0, name="r", dataset="nyu-sync", split="train", gt="filled")
    out = zoom(src, s)
    Ks = out["intrinsics"].to_intrinsics()
    small = pose.copy()
    small[:3, 3] /= s  # the dollhouse: the world shrunk by s about the origin, camera position with it
    rgb_ref, d_ref = indoor.render(room.scaled(1.0 / s), small, Ks)
    d_ref = torch.from_numpy(d_ref)

    # continuous source position of every output pixel's ray, and its 2x2 source neighbourhood
    h, w = depth.shape
    v, u = torch.meshgrid(torch.arange(Ks.height, dtype=torch.float64), torch.arange(Ks.width, dtype=torch.float64),
                          indexing="ij")
    su, sv = (u + 0.5) * w / Ks.width - 0.5, (v + 0.5) * h / Ks.height - 0.5
    u0, v0 = su.floor().long().clamp(0, w - 2), sv.floor().long().clamp(0, h - 2)
    D = torch.from_numpy(depth)
    nb = torch.stack([D[v0, u0], D[v0, u0 + 1], D[v0 + 1, u0], D[v0 + 1, u0 + 1]])
    lo, hi = nb.min(0).values, nb.max(0).values
    interior = (su >= 0) & (su <= w - 1) & (sv >= 0) & (sv <= h - 1)  # rays between source pixel centres
    one_surface = (hi / lo < 1.05) & interior  # away from occlusion edges and the border
    inside = ((d_ref >= lo / s * (1 - 1e-4)) & (d_ref <= hi / s * (1 + 1e-4)))[one_surface]
    assert one_surface.float().mean() > 0.9
    assert inside.float().mean() > 0.99
    not_divided = ((d_ref >= lo * (1 - 1e-4)) & (d_ref <= hi * (1 + 1e-4)))[one_surface]
    assert not_divided.float().mean() < 0.01
    # and the augmented depth itself is within the neighbourhood of the true ray's depth
    rel = (out["depth"][0] - d_ref).abs() / d_ref
    assert float(rel[one_surface].median()) < 0.01

    # image: the bilinearly enlarged picture matches the zoomed render up to resampling blur,
    # much better than the naive reading "the camera moved closer" (parallax changes the picture)
    ref = torch.from_numpy(rgb_ref).permute(2, 0, 1).float() / 255.0
    err_zoom = float((out["image"] - ref).abs().mean())
    closer = pose.copy()
    closer[:3, 3] += pose[:3, 2] * float(np.median(depth)) * (1 - 1 / s)  # forward until the median depth is / s
    rgb_closer, _ = indoor.render(room, closer, Ks)
    err_closer = float((out["image"] - torch.from_numpy(rgb_closer).permute(2, 0, 1).float() / 255.0).abs().mean())
    assert err_zoom < 0.03
    assert err_zoom < 0.3 * err_closer


# ------------------------------------------------------------------------------------ flips, crops


@pytest.mark.parametrize("step", [v2.RandomHorizontalFlip(p=1.0), v2.RandomCrop((5, 7)),
                                  v2.Compose([v2.RandomCrop((5, 7)), v2.RandomHorizontalFlip(p=1.0)]),
                                  v2.CenterCrop((6, 8))])
def test_flips_and_crops_move_image_depth_mask_and_camera_together(step):
    h, w = 9, 12
    src = coded_sample(h, w, holes=0.25, seed=3)
    torch.manual_seed(5)
    out = step(src)
    assert_consistent(out)
    Kin, Kout = src["intrinsics"].to_intrinsics(), out["intrinsics"].to_intrinsics()
    flipped = any(isinstance(t, v2.RandomHorizontalFlip) for t in getattr(step, "transforms", [step]))
    # the image says where each output pixel came from; depth and mask must say the same
    cols = torch.round(out["image"][0] * (w - 1)).long()
    rows = torch.round(out["image"][1] * (h - 1)).long()
    assert torch.equal(out["valid"][0], src["valid"][0][rows, cols])
    assert torch.equal(out["depth"][0], src["depth"][0][rows, cols])
    # the camera: a source point projects, with the output intrinsics, onto its output pixel
    p = backproject(src["depth"][0], Kin)[rows, cols]
    if flipped:
        p = p * torch.tensor([-1.0, 1.0, 1.0])  # a mirrored image is the camera's view of the mirrored world
    uv, _ = project(p[out["valid"][0]], Kout)
    vv, uu = torch.nonzero(out["valid"][0], as_tuple=True)
    torch.testing.assert_close(uv, torch.stack([uu, vv], -1).float(), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------------------- rotation


def rolled_sample(angle: float, affine: bool = False) -> tuple[dict, dict, torch.Tensor]:
    """A coded 40x60 sample with holes, turned counter-clockwise by ``angle`` degrees; the roll matrix.

    ``affine``: the same turn by ``v2.RandomAffine`` (whose angle is clockwise).
    """
    src = coded_sample(40, 60, holes=0.2, seed=4, K=(60.0, 60.0, 27.0, 21.0))
    if affine:
        step = v2.RandomAffine((-angle, -angle), interpolation=v2.InterpolationMode.BILINEAR, fill=None)
    else:
        step = v2.RandomRotation((angle, angle), interpolation=v2.InterpolationMode.BILINEAR, fill=None)
    t = math.radians(angle)  # counter-clockwise on screen (y down)
    R = torch.tensor([[math.cos(t), math.sin(t), 0.0], [-math.sin(t), math.cos(t), 0.0], [0.0, 0.0, 1.0]])
    return src, step(src), R


def landing_error(src: dict, out: dict, R: torch.Tensor) -> torch.Tensor:
    """Pixels between where each source point, rolled by ``R``, projects and where it landed."""
    valid = out["valid"][0]
    r, c = source_pixel(src, 60, out["depth"][0][valid])
    p = backproject(src["depth"][0], src["intrinsics"].to_intrinsics())[r, c]
    uv, _ = project(p @ R.T, out["intrinsics"].to_intrinsics())
    vv, uu = torch.nonzero(valid, as_tuple=True)
    return uv - torch.stack([uu, vv], -1).float()


@pytest.mark.parametrize("angle", [5.0, -5.0, 3.3])
def test_rotation_brings_in_invalid_pixels_and_never_validates_a_hole(angle):
    src, out, R = rolled_sample(angle)
    assert_consistent(out)
    # corners are brought in from outside the source: invalid, black
    assert not out["valid"][0, 0, 0] and not out["valid"][0, -1, -1]
    assert float(out["image"][:, 0, 0].abs().max()) == 0.0
    # every valid output depth is one source depth (nearest), from a valid source pixel, unchanged
    # in value: a roll about the optical axis keeps z-depth
    valid = out["valid"][0]
    r, c = source_pixel(src, 60, out["depth"][0][valid])
    assert bool(src["valid"][0][r, c].all())
    assert torch.equal(src["depth"][0][r, c], out["depth"][0][valid])
    # the camera rolled with the image: each source point, rolled about the optical axis, projects
    # with the output intrinsics onto its output pixel (up to nearest resampling: < 0.71 px)
    err = landing_error(src, out, R)
    assert float(err.abs().max()) <= 0.6 and float(err.mean(0).abs().max()) < 0.05


def test_affine_rotation_agrees_with_rotate():
    """F.affine turns clockwise, F.rotate counter-clockwise: the same turn gives the same sample."""
    _, a, R = rolled_sample(4.0)
    src, b, _ = rolled_sample(4.0, affine=True)
    for k in ("image", "depth", "valid"):
        assert torch.equal(a[k], b[k])
    torch.testing.assert_close(a["intrinsics"], b["intrinsics"])
    err = landing_error(src, b, R)
    assert float(err.abs().max()) <= 0.6


# ------------------------------------------------------------------------------------------ colour


def test_colour_scales_the_image_only_and_stays_in_range():
    src = coded_sample(6, 8, holes=0.2, seed=5)
    src["image"][:, :2] = 0.95  # some pixels that c > 1 pushes past 1
    torch.manual_seed(0)
    out = RandomColorScale(0.8, 1.2)(src)
    for k in ("depth", "valid", "intrinsics"):
        assert torch.equal(out[k], src[k])
    assert out["image"].min() >= 0 and out["image"].max() <= 1
    unclamped = (src["image"] > 0.05) & (src["image"] < 0.8)
    ratios = [(out["image"][k] / src["image"][k])[unclamped[k]] for k in range(3)]
    c = torch.stack([r.mean() for r in ratios])
    for k in range(3):
        torch.testing.assert_close(ratios[k], c[k].expand_as(ratios[k]), rtol=1e-5, atol=0)
    assert ((c >= 0.8) & (c <= 1.2)).all() and c.std() > 0  # one factor per channel
    torch.testing.assert_close(color_scale(src["image"], c), out["image"])


# ------------------------------------------------------------------------------------ compositions


def test_paper_augmentation_gives_valid_samples_of_the_input_size():
    src = coded_sample(240, 320, holes=0.1, seed=6, K=(259.4, 259.7, 162.8, 126.9))
    aug = paper_augmentation("nyu")
    rot = [t for t in aug.transforms if isinstance(t, v2.RandomRotation)]
    assert len(rot) == 1 and list(rot[0].degrees) == [-5.0, 5.0]
    for seed in range(4):
        torch.manual_seed(seed)
        out = aug(src)
        assert_consistent(out)
        assert out["image"].shape == (3, *INPUT_SIZE["nyu"])
        assert 0 <= float(out["image"].min()) and float(out["image"].max()) <= 1
        assert out["intrinsics"][0] >= 259.4 and out["intrinsics"][0] <= 259.4 * 1.5 + 1e-6
    torch.manual_seed(9)
    a = aug(src)
    torch.manual_seed(9)
    b = aug(src)
    for k in ("image", "depth", "valid", "intrinsics"):
        assert torch.equal(a[k], b[k])  # seedable through torch's global generator


def test_kitti_variant_has_smaller_scales_and_no_rotation():
    aug = paper_augmentation("kitti")
    kinds = [type(t) for t in aug.transforms]
    assert v2.RandomRotation not in kinds and v2.RandomAffine not in kinds
    assert aug.transforms[0].scale == (1.0, 1.2)
    src = coded_sample(184, 612, holes=0.5, seed=7, K=(360.0, 360.0, 300.0, 86.0))
    torch.manual_seed(0)
    out = aug(src)
    assert_consistent(out)
    assert out["image"].shape == (3, 172, 576)


def test_test_transform_is_a_deterministic_centre_crop():
    src = coded_sample(240, 320, holes=0.1, seed=8, K=(259.4, 259.7, 162.8, 126.9))
    t = test_transform("nyu-sync")
    state = torch.get_rng_state()
    a, b = t(src), t(src)
    assert torch.equal(torch.get_rng_state(), state)  # consumes no randomness
    for k in ("image", "depth", "valid", "intrinsics"):
        assert torch.equal(a[k], b[k])
    assert_consistent(a)
    assert torch.equal(a["depth"], src["depth"][:, 6:234, 8:312])
    assert a["intrinsics"].tolist() == pytest.approx([259.4, 259.7, 162.8 - 8, 126.9 - 6])


def test_unknown_dataset_and_bad_ranges_are_usage_errors():
    from mdlearn.errors import UsageError

    with pytest.raises(UsageError, match="dataset"):
        paper_augmentation("make3d")
    with pytest.raises(UsageError, match="scale"):
        RandomZoom((1.5, 1.0))
