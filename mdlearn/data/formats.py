"""On-disk encodings of images and depth maps, each with a named reader and writer.

Introduced in Chapter 1. One convention holds in memory everywhere in mdlearn: **depth is a
float32 array in metres and 0 means "no measurement"**. Each file encoding converts to and from
that convention in exactly one pair of functions here, and checks that what it reads is plausible.

* :func:`write_depth_png_mm` / :func:`read_depth_png_mm` — uint16 PNG in millimetres, 0 = invalid
  (the NYU "sync" layout used by BTS, AdaBins and most later work).
* :func:`write_rgb` / :func:`read_rgb` — 8-bit RGB PNG or JPEG.
* :func:`write_depth_png_kitti` / :func:`read_depth_png_kitti` — uint16 PNG in metres x 256,
  0 = invalid (the KITTI depth benchmark and the public Velodyne ground truth; Chapter 3).

Every error names the file and the problem (:class:`FormatError`).

The two uint16 depth encodings look alike on disk (a 16-bit greyscale PNG). mdlearn's writers
record which one a file holds in a PNG text chunk (:data:`DEPTH_ENCODING_KEY`), and each reader
refuses a file that says it holds the other: a KITTI map read as millimetres would otherwise give
depths four times too small (85 m read as 21.76 m). Files from elsewhere (the official benchmark,
BTS's extraction) carry no such chunk; for them only the value range can tell, and the
``Dataset`` checks the range it expects (``max_depth`` of
:func:`~mdlearn.data.sample.make_sample`) and names the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from ..errors import FormatError

__all__ = [
    "read_text",
    "MM_PER_M",
    "MAX_DEPTH_PNG_MM",
    "write_depth_png_mm",
    "read_depth_png_mm",
    "write_rgb",
    "read_rgb",
    "KITTI_DEPTH_SCALE",
    "MAX_DEPTH_PNG_KITTI",
    "write_depth_png_kitti",
    "read_depth_png_kitti",
    "DEPTH_ENCODING_KEY",
    "DEPTH_ENCODING_MM",
    "DEPTH_ENCODING_KITTI",
    "depth_png_encoding",
]

#: The PNG text key under which mdlearn's writers record a depth PNG's encoding.
DEPTH_ENCODING_KEY = "mdlearn-depth-encoding"
#: Its value for :func:`write_depth_png_mm`.
DEPTH_ENCODING_MM = "uint16 millimetres, 0 = invalid"
#: Its value for :func:`write_depth_png_kitti`.
DEPTH_ENCODING_KITTI = "uint16 metres x 256 (KITTI), 0 = invalid"

MM_PER_M = 1000.0
#: Largest depth a uint16 millimetre PNG can hold, in metres.
MAX_DEPTH_PNG_MM = 65.535


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The text of a small text file (lists, calibration, timestamps), or a :class:`FormatError`
    that names the file and says it is a missing or unreadable ``what``."""
    path = Path(path)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise FormatError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not a readable {what} ({e})") from None


def _open_image(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise FormatError(f"{path}: not a readable image ({e})") from None
    return img


def _write_depth_png_uint16(path: Path, depth: np.ndarray, scale: float, max_depth: float, what: str,
                            encoding: str) -> None:
    """Check a metric depth map and write ``round(depth * scale)`` as a 16-bit PNG (0 = invalid),
    recording ``encoding`` under :data:`DEPTH_ENCODING_KEY`."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise FormatError(f"{path}: a depth map must be 2-D (H, W), got shape {depth.shape}")
    if not np.isfinite(depth).all():
        raise FormatError(f"{path}: depth contains NaN or infinity; use 0 for invalid pixels")
    if (depth < 0).any():
        raise FormatError(f"{path}: depth contains negative values (min {depth.min():.4g} m)")
    if depth.max(initial=0.0) > max_depth:
        raise FormatError(f"{path}: depth {depth.max():.3f} m exceeds the {what} range ({max_depth:.3f} m)")
    q = np.rint(depth.astype(np.float64) * scale).astype(np.uint16)
    info = PngInfo()
    info.add_text(DEPTH_ENCODING_KEY, encoding)
    Image.fromarray(q).save(path, format="PNG", compress_level=1, pnginfo=info)


def write_depth_png_mm(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write a metric depth map as a uint16 PNG in millimetres (0 = invalid).

    Introduced in Chapter 1. Depth is rounded to the nearest millimetre, so reading it back is
    exact to 0.5 mm. Raises :class:`FormatError` for NaN, negative depths or depths beyond
    :data:`MAX_DEPTH_PNG_MM`.
    """
    _write_depth_png_uint16(Path(path), depth, MM_PER_M, MAX_DEPTH_PNG_MM, "uint16-millimetre", DEPTH_ENCODING_MM)


def depth_png_encoding(img: Image.Image) -> str | None:
    """The encoding an mdlearn writer recorded in a depth PNG (:data:`DEPTH_ENCODING_MM` or
    :data:`DEPTH_ENCODING_KITTI`), or ``None`` for a file without the record."""
    text = getattr(img, "text", None) or img.info
    value = text.get(DEPTH_ENCODING_KEY)
    return str(value) if value is not None else None


def _read_depth_png_uint16(path: Path, scale: float, what: str, encoding: str) -> np.ndarray:
    """Read a single-channel 16-bit PNG and divide by ``scale`` (float32; 0 stays 0 = invalid).

    A file whose recorded encoding is not ``encoding`` is a :class:`FormatError`."""
    img = _open_image(path)
    found = depth_png_encoding(img)
    if found is not None and found != encoding:
        raise FormatError(f"{path}: this depth PNG is {found!r}, not {encoding!r}; read it with the matching "
                          f"reader (read_depth_png_mm for millimetres, read_depth_png_kitti for KITTI)")
    if img.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise FormatError(f"{path}: expected a 16-bit single-channel {what}, got mode {img.mode!r}")
    q = np.asarray(img)
    if q.ndim != 2:
        raise FormatError(f"{path}: expected a 2-D depth image, got shape {q.shape}")
    if q.min(initial=0) < 0 or q.max(initial=0) > 65535:
        raise FormatError(f"{path}: values outside the uint16 range")
    return q.astype(np.float32) / np.float32(scale)


def read_depth_png_mm(path: str | os.PathLike, max_depth: float = MAX_DEPTH_PNG_MM) -> np.ndarray:
    """Read a uint16 millimetre depth PNG as float32 metres (0 = invalid).

    Introduced in Chapter 1. Raises :class:`FormatError` if the file is not a single-channel
    16-bit image, if it records another encoding (a KITTI map written by
    :func:`write_depth_png_kitti`), or if its valid depths exceed ``max_depth``.
    """
    path = Path(path)
    depth = _read_depth_png_uint16(path, MM_PER_M, "depth PNG", DEPTH_ENCODING_MM)
    if depth.max(initial=0.0) > max_depth:
        raise FormatError(f"{path}: depth {depth.max():.3f} m is beyond the plausible maximum {max_depth} m")
    return depth


def write_rgb(path: str | os.PathLike, rgb: np.ndarray, quality: int = 95) -> None:
    """Write an ``(H, W, 3)`` uint8 image; the format follows the suffix (``.png`` or ``.jpg``).

    Introduced in Chapter 1.
    """
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise FormatError(f"{path}: expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    suffix = path.suffix.lower()
    if suffix == ".png":
        Image.fromarray(rgb).save(path, format="PNG", compress_level=1)
    elif suffix in (".jpg", ".jpeg"):
        Image.fromarray(rgb).save(path, format="JPEG", quality=quality)
    else:
        raise FormatError(f"{path}: unknown image suffix {suffix!r} (use .png or .jpg)")


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit RGB image as an ``(H, W, 3)`` uint8 array.

    Introduced in Chapter 1.
    """
    path = Path(path)
    img = _open_image(path)
    if img.mode != "RGB":
        if img.mode in ("L", "P", "RGBA"):
            img = img.convert("RGB")
        else:
            raise FormatError(f"{path}: expected an 8-bit RGB image, got mode {img.mode!r}")
    return np.array(img)  # a writable copy (torch.from_numpy needs one)


#: KITTI depth PNGs store ``round(metres * 256)`` (the depth benchmark's devkit convention).
KITTI_DEPTH_SCALE = 256.0
#: Largest depth a KITTI uint16 PNG can hold, in metres.
MAX_DEPTH_PNG_KITTI = 65535.0 / KITTI_DEPTH_SCALE


def write_depth_png_kitti(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write a metric depth map as a KITTI uint16 PNG: ``round(metres * 256)``, 0 = invalid.

    Introduced in Chapter 3. Reading it back is exact to 1/512 m. Depths that would round to 0
    (below 1/512 m) are stored as invalid. Raises :class:`FormatError` for NaN, negative depths or
    depths beyond :data:`MAX_DEPTH_PNG_KITTI` (about 256 m).
    """
    _write_depth_png_uint16(Path(path), depth, KITTI_DEPTH_SCALE, MAX_DEPTH_PNG_KITTI, "KITTI uint16",
                            DEPTH_ENCODING_KITTI)


def read_depth_png_kitti(path: str | os.PathLike) -> np.ndarray:
    """Read a KITTI depth PNG (uint16, metres x 256, 0 = invalid) as float32 metres.

    Introduced in Chapter 3. Reads the official annotated ground truth and the output of
    ``mdlearn prepare kitti-raw`` alike. Raises :class:`FormatError` for anything but a
    single-channel 16-bit image, and for a file that records another encoding (a millimetre map
    written by :func:`write_depth_png_mm`).
    """
    return _read_depth_png_uint16(Path(path), KITTI_DEPTH_SCALE, "KITTI depth PNG", DEPTH_ENCODING_KITTI)
