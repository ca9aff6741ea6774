"""Transforms of whole samples: the paper's input sizes and the fine network's crop (Chapters 2-3).

Every ``Dataset`` of :mod:`mdlearn.data` serves its images at the size they have on disk (the one
sample of :mod:`mdlearn.data.sample`); resizing and cropping happen here, after the Dataset, as
torchvision v2 transforms on the sample dict. Because the image is a ``tv_tensors.Image``, depth
and mask are ``tv_tensors.Mask`` and the camera a :class:`~mdlearn.data.sample.CameraIntrinsics`,
one call moves all four consistently.

* NYU (paper §3.3, Chapter 2): :func:`nyu_paper_input`, 640x480 -> 320x240 with ``v2.Resize``:
  the image bilinearly (antialiased), depth and mask nearest-neighbour (never mixing depths across
  an edge), the intrinsics scaled by :mod:`~mdlearn.data.sample`'s resize kernel.
* KITTI (paper §4.2, Chapter 3): :func:`kitti_paper_input` = :class:`KittiPaperCrop` (1242x375 ->
  1224x368) then :class:`SparseDepthResize` by 1/2 (-> 612x184), which moves every LiDAR sample to
  the output pixel containing it and resolves collisions by the rule the ground truth was built
  with (``*_time``: the sample captured closest in time to the image, as the paper did); :class:`BottomCrop` cuts the part with laser depth for the fine network.

>>> import numpy as np
>>> from mdlearn.data.sample import make_sample
>>> s = make_sample(np.zeros((375, 1242, 3), np.uint8), np.zeros((375, 1242), np.float32),
...                 (721.5, 721.5, 609.6, 172.9), name="a", dataset="kitti", split="train", gt="camz_time")
>>> t = kitti_paper_input()(s)
>>> tuple(t["image"].shape), [round(v, 2) for v in t["intrinsics"].tolist()]
((3, 184, 612), [360.75, 360.75, 300.05, 82.7])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ..errors import UsageError

__all__ = ["NYU_PAPER_SIZE", "KITTI_PAPER_CROP", "KITTI_RAW_SIZE", "KITTI_PAPER_SIZE", "LIDAR_TOP_FRACTION",
           "SPARSE_RULES", "nyu_paper_input", "KittiPaperCrop", "SparseDepthResize", "BottomCrop",
           "kitti_paper_input", "sparse_rule_for", "sparse_resize", "sample_capture_times"]

#: The NYU network input of the paper (§3.3): 640x480 halved, ``(height, width)``.
NYU_PAPER_SIZE = (240, 320)
#: KITTI raw images of the 2011_09_26 drives, ``(height, width)`` (other dates are 1224x370 to 1242x376).
KITTI_RAW_SIZE = (375, 1242)
#: The paper's KITTI image size before halving (§4.2: "originally 1224x368"), ``(height, width)``.
KITTI_PAPER_CROP = (368, 1224)
#: The paper's KITTI network input (1224x368 halved), ``(height, width)``.
KITTI_PAPER_SIZE = (184, 612)
#: The laser sees nothing above about this fraction of the image height (its top beam points 2
#: degrees up: on the KITTI rig that is row ~148 of 375). The fine network's crop starts here.
LIDAR_TOP_FRACTION = 0.4

#: How :class:`SparseDepthResize` chooses among several depth samples that land in one output pixel.
SPARSE_RULES = {
    "nearest": "the smallest depth (as the *_nearest ground truth and monodepth2's export resolve conflicts)",
    "time": "the sample captured closest in time to the image, its capture time recovered from its azimuth "
            "(the paper's rule, as the *_time ground truth chose; ties: the nearer one)",
}


def _map_sample(sample: dict[str, Any], fn: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """Apply the v2 functional ``fn`` to every tv_tensor of ``sample``; strings pass through."""
    if not isinstance(sample, dict) or "image" not in sample:
        raise UsageError("these transforms take the sample dict of mdlearn.data.sample.make_sample")
    return {k: fn(v, **kwargs) if isinstance(v, tv_tensors.TVTensor) else v for k, v in sample.items()}


def _size(sample: dict[str, Any]) -> tuple[int, int]:
    h, w = F.get_size(sample["image"])
    return int(h), int(w)


def nyu_paper_input(size: tuple[int, int] = NYU_PAPER_SIZE) -> v2.Resize:
    """The paper's NYU input: resize the whole sample to ``size`` (default 240x320; Chapter 2).

    A plain ``v2.Resize``: the image bilinearly with antialiasing, ``depth`` and ``valid``
    nearest-neighbour (for a 2x reduction: the top-left pixel of every 2x2 block, so no depth is
    ever averaged across an edge), and the intrinsics follow (``fx, fy`` halved, the principal
    point mapped as ``c -> (c + 0.5) / 2 - 0.5``). Pass another ``size`` for synthetic sets
    rendered at a smaller resolution.
    """
    return v2.Resize(tuple(size), interpolation=v2.InterpolationMode.BILINEAR, antialias=True)


class KittiPaperCrop(v2.Transform):
    """Crop a KITTI image to the paper's 1224x368 (Chapter 3): **centred columns, bottom rows**.

    The raw images are 1242x375 on most dates (1224x370 to 1242x376 on the others), and 1224x368
    fits inside every one of them: the paper cut all its images to this common size. The columns
    are taken from the middle (9 dropped on each side of a 1242-wide image, which keeps the
    principal point, near the centre, where it was relative to the image), the rows from the
    bottom (7 dropped at the top of a 375-high image: sky, where the laser has no depth, while the
    bottom rows are the road, where the depth is densest). The paper does not say where it cut. The intrinsics follow (``cx - left``, ``cy - top``).

    An image smaller than 1224x368 (a synthetic drive rendered at ``resolution < 1``) is cut to
    the same fraction of 1242x375 instead, so that the pipeline keeps its proportions.
    """

    def __init__(self, size: tuple[int, int] = KITTI_PAPER_CROP) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))

    def crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of the crop for an image of ``height`` x ``width``."""
        ch, cw = self.size
        if height < ch or width < cw:
            ch = round(height * ch / KITTI_RAW_SIZE[0])
            cw = round(width * cw / KITTI_RAW_SIZE[1])
        return height - ch, (width - cw) // 2, ch, cw

    def forward(self, sample: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        top, left, h, w = self.crop_box(*_size(sample))
        return _map_sample(sample, F.crop, top=top, left=left, height=h, width=w)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def sparse_rule_for(gt: str) -> str:
    """The :data:`SPARSE_RULES` entry that agrees with how ground truth ``gt`` was built.

    ``*_nearest`` -> ``"nearest"``; ``*_time`` and ``annotated`` -> ``"time"``. Anything else
    (for instance NYU's dense ``filled`` / ``raw``) is a :class:`~mdlearn.errors.UsageError`:
    pass the rule explicitly.
    """
    if gt.endswith("_nearest"):
        return "nearest"
    if gt.endswith("_time") or gt == "annotated":
        return "time"
    raise UsageError(f"SparseDepthResize(rule='auto'): no conflict rule known for ground truth {gt!r}; "
                     f"pass rule= one of {sorted(SPARSE_RULES)}")


class SparseDepthResize(v2.Transform):
    """Resize a sample whose depth is sparse (LiDAR), never averaging depths (Chapter 3).

    The image is resized bilinearly with antialiasing and the intrinsics follow (``F.resize``).
    The depth is *not* resampled: every valid input sample moves to the output pixel that contains
    its pixel centre, keeping its value (z-depth does not change when the image is scaled). Where
    several land in one output pixel, ``rule`` picks one (:data:`SPARSE_RULES`):

    * ``"nearest"`` keeps the **minimum depth**, the rule of ``*_nearest`` ground truth;
    * ``"time"`` keeps the sample **captured closest in time to the image**, the paper's rule
      (§4.2) and the one ``*_time`` ground truth was built with: the PNG no longer holds the
      capture times, but a spinning scanner captures a point when it faces the point's azimuth,
      so each sample's time follows from its back-projection (:func:`sample_capture_times`);
      ties (samples of one column) go to the nearer one, as in
      :func:`mdlearn.data.kitti_depth.resolve_conflicts`, which makes the choice;
    * ``"auto"`` (default) reads the rule from the sample's ``gt`` string (:func:`sparse_rule_for`).

    ``valid`` becomes ``depth > 0`` of the result. Give ``size = (height, width)`` or ``scale``.
    """

    def __init__(self, size: Sequence[int] | None = None, scale: float | None = None, rule: str = "auto") -> None:
        super().__init__()
        if (size is None) == (scale is None):
            raise UsageError("SparseDepthResize: give exactly one of size=(height, width) and scale")
        if scale is not None and not scale > 0:
            raise UsageError(f"SparseDepthResize: scale must be positive, got {scale}")
        if rule not in (*SPARSE_RULES, "auto"):
            raise UsageError(f"SparseDepthResize: rule must be 'auto' or one of {sorted(SPARSE_RULES)}, got {rule!r}")
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.scale, self.rule = scale, rule

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.size is not None:
            return self.size
        return max(1, round(height * self.scale)), max(1, round(width * self.scale))

    def forward(self, sample: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        if not isinstance(sample, dict) or not {"image", "depth", "valid", "intrinsics", "gt"} <= sample.keys():
            raise UsageError("SparseDepthResize takes the sample dict of mdlearn.data.sample.make_sample")
        rule = sparse_rule_for(sample["gt"]) if self.rule == "auto" else self.rule
        h, w = _size(sample)
        oh, ow = self.output_size(h, w)
        out = dict(sample)
        out["image"] = F.resize(sample["image"], [oh, ow], interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
        out["intrinsics"] = F.resize(sample["intrinsics"], [oh, ow])
        depth = sparse_resize(sample["depth"][0], sample["valid"][0], oh, ow, rule,
                              camera=sample["intrinsics"].tolist())
        out["depth"] = tv_tensors.Mask(depth[None])
        out["valid"] = tv_tensors.Mask(depth[None] > 0)
        return out

    def extra_repr(self) -> str:
        return f"size={self.size}, scale={self.scale}, rule={self.rule!r}"


def sample_capture_times(u: np.ndarray, depth: np.ndarray, camera: Sequence[float],
                         rate_hz: float = 10.0) -> np.ndarray:
    """Capture time (s, relative to the forward-facing moment) of depth samples (Chapter 3).

    Pixel column ``u`` is back-projected with ``camera`` = ``(fx, fy, cx, cy)`` to the ray
    ``(X, Z) = ((u - cx) / fx, 1)`` x ``depth``; in the scanner's axes (x forward = Z, y left =
    -X) its azimuth gives the time of a counter-clockwise sweep
    (:func:`mdlearn.data.kitti_depth.sweep_time_offsets`). The scanner is taken to sit at the
    camera centre, so the time depends on the column alone (samples of one column tie; ``depth``
    only sets the shape): on the KITTI rig the scanner is ~0.3 m from the camera, which shifts
    the azimuth of a point ``z`` metres away by up to ~0.3 / z radians.

    >>> t = sample_capture_times(np.array([0, 50, 100]), np.ones(3), (50.0, 50.0, 50.0, 20.0))
    >>> (1e3 * t).round(2).tolist()  # ms: left of the centre after the image, right before
    [12.5, -0.0, -12.5]
    """
    from .kitti_depth import sweep_time_offsets

    fx, cx = float(camera[0]), float(camera[2])
    ray_x = (np.asarray(u, np.float64) - cx) / fx + 0.0 * np.asarray(depth, np.float64)
    return sweep_time_offsets(np.stack([np.ones_like(ray_x), -ray_x], -1), rate_hz=rate_hz)


def sparse_resize(depth: torch.Tensor, valid: torch.Tensor, height: int, width: int, rule: str,
                  camera: Sequence[float] | None = None) -> torch.Tensor:
    """The depth part of :class:`SparseDepthResize`: ``(H, W)`` metres -> ``(height, width)``.

    Input pixel ``(v, u)`` (centre at integer coordinates) lands in output pixel
    ``(floor((v + 0.5) * height / H), floor((u + 0.5) * width / W))``; samples with
    ``valid & depth > 0`` take part; collisions are resolved by ``rule`` (:data:`SPARSE_RULES`)
    with :func:`mdlearn.data.kitti_depth.resolve_conflicts`. ``camera`` = ``(fx, fy, cx, cy)``
    of the input gives the ``"time"`` rule its capture times (:func:`sample_capture_times`;
    default: the principal point in the middle of the image).
    """
    from .kitti_depth import resolve_conflicts

    if rule not in SPARSE_RULES:
        raise UsageError(f"unknown sparse rule {rule!r}; choose one of {sorted(SPARSE_RULES)}")
    d = depth.detach().cpu().numpy().astype(np.float32, copy=False)
    keep = valid.detach().cpu().numpy().astype(bool) & (d > 0)
    H, W = d.shape
    v, u = np.nonzero(keep)
    vals = d[v, u]
    oi = np.minimum(np.floor((v + 0.5) * (height / H)).astype(np.int64), height - 1)
    oj = np.minimum(np.floor((u + 0.5) * (width / W)).astype(np.int64), width - 1)
    lin = oi * width + oj
    out = np.zeros(height * width, np.float32)
    if lin.size:
        dt = None
        if rule == "time":
            cam = camera if camera is not None else (1.0, 1.0, (W - 1) / 2, (H - 1) / 2)
            dt = sample_capture_times(u, vals, cam)
        pick = resolve_conflicts(lin, vals, rule, dt)
        out[lin[pick]] = vals[pick]
    return torch.from_numpy(out.reshape(height, width)).to(depth.device)


class BottomCrop(v2.Transform):
    """Keep the rows from ``int(top_fraction * H)`` down: what the KITTI fine network sees (Chapter 3).

    Crops image, depth, mask and intrinsics together (``cy`` moves up by the rows removed).
    """

    def __init__(self, top_fraction: float = LIDAR_TOP_FRACTION) -> None:
        super().__init__()
        if not 0.0 <= top_fraction < 1.0:
            raise UsageError(f"BottomCrop: top_fraction must be in [0, 1), got {top_fraction}")
        self.top_fraction = float(top_fraction)

    def forward(self, sample: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        h, w = _size(sample)
        top = int(self.top_fraction * h)
        return _map_sample(sample, F.crop, top=top, left=0, height=h - top, width=w)

    def extra_repr(self) -> str:
        return f"top_fraction={self.top_fraction}"


def kitti_paper_input(rule: str = "auto", size: tuple[int, int] | None = None) -> v2.Compose:
    """The paper's KITTI input (Chapter 3): :class:`KittiPaperCrop` to 1224x368, then
    :class:`SparseDepthResize` by 1/2 to 612x184 (the conflict ``rule`` read from ``gt`` by default).
    ``size = (height, width)`` resizes the crop to that size instead (the smaller training caches
    of the book's KITTI recipes, Chapter 8)."""
    resize = SparseDepthResize(scale=0.5, rule=rule) if size is None else SparseDepthResize(size=size, rule=rule)
    return v2.Compose([KittiPaperCrop(), resize])
