"""The one sample every mdlearn ``Dataset`` returns, and the intrinsics that travel with it (Chapter 1).

A sample is a dict built by :func:`make_sample` and nowhere else:

============== ============================================ ==========================================
key            type                                         meaning
============== ============================================ ==========================================
``image``      ``tv_tensors.Image`` float32 ``(3, H, W)``   RGB in [0, 1]
``depth``      ``tv_tensors.Mask`` float32 ``(1, H, W)``    z-depth in metres, 0 = invalid
``valid``      ``tv_tensors.Mask`` bool ``(1, H, W)``       ``depth > 0`` where the ground truth is usable
``intrinsics`` :class:`CameraIntrinsics` float64 ``(4,)``   ``fx, fy, cx, cy`` of *this* image (pixels)
``name``       ``str``                                      the sample's id within its dataset
``dataset``    ``str``                                      ``"nyu-sync"``, ``"nyu-labeled"``, ``"kitti"``
``split``      ``str``                                      ``"train"``, ``"test"``, ... or ``"list"``
``gt``         ``str``                                      which ground truth: ``"filled"``, ``"raw"``,
                                                            ``"camz_time"``, ``"annotated"``, ...
============== ============================================ ==========================================

Because ``image`` is a ``tv_tensors.Image`` and ``depth`` / ``valid`` are ``tv_tensors.Mask``,
one torchvision v2 transform moves all three together, resampling depth and mask with
nearest-neighbour (a plain-tensor dict would see only its first tensor transformed).
:class:`CameraIntrinsics` is a tv_tensor of our own with kernels registered for every geometric
v2 functional, so a resize, crop, flip, pad or rotation updates the camera too; colour
transforms pass it through. Pixel centres are at integer coordinates (``camera`` module).

>>> import numpy as np
>>> from torchvision.transforms import v2
>>> s = make_sample(np.zeros((4, 6, 3), np.uint8), np.ones((4, 6), np.float32),
...                 (5.0, 5.0, 2.5, 1.5), name="a", dataset="demo", split="train", gt="filled")
>>> t = v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.CenterCrop((2, 4))])(s)
>>> tuple(t["image"].shape), t["intrinsics"].tolist()
((3, 2, 4), [5.0, 5.0, 1.5, 0.5])
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2.functional import register_kernel

from ..camera import Intrinsics
from ..errors import FormatError

__all__ = ["CameraIntrinsics", "make_sample", "check_sample", "SAMPLE_KEYS", "intrinsics_of", "dataset_repr"]

#: The keys of every sample, in order.
SAMPLE_KEYS = ("image", "depth", "valid", "intrinsics", "name", "dataset", "split", "gt")


class CameraIntrinsics(tv_tensors.TVTensor):
    """Pinhole intrinsics ``[fx, fy, cx, cy]`` (float64, pixels) of an image of ``canvas_size = (H, W)``.

    A tv_tensor, so that torchvision v2 geometric transforms update it along with the image
    (kernels below). Introduced in Chapter 1; the augmentations of Chapter 5 rely on it.
    """

    canvas_size: tuple[int, int]

    @classmethod
    def _wrap(cls, tensor: torch.Tensor, *, canvas_size: tuple[int, int]) -> "CameraIntrinsics":
        out = tensor.as_subclass(cls)
        out.canvas_size = (int(canvas_size[0]), int(canvas_size[1]))
        return out

    def __new__(cls, data: Any, *, canvas_size: tuple[int, int], dtype: torch.dtype | None = torch.float64,
                device: torch.device | str | int | None = None, requires_grad: bool | None = None):
        tensor = cls._to_tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
        if tensor.shape != (4,):
            raise ValueError(f"intrinsics must be [fx, fy, cx, cy], got shape {tuple(tensor.shape)}")
        return cls._wrap(tensor, canvas_size=canvas_size)

    @classmethod
    def wrap(cls, tensor: torch.Tensor, like: "CameraIntrinsics", **kwargs: Any) -> "CameraIntrinsics":
        return cls._wrap(tensor, canvas_size=kwargs.get("canvas_size", like.canvas_size))

    @classmethod
    def from_intrinsics(cls, K: Intrinsics) -> "CameraIntrinsics":
        """From a :class:`mdlearn.camera.Intrinsics` (which carries its own image size)."""
        return cls([K.fx, K.fy, K.cx, K.cy], canvas_size=(K.height, K.width))

    def to_intrinsics(self) -> Intrinsics:
        """As a :class:`mdlearn.camera.Intrinsics` (for back-projection, point clouds)."""
        fx, fy, cx, cy = (float(v) for v in self.tolist())
        return Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=self.canvas_size[1], height=self.canvas_size[0])

    def __repr__(self, *, tensor_contents: Any = None) -> str:  # type: ignore[override]
        return self._make_repr(canvas_size=self.canvas_size)


def _new(K: CameraIntrinsics, fx: float, fy: float, cx: float, cy: float, size: tuple[int, int]) -> CameraIntrinsics:
    data = torch.tensor([fx, fy, cx, cy], dtype=K.dtype, device=K.device)
    return CameraIntrinsics._wrap(data, canvas_size=size)


def _parts(K: CameraIntrinsics) -> tuple[float, float, float, float]:
    fx, fy, cx, cy = (float(v) for v in K.tolist())
    return fx, fy, cx, cy


# Kernels: each says what the image operation does to the pinhole camera. With pixel centres at
# integer coordinates, an image coordinate u in continuous (edge-based) terms is u + 0.5.


@register_kernel(F.horizontal_flip, CameraIntrinsics)
def _hflip(K: CameraIntrinsics) -> CameraIntrinsics:
    # the mirrored image is what a camera with the same focal length sees of the mirrored world
    fx, fy, cx, cy = _parts(K)
    return _new(K, fx, fy, K.canvas_size[1] - 1 - cx, cy, K.canvas_size)


@register_kernel(F.vertical_flip, CameraIntrinsics)
def _vflip(K: CameraIntrinsics) -> CameraIntrinsics:
    fx, fy, cx, cy = _parts(K)
    return _new(K, fx, fy, cx, K.canvas_size[0] - 1 - cy, K.canvas_size)


@register_kernel(F.crop, CameraIntrinsics)
def _crop(K: CameraIntrinsics, top: int, left: int, height: int, width: int) -> CameraIntrinsics:
    fx, fy, cx, cy = _parts(K)
    return _new(K, fx, fy, cx - left, cy - top, (height, width))


def _resize_to(K: CameraIntrinsics, new_h: int, new_w: int) -> CameraIntrinsics:
    fx, fy, cx, cy = _parts(K)
    h, w = K.canvas_size
    sx, sy = new_w / w, new_h / h
    return _new(K, fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5, (new_h, new_w))


@register_kernel(F.resize, CameraIntrinsics)
def _resize(K: CameraIntrinsics, size: Sequence[int] | int | None, interpolation: Any = None,
            max_size: int | None = None, antialias: Any = None) -> CameraIntrinsics:
    # torchvision's own rule for the output size (shorter side, max_size), so the camera follows the image
    from torchvision.transforms.v2.functional._geometry import _compute_resized_output_size

    new_h, new_w = _compute_resized_output_size(K.canvas_size, size=size, max_size=max_size)
    return _resize_to(K, new_h, new_w)


@register_kernel(F.center_crop, CameraIntrinsics)
def _center_crop(K: CameraIntrinsics, output_size: Sequence[int] | int) -> CameraIntrinsics:
    from torchvision.transforms.v2.functional._geometry import (_center_crop_compute_crop_anchor,
                                                                _center_crop_parse_output_size)

    crop_h, crop_w = _center_crop_parse_output_size(output_size)
    top, left = _center_crop_compute_crop_anchor(crop_h, crop_w, *K.canvas_size)
    return _crop(K, top, left, crop_h, crop_w)


@register_kernel(F.resized_crop, CameraIntrinsics)
def _resized_crop(K: CameraIntrinsics, top: int, left: int, height: int, width: int, size: Sequence[int],
                  interpolation: Any = None, antialias: Any = None) -> CameraIntrinsics:
    c = _crop(K, top, left, height, width)
    return _resize(c, size)


@register_kernel(F.pad, CameraIntrinsics)
def _pad(K: CameraIntrinsics, padding: Sequence[int] | int, fill: Any = None,
         padding_mode: str = "constant") -> CameraIntrinsics:
    from torchvision.transforms.v2.functional._geometry import _parse_pad_padding

    left, right, top, bottom = _parse_pad_padding(padding)
    fx, fy, cx, cy = _parts(K)
    h, w = K.canvas_size
    return _new(K, fx, fy, cx + left, cy + top, (h + top + bottom, w + left + right))


def _affine_point(K: CameraIntrinsics, angle: float, translate: Sequence[float], scale: float,
                  shear: Sequence[float], center: Sequence[float] | None, expand: bool):
    from torchvision.transforms.v2.functional._geometry import _affine_keypoints_with_expand

    if any(abs(float(s)) > 1e-9 for s in shear):
        raise ValueError("a sheared image has no pinhole intrinsics; mdlearn's samples do not support shear")
    fx, fy, cx, cy = _parts(K)
    pp = torch.tensor([[cx + 0.5, cy + 0.5]], dtype=torch.float64)
    moved, size = _affine_keypoints_with_expand(pp, K.canvas_size, angle=angle, translate=list(translate),
                                                scale=scale, shear=list(shear), center=center, expand=expand)
    return _new(K, fx * scale, fy * scale, float(moved[0, 0]) - 0.5, float(moved[0, 1]) - 0.5, size)


@register_kernel(F.affine, CameraIntrinsics)
def _affine(K: CameraIntrinsics, angle: float, translate: Sequence[float], scale: float, shear: Sequence[float],
            interpolation: Any = None, fill: Any = None, center: Sequence[float] | None = None) -> CameraIntrinsics:
    # Rotation about the image centre is a roll of the camera about its optical axis (exact when
    # fx == fy) plus a shift of the principal point, which is what is kept here.
    return _affine_point(K, angle, translate, scale, shear, center, expand=False)


@register_kernel(F.rotate, CameraIntrinsics)
def _rotate(K: CameraIntrinsics, angle: float, interpolation: Any = None, expand: bool = False,
            center: Sequence[float] | None = None, fill: Any = None) -> CameraIntrinsics:
    # F.rotate turns counter-clockwise, F.affine clockwise: the same point map with the opposite angle
    return _affine_point(K, -angle, [0.0, 0.0], 1.0, [0.0, 0.0], center, expand=expand)


def _unsupported(name: str):
    def kernel(K: CameraIntrinsics, *args: Any, **kwargs: Any) -> CameraIntrinsics:
        raise ValueError(f"{name} does not keep a pinhole camera; mdlearn's samples do not support it")
    return kernel


register_kernel(F.perspective, CameraIntrinsics)(_unsupported("a perspective warp"))
register_kernel(F.elastic, CameraIntrinsics)(_unsupported("an elastic warp"))


# ------------------------------------------------------------------------------------- samples


def intrinsics_of(K: Intrinsics | CameraIntrinsics | Sequence[float], height: int, width: int) -> CameraIntrinsics:
    """``K`` as a :class:`CameraIntrinsics` for an ``height`` x ``width`` image.

    A :class:`~mdlearn.camera.Intrinsics` made for another image size is rescaled to this one
    (the NYU calibration is for 640x480; an image served at 320x240 gets half the focal length).
    """
    if isinstance(K, CameraIntrinsics):
        if K.canvas_size != (height, width):
            return _resize_to(K, height, width)
        return K
    if isinstance(K, Intrinsics):
        out = CameraIntrinsics.from_intrinsics(K)
        return _resize_to(out, height, width) if (K.height, K.width) != (height, width) else out
    return CameraIntrinsics(list(K), canvas_size=(height, width))


def make_sample(image: np.ndarray | torch.Tensor, depth: np.ndarray | torch.Tensor,
                intrinsics: Intrinsics | CameraIntrinsics | Sequence[float], *, name: str, dataset: str, split: str,
                gt: str, max_depth: float | None = None, source: str | None = None) -> dict[str, Any]:
    """Build the one mdlearn sample (see the module docstring) from an image and its depth map.

    Introduced in Chapter 1; every ``Dataset`` of :mod:`mdlearn.data` returns what this returns.

    Args:
        image: ``(H, W, 3)`` uint8 (as read from disk) or ``(3, H, W)`` float in [0, 1].
        depth: ``(H, W)`` float32 metres, 0 = invalid, registered to ``image``.
        intrinsics: the camera of ``image`` (``[fx, fy, cx, cy]`` or an ``Intrinsics``,
            rescaled to the image size if it was made for another size).
        name, dataset, split, gt: the metadata keys (:data:`SAMPLE_KEYS`).
        max_depth: if given, a depth beyond it is a ``FormatError`` naming ``source`` (the file
            it came from): a map in the wrong unit is caught here, not trained on.
        source: the file the depth came from, for error messages.
    """
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise FormatError(f"{source or name}: expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    else:
        img = image.float()
    d = torch.as_tensor(np.asarray(depth, dtype=np.float32) if isinstance(depth, np.ndarray) else depth,
                        dtype=torch.float32)
    if d.ndim == 2:
        d = d[None]
    if d.shape[-2:] != img.shape[-2:]:
        raise FormatError(f"{source or name}: depth is {d.shape[-1]}x{d.shape[-2]} but the image is "
                          f"{img.shape[-1]}x{img.shape[-2]}")
    d = torch.where(torch.isfinite(d) & (d > 0), d, torch.zeros((), dtype=d.dtype))
    if max_depth is not None and d.numel() and float(d.max()) > max_depth:
        raise FormatError(f"{source or name}: depth up to {float(d.max()):.2f} m, beyond the {max_depth:g} m this "
                          "dataset can hold (a depth map in another unit or encoding?)")
    h, w = img.shape[-2:]
    return {
        "image": tv_tensors.Image(img),
        "depth": tv_tensors.Mask(d),
        "valid": tv_tensors.Mask(d > 0),
        "intrinsics": intrinsics_of(intrinsics, h, w),
        "name": str(name),
        "dataset": str(dataset),
        "split": str(split),
        "gt": str(gt),
    }


def check_sample(sample: dict[str, Any], where: str = "sample") -> None:
    """Raise ``ValueError`` naming ``where`` and the problem unless ``sample`` follows the format.

    Checks keys, types, dtypes, shapes, units (finite, non-negative depth; ``valid`` only where
    depth > 0) and that the intrinsics' canvas is the image's size. Used by the Dataset contract
    test and by training before its first step.
    """
    missing = [k for k in SAMPLE_KEYS if k not in sample]
    if missing:
        raise ValueError(f"{where}: missing keys {missing}")
    img, depth, valid, K = sample["image"], sample["depth"], sample["valid"], sample["intrinsics"]
    checks = [
        (isinstance(img, tv_tensors.Image) and img.dtype == torch.float32 and img.ndim == 3 and img.shape[0] == 3,
         f"image must be a float32 tv_tensors.Image (3, H, W), got {type(img).__name__} {img.dtype} {tuple(img.shape)}"),
        (isinstance(depth, tv_tensors.Mask) and depth.dtype == torch.float32 and depth.shape == (1, *img.shape[-2:]),
         f"depth must be a float32 tv_tensors.Mask (1, H, W), got {type(depth).__name__} {depth.dtype} "
         f"{tuple(depth.shape)}"),
        (isinstance(valid, tv_tensors.Mask) and valid.dtype == torch.bool and valid.shape == depth.shape,
         f"valid must be a bool tv_tensors.Mask like depth, got {type(valid).__name__} {valid.dtype}"),
        (isinstance(K, CameraIntrinsics) and K.canvas_size == tuple(img.shape[-2:]),
         f"intrinsics must be CameraIntrinsics for {tuple(img.shape[-2:])}, got {K!r}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ValueError(f"{where}: {msg}")
    if not bool(torch.isfinite(depth).all()) or bool((depth < 0).any()):
        raise ValueError(f"{where}: depth must be finite metres >= 0 (0 = invalid)")
    if bool((valid & ~(depth > 0)).any()):
        raise ValueError(f"{where}: valid is true where depth is 0")
    fx, fy = float(K[0]), float(K[1])
    if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0):
        raise ValueError(f"{where}: focal lengths must be positive, got fx={fx}, fy={fy}")
    for k in ("name", "dataset", "split", "gt"):
        if not isinstance(sample[k], str):
            raise ValueError(f"{where}: {k} must be a string, got {type(sample[k]).__name__}")


def dataset_repr(dataset: Any, root: Any, split: str, **fields: Any) -> str:
    """The ``repr`` every mdlearn ``Dataset`` gives: class, root, split, size, then ``fields``."""
    extra = "".join(f", {k}={str(v) if isinstance(v, os.PathLike) else v!r}" for k, v in fields.items())
    return f"{type(dataset).__name__}(root={str(root)!r}, split={split!r}, size={len(dataset)}{extra})"
