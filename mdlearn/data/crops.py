"""Evaluation crops: the one definition of every crop the book uses (Chapters 2, 3 and 4).

**Index convention (the only place it is stated).** Every crop's bounds are
``(top, bottom, left, right)`` in **0-based, end-exclusive** pixel indices: the crop is the NumPy
slice ``image[..., top:bottom, left:right]``, ``bottom - top`` rows by ``right - left`` columns.
MATLAB's 1-based, inclusive ``a:b`` is the 0-based, end-exclusive ``a-1:b`` (one lower start, the
same end); :meth:`PixelCrop.from_matlab` converts, so a crop taken from MATLAB code is written
with MATLAB's own numbers.

Two kinds of crop:

* :class:`PixelCrop` -- a fixed rectangle on images of one size (NYU's 480x640). Any other size
  is an error: a pixel crop silently means something else on a resized image.
* :class:`FractionCrop` -- fractions of the image height and width, turned into pixels with
  ``int(fraction * size)`` (truncation) as the public KITTI evaluation scripts do.

The named crops:

* :data:`NYU_CROP_EIGEN` -- the NYU crop BTS, AdaBins and ZoeDepth apply (``--eigen_crop``):
  Python slices ``[45:471, 41:601]`` (0-based), 426x560.
* :data:`NYU_CROP_TOOLBOX` -- the NYU toolbox's projection mask (``get_projection_mask.m``):
  ``mask(45:471, 41:601)`` 1-based = ``[44:471, 40:601]`` 0-based, 427x561: one row and one
  column more than the common crop, at the top and the left.
* :data:`KITTI_CROP_GARG` and :data:`KITTI_CROP_EIGEN` -- the KITTI crops of
  ``mrharicot/monodepth:utils/evaluate_kitti.py`` (used by monodepth2, BTS, ZoeDepth).

>>> NYU_CROP_TOOLBOX.bounds((480, 640))
(44, 471, 40, 601)
>>> KITTI_CROP_GARG.bounds((375, 1242))
(153, 371, 44, 1197)
>>> int(NYU_CROP_EIGEN.mask(480, 640).sum()) == 426 * 560
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError

__all__ = ["PixelCrop", "FractionCrop", "NYU_CROP_EIGEN", "NYU_CROP_TOOLBOX", "KITTI_CROP_GARG",
           "KITTI_CROP_EIGEN", "CROPS", "get_crop"]


def _image_size(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(H, W)``: the last two entries of an array shape ``(..., H, W)``."""
    if len(shape) < 2:
        raise UsageError(f"a crop needs an image of at least 2 dimensions (..., H, W), got shape {tuple(shape)}")
    return int(shape[-2]), int(shape[-1])


class _Crop:
    """What both kinds of crop offer on top of their :meth:`bounds`."""

    name: str

    def bounds(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:  # pragma: no cover - overridden
        raise NotImplementedError

    def slices(self, height: int, width: int) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the crop on a ``height`` x ``width`` image."""
        t, b, l, r = self.bounds((height, width))
        return slice(t, b), slice(l, r)

    def mask(self, height: int, width: int) -> np.ndarray:
        """``(height, width)`` bool, True inside the crop."""
        m = np.zeros((height, width), dtype=bool)
        m[self.slices(height, width)] = True
        return m


@dataclass(frozen=True)
class PixelCrop(_Crop):
    """A fixed rectangle ``rows top:bottom, cols left:right`` (0-based, end-exclusive) of ``image_size`` (H, W).

    Introduced in Chapter 2 (NYU's crops), used by the protocols of Chapter 4. :meth:`bounds`
    raises :class:`~mdlearn.errors.UsageError` for an image of any other size.

    >>> PixelCrop("toy", 1, 3, 0, 2, (4, 4)).mask(4, 4).astype(int).tolist()
    [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    """

    name: str
    top: int
    bottom: int
    left: int
    right: int
    image_size: tuple[int, int]
    source: str = ""

    def __post_init__(self):
        h, w = self.image_size
        if not (0 <= self.top < self.bottom <= h and 0 <= self.left < self.right <= w):
            raise UsageError(f"crop {self.name}: rows {self.top}:{self.bottom}, cols {self.left}:{self.right} "
                             f"do not fit a {h}x{w} image")

    @classmethod
    def from_matlab(cls, name: str, rows: tuple[int, int], cols: tuple[int, int], image_size: tuple[int, int],
                    source: str = "") -> "PixelCrop":
        """The crop MATLAB writes ``(rows(1):rows(2), cols(1):cols(2))`` (1-based, inclusive).

        >>> PixelCrop.from_matlab("m", (45, 471), (41, 601), (480, 640)).bounds((480, 640))
        (44, 471, 40, 601)
        """
        return cls(name, rows[0] - 1, rows[1], cols[0] - 1, cols[1], tuple(image_size), source)

    def bounds(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` on an image of shape ``(..., H, W)`` (must be ``image_size``)."""
        h, w = _image_size(tuple(shape))
        if (h, w) != tuple(self.image_size):
            raise UsageError(f"crop {self.name} is defined for {self.image_size[0]}x{self.image_size[1]} images, "
                             f"got {h}x{w}; resize the prediction and ground truth to the original resolution first")
        return self.top, self.bottom, self.left, self.right

    def describe(self) -> str:
        """One line: the rectangle, its convention and its size."""
        h, w = self.image_size
        return (f"rows {self.top}:{self.bottom}, cols {self.left}:{self.right} of {h}x{w} (0-based, end-exclusive; "
                f"{self.bottom - self.top}x{self.right - self.left})")


@dataclass(frozen=True)
class FractionCrop(_Crop):
    """A rectangle given as fractions ``top, bottom`` of the height and ``left, right`` of the width.

    Introduced in Chapter 3 (KITTI's crops), used by the protocols of Chapter 4. Pixel bounds are
    ``int(fraction * size)`` (truncation), as the public KITTI evaluation scripts compute them.
    """

    name: str
    top: float
    bottom: float
    left: float
    right: float
    source: str = ""

    def __post_init__(self):
        if not (0 <= self.top < self.bottom <= 1 and 0 <= self.left < self.right <= 1):
            raise UsageError(f"crop {self.name}: fractions rows {self.top}-{self.bottom}, cols "
                             f"{self.left}-{self.right} must satisfy 0 <= start < end <= 1")

    def bounds(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` in pixels on an image of shape ``(..., H, W)``."""
        h, w = _image_size(tuple(shape))
        return int(self.top * h), int(self.bottom * h), int(self.left * w), int(self.right * w)

    def describe(self) -> str:
        """One line: the fractions and, as an example, the pixels on KITTI's 375x1242."""
        return (f"rows {self.top:g}-{self.bottom:g} of H, cols {self.left:g}-{self.right:g} of W "
                "(bounds int(fraction x size); on 375x1242: rows {0}:{1}, cols {2}:{3})".format(
                    *self.bounds((375, 1242))))


#: The NYU crop BTS, AdaBins and ZoeDepth call the "Eigen crop" (their Python ``[45:471, 41:601]``).
NYU_CROP_EIGEN = PixelCrop("nyu_eigen", 45, 471, 41, 601, (480, 640),
                           source="BTS / AdaBins / ZoeDepth eval (--eigen_crop), Python slices")
#: The NYU toolbox's projection mask, ``get_projection_mask.m``: ``mask(45:471, 41:601)`` (MATLAB).
NYU_CROP_TOOLBOX = PixelCrop.from_matlab("nyu_toolbox", (45, 471), (41, 601), (480, 640),
                                         source="NYU Depth v2 toolbox get_projection_mask.m (1-based, inclusive)")
#: Garg et al. (2016): rows 0.408-0.992 of H, cols 0.036-0.964 of W; on 375x1242 rows 153:371,
#: cols 44:1197. What the annotated-ground-truth protocols (BTS, AdaBins, ZoeDepth) use.
KITTI_CROP_GARG = FractionCrop("garg", 0.40810811, 0.99189189, 0.03594771, 0.96405229,
                               source="mrharicot/monodepth:utils/evaluate_kitti.py (--garg_crop)")
#: The crop ``evaluate_kitti.py`` says was "found by trial and error to reproduce Eigen NIPS14
#: results": rows 0.332-0.914 of H, the Garg columns; on 375x1242 rows 124:342.
KITTI_CROP_EIGEN = FractionCrop("eigen", 0.3324324, 0.91351351, 0.03594771, 0.96405229,
                                source="mrharicot/monodepth:utils/evaluate_kitti.py (--eigen_crop)")

#: Every named crop, by name.
CROPS: dict[str, PixelCrop | FractionCrop] = {c.name: c for c in (NYU_CROP_EIGEN, NYU_CROP_TOOLBOX, KITTI_CROP_GARG,
                                                                  KITTI_CROP_EIGEN)}


def get_crop(name: str) -> PixelCrop | FractionCrop:
    """A named crop (see :data:`CROPS`); :class:`~mdlearn.errors.UsageError` for an unknown name."""
    try:
        return CROPS[name]
    except KeyError:
        raise UsageError(f"unknown crop {name!r}; known: {', '.join(CROPS)}") from None
