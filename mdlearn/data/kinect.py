"""The Kinect (v1) of NYU Depth v2: its raw files and its two cameras (Chapter 2).

This module knows everything about the sensor and nothing about datasets: the calibration of the
NYU toolbox (``camera_params.m``), the three raw file encodings of a scene dump, the conversion
of raw disparity to metres, lens distortion, and the registration of a depth frame into the RGB
camera. It needs only NumPy and Pillow (no torch), so worker processes start fast.

**Raw files** (one folder per scene, ``<prefix>-<unix time>-<counter>.<ext>``):

* ``d-*.pgm`` -- raw 11-bit disparity. The header says ``P5 640 480 65535`` (which by the PGM
  standard means big-endian 16-bit), but the payload is **little-endian**: the toolbox reads it
  with ``swapbytes(imread(...))``. Read as ``<u2`` the values are 0..2047; 2047 means "no
  reading". :func:`read_kinect_disparity`, :func:`write_kinect_pgm`.
* ``r-*.ppm`` -- 8-bit RGB (P6), as captured, i.e. with the RGB lens distortion.
  :func:`read_kinect_ppm`, :func:`write_kinect_ppm`.
* ``a-*.dump`` -- one accelerometer record. No real file is available to us; the layout assumed
  here (libfreenect's ``freenect_raw_tilt_state``, little-endian, 12 bytes) is written in exactly
  one place, :data:`ACCEL_STRUCT`, and the reader rejects files of any other size.

**Units.** In memory, depth is float32 metres with 0 = invalid (as everywhere in mdlearn):
:func:`disparity_to_metres` converts with the toolbox's ``351.3 / (1092.5 - raw)``.

**Pixel grids.** The toolbox works on a 1-based grid, so its principal points are one larger than
mdlearn's 0-based ones; :data:`NYU_KINECT` takes the converted intrinsics from
:mod:`mdlearn.camera` (where the conversion is explained).
"""

from __future__ import annotations

import functools
import os
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..camera import NYU_DEPTH, NYU_RGB, Intrinsics
from ..errors import FormatError, UsageError

__all__ = [
    "DISPARITY_NUMERATOR", "DISPARITY_OFFSET", "RAW_INVALID", "TOOLBOX_MIN_RAW", "NYU_MAX_DEPTH",
    "Distortion", "KinectCalibration", "NYU_KINECT", "TOOLBOX_R", "TOOLBOX_T",
    "RawName", "parse_raw_name", "format_raw_name",
    "read_kinect_disparity", "write_kinect_pgm", "read_kinect_depth", "read_kinect_ppm", "write_kinect_ppm",
    "ACCEL_STRUCT", "ACCEL_COUNTS_PER_G", "STANDARD_GRAVITY", "AccelRecord", "read_accel_dump",
    "write_accel_dump",
    "disparity_to_metres", "metres_to_disparity", "mask_min_max",
    "register_depth", "register_depth_toolbox", "undistort_rgb", "depth_rays",
]

# ------------------------------------------------------------------------------ constants

#: ``depth_rel2depth_abs.m``: depth = DISPARITY_NUMERATOR / (DISPARITY_OFFSET - raw) metres.
DISPARITY_NUMERATOR = 351.3
DISPARITY_OFFSET = 1092.5
#: The raw value the Kinect writes where it measured nothing (the 11-bit maximum).
RAW_INVALID = 2047
#: ``project_depth_map.m`` sets raw values below 600 (depths under 0.71 m) to invalid.
TOOLBOX_MIN_RAW = 600
#: Largest depth NYU Depth v2 keeps, in metres: the toolbox's ``camera_params.m`` sets
#: ``maxDepth = 10`` and ``depth_rel2depth_abs.m`` clips to it. The one definition of the cap
#: (:mod:`mdlearn.data.nyu` re-exports it; the NYU evaluation protocols use it).
NYU_MAX_DEPTH = 10.0

#: The nine numbers of ``camera_params.m`` from which the toolbox builds its rotation as
#: ``R = inv(reshape(-v, 3, 3)')``.
_TOOLBOX_R_VALUES = (9.9997798940829263e-01, 5.0518419386157446e-03, 4.3011152014118693e-03,
                     -5.0359919480810989e-03, 9.9998051861143999e-01, -3.6879781309514218e-03,
                     -4.3196624923060242e-03, 3.6662365748484798e-03, 9.9998394948385538e-01)
#: The toolbox rotation. MATLAB's ``reshape(-v,3,3)'`` is NumPy's row-major ``-v.reshape(3,3)``.
#: It is close to ``-I`` (an improper matrix): the sign cancels in the perspective division.
TOOLBOX_R = np.linalg.inv(-np.asarray(_TOOLBOX_R_VALUES).reshape(3, 3))
_t_x, _t_y, _t_z = 2.5031875059141302e-02, 6.6238747008330102e-04, -2.9342312935846411e-04
#: The toolbox translation, **in the order** ``depth_world2rgb_world.m`` builds it:
#: ``T = [t_x; t_z; t_y]`` (a quirk we keep, since the calibration was used that way).
TOOLBOX_T = np.array([_t_x, _t_z, _t_y])


@dataclass(frozen=True)
class Distortion:
    """Brown-Conrady lens distortion ``(k1, k2, p1, p2, k3)`` on normalised coordinates.

    Introduced in Chapter 2. :meth:`apply` maps ideal (pinhole) coordinates to where the lens
    puts them; :meth:`remove` inverts it by fixed-point iteration.
    """

    k1: float
    k2: float
    p1: float
    p2: float
    k3: float

    def apply(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distorted normalised coordinates of ideal ones."""
        r2 = x * x + y * y
        radial = 1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3))
        xd = x * radial + 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x)
        yd = y * radial + self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y
        return xd, yd

    def remove(self, xd: np.ndarray, yd: np.ndarray, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
        """Ideal coordinates whose distortion is ``(xd, yd)`` (accurate to ~1e-10 within the image)."""
        x, y = np.array(xd, dtype=np.float64), np.array(yd, dtype=np.float64)
        for _ in range(iterations):
            r2 = x * x + y * y
            radial = 1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3))
            dx = 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x)
            dy = self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y
            x, y = (xd - dx) / radial, (yd - dy) / radial
        return x, y


@dataclass(frozen=True)
class KinectCalibration:
    """Both cameras of a Kinect and the rigid transform between them.

    Introduced in Chapter 2. ``rgb`` and ``depth`` are 0-based pinhole intrinsics;
    ``rgb_from_depth`` maps depth-camera points to RGB-camera points (both x right, y down,
    z forward): ``X_rgb = M @ X_depth + t``. For the NYU calibration ``M = -TOOLBOX_R`` and
    ``t = -TOOLBOX_T``, which projects every point exactly where the toolbox's
    ``R * X + T`` does (the overall sign cancels in the division) and gives positive z.
    """

    rgb: Intrinsics
    depth: Intrinsics
    rgb_distortion: Distortion
    depth_distortion: Distortion
    rotation: tuple  # 3x3 as nested tuples (hashable)
    translation: tuple  # 3

    @property
    def rgb_from_depth(self) -> np.ndarray:
        """The 4x4 rigid transform from depth-camera to RGB-camera coordinates."""
        T = np.eye(4)
        T[:3, :3] = np.asarray(self.rotation)
        T[:3, 3] = self.translation
        return T

    def for_size(self, width: int, height: int) -> "KinectCalibration":
        """The same Kinect with both images resized to ``width`` x ``height`` (same aspect)."""
        if (width, height) == (self.rgb.width, self.rgb.height):
            return self
        f = width / self.rgb.width
        if abs(height - self.rgb.height * f) > 0.5:
            raise UsageError(f"{width}x{height} does not have the aspect ratio of "
                             f"{self.rgb.width}x{self.rgb.height}")
        return replace(self, rgb=self.rgb.scaled(f), depth=self.depth.scaled(f))


#: The NYU Depth v2 Kinect (``camera_params.m``), 640x480: the intrinsics are
#: :data:`mdlearn.camera.NYU_RGB` and :data:`mdlearn.camera.NYU_DEPTH` (0-based principal points).
NYU_KINECT = KinectCalibration(
    rgb=NYU_RGB,
    depth=NYU_DEPTH,
    rgb_distortion=Distortion(2.0796615318809061e-01, -5.8613825163911781e-01, 7.2231363135888329e-04,
                              1.0479627195765181e-03, 4.9856986684705107e-01),
    depth_distortion=Distortion(-9.9897236553084481e-02, 3.9065324602765344e-01, 1.9290592870229277e-03,
                                -1.9422022475975055e-03, -5.1031725053400578e-01),
    rotation=tuple(map(tuple, -TOOLBOX_R)),
    translation=tuple(-TOOLBOX_T),
)

# ------------------------------------------------------------------------------ file names

_NAME_RE = re.compile(r"^([rda])-(\d+(?:\.\d*)?)-(\d+)\.(ppm|pgm|dump)$")
_EXT = {"r": "ppm", "d": "pgm", "a": "dump"}


@dataclass(frozen=True)
class RawName:
    """A parsed raw file name ``<kind>-<timestamp>-<counter>.<ext>`` (kind ``r``, ``d`` or ``a``)."""

    kind: str
    timestamp: float
    counter: int
    name: str


def parse_raw_name(name: str) -> RawName | None:
    """Parse a raw dump file name; ``None`` if it is not one (Chapter 2).

    >>> parse_raw_name("d-1315403270.612296-3850951695.pgm").timestamp
    1315403270.612296
    """
    m = _NAME_RE.match(name)
    if m is None or _EXT[m.group(1)] != m.group(4):
        return None
    return RawName(m.group(1), float(m.group(2)), int(m.group(3)), name)


def format_raw_name(kind: str, timestamp: float, counter: int) -> str:
    """The file name the Kinect dump gives a frame (timestamp with 6 decimals)."""
    return f"{kind}-{timestamp:.6f}-{counter}.{_EXT[kind]}"


# ------------------------------------------------------------------------------ encodings


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except OSError as e:
        raise FormatError(f"{path}: cannot read ({e.strerror})") from None


def _parse_pnm(path: Path, data: bytes, magic: bytes) -> tuple[int, int, int, int]:
    """Parse a binary PNM header; return (width, height, maxval, payload offset)."""
    if data[:2] != magic:
        raise FormatError(f"{path}: not a binary {'PGM' if magic == b'P5' else 'PPM'} file "
                          f"(magic {data[:2]!r}, expected {magic!r})")
    fields, pos = [], 2
    while len(fields) < 3:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if pos < len(data) and data[pos:pos + 1] == b"#":
            while pos < len(data) and data[pos:pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise FormatError(f"{path}: truncated or malformed header")
        fields.append(int(data[start:pos]))
    if pos >= len(data) or not data[pos:pos + 1].isspace():
        raise FormatError(f"{path}: truncated or malformed header")
    w, h, maxval = fields
    if w <= 0 or h <= 0 or not 0 < maxval < 65536:
        raise FormatError(f"{path}: implausible header (width {w}, height {h}, maxval {maxval})")
    return w, h, maxval, pos + 1


def write_kinect_pgm(path: str | os.PathLike, raw: np.ndarray) -> None:
    """Write raw disparity exactly as the NYU dump stores it (Chapter 2).

    Header ``P5 W H 65535`` and a **little-endian** 16-bit payload (what the real files contain,
    although the PGM standard would make it big-endian). Values must be in 0..2047.
    """
    path = Path(path)
    raw = np.asarray(raw)
    if raw.ndim != 2 or not np.issubdtype(raw.dtype, np.integer):
        raise FormatError(f"{path}: raw disparity must be a 2-D integer array, got {raw.dtype} {raw.shape}")
    if raw.size and (raw.min() < 0 or raw.max() > RAW_INVALID):
        raise FormatError(f"{path}: raw disparity must be in 0..{RAW_INVALID}")
    h, w = raw.shape
    path.write_bytes(f"P5\n{w} {h}\n65535\n".encode() + raw.astype("<u2").tobytes())


def read_kinect_disparity(path: str | os.PathLike) -> np.ndarray:
    """Read a raw ``d-*.pgm`` depth frame as uint16 11-bit disparity (Chapter 2).

    The payload is read little-endian (see the module docstring). Raises
    :class:`~mdlearn.data.formats.FormatError` naming the file if it is not a 16-bit binary PGM,
    is truncated, or holds values above 2047 (which is what reading with the wrong byte order
    gives).
    """
    path = Path(path)
    data = _read_bytes(path)
    w, h, maxval, off = _parse_pnm(path, data, b"P5")
    if maxval < 256:
        raise FormatError(f"{path}: an 8-bit PGM (maxval {maxval}), not a 16-bit Kinect depth frame")
    need = 2 * w * h
    if len(data) - off < need:
        raise FormatError(f"{path}: truncated: {len(data) - off} payload bytes, expected {need} for {w}x{h}")
    raw = np.frombuffer(data, dtype="<u2", count=w * h, offset=off).reshape(h, w)
    if raw.max(initial=0) > RAW_INVALID:
        raise FormatError(f"{path}: values up to {raw.max()} exceed the Kinect's 11 bits "
                          f"(is this a Kinect disparity frame? big-endian payloads read like this)")
    return raw.astype(np.uint16)


def read_kinect_depth(path: str | os.PathLike, max_depth: float = NYU_MAX_DEPTH) -> np.ndarray:
    """Read a raw ``d-*.pgm`` frame as float32 metres in the **depth** camera (0 = invalid).

    Introduced in Chapter 2. Not undistorted and not registered to RGB: see :func:`register_depth`.
    """
    return disparity_to_metres(read_kinect_disparity(path), max_depth=max_depth)


def write_kinect_ppm(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an ``(H, W, 3)`` uint8 image as a binary PPM (``P6 W H 255``), like ``r-*.ppm``."""
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise FormatError(f"{path}: expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    path.write_bytes(f"P6\n{w} {h}\n255\n".encode() + np.ascontiguousarray(rgb).tobytes())


def read_kinect_ppm(path: str | os.PathLike) -> np.ndarray:
    """Read a raw ``r-*.ppm`` frame as an ``(H, W, 3)`` uint8 array (Chapter 2)."""
    path = Path(path)
    data = _read_bytes(path)
    w, h, maxval, off = _parse_pnm(path, data, b"P6")
    if maxval != 255:
        raise FormatError(f"{path}: expected an 8-bit PPM (maxval 255), got maxval {maxval}")
    need = 3 * w * h
    if len(data) - off < need:
        raise FormatError(f"{path}: truncated: {len(data) - off} payload bytes, expected {need} for {w}x{h}")
    return np.frombuffer(data, dtype=np.uint8, count=need, offset=off).reshape(h, w, 3).copy()


#: Assumed layout of an ``a-*.dump`` file: libfreenect's ``freenect_raw_tilt_state``
#: (int16 accelerometer x, y, z in raw counts; int8 tilt angle; padding; int32 tilt status),
#: little-endian, 12 bytes. An inference (no real file was available): see ``eigen2014-facts.md``.
ACCEL_STRUCT = struct.Struct("<hhhbxi")
#: libfreenect: ``freenect_get_mks_accel`` converts counts with ``count / 819 * 9.80665``.
ACCEL_COUNTS_PER_G = 819.0
STANDARD_GRAVITY = 9.80665


@dataclass(frozen=True)
class AccelRecord:
    """One accelerometer record: raw counts (819 per g), tilt angle and tilt status."""

    ax: int
    ay: int
    az: int
    tilt_angle: int = 0
    tilt_status: int = 0

    def mks(self) -> np.ndarray:
        """The acceleration in m/s^2 (libfreenect's conversion)."""
        return np.array([self.ax, self.ay, self.az], dtype=np.float64) / ACCEL_COUNTS_PER_G * STANDARD_GRAVITY


def write_accel_dump(path: str | os.PathLike, rec: AccelRecord) -> None:
    """Write one accelerometer record in the layout of :data:`ACCEL_STRUCT`."""
    Path(path).write_bytes(ACCEL_STRUCT.pack(rec.ax, rec.ay, rec.az, rec.tilt_angle, rec.tilt_status))


def read_accel_dump(path: str | os.PathLike) -> AccelRecord:
    """Read an ``a-*.dump`` file (Chapter 2); a file of any size but 12 bytes is an error."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) != ACCEL_STRUCT.size:
        raise FormatError(f"{path}: {len(data)} bytes, expected {ACCEL_STRUCT.size} for one accelerometer "
                          "record (int16 x, y, z, int8 tilt, int32 status)")
    return AccelRecord(*ACCEL_STRUCT.unpack(data))


# ------------------------------------------------------------------------------ disparity


def disparity_to_metres(raw: np.ndarray, min_raw: int = TOOLBOX_MIN_RAW,
                        max_depth: float = NYU_MAX_DEPTH) -> np.ndarray:
    """Raw Kinect disparity to float32 metres, 0 where invalid (Chapter 2).

    ``depth = 351.3 / (1092.5 - raw)``. Invalid: ``raw == 2047`` (no reading), ``raw <
    min_raw`` (the toolbox's rule, depths under 0.71 m) and depths outside ``(0, max_depth]``
    (raw values at or beyond 1092.5 give negative or infinite depth). The toolbox clips such
    depths to 10 m instead; marking them invalid keeps bogus values out of the training targets.
    """
    return _metres_lut(int(min_raw), float(max_depth))[_as_index(raw)]


@functools.lru_cache(maxsize=8)
def _metres_lut(min_raw: int, max_depth: float) -> np.ndarray:
    r = np.arange(RAW_INVALID + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        d = DISPARITY_NUMERATOR / (DISPARITY_OFFSET - r)
    ok = (r >= min_raw) & (r < RAW_INVALID) & (d > 0) & (d <= max_depth)
    lut = np.where(ok, d, 0.0).astype(np.float32)
    lut.setflags(write=False)
    return lut


def metres_to_disparity(depth: np.ndarray) -> np.ndarray:
    """The (continuous) raw disparity that the Kinect would report for ``depth`` metres."""
    return DISPARITY_OFFSET - DISPARITY_NUMERATOR / np.asarray(depth, dtype=np.float64)


def _as_index(raw: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.dtype == np.uint16 and raw.max(initial=0) <= RAW_INVALID:
        return raw
    return np.clip(raw, 0, RAW_INVALID).astype(np.intp)


def _min_max_levels(raw: np.ndarray, lut: np.ndarray) -> tuple[int, int] | None:
    """The smallest and largest raw level with a valid depth in the frame (None if none)."""
    counts = np.bincount(raw.ravel(), minlength=RAW_INVALID + 1)
    levels = np.flatnonzero((counts > 0) & (lut > 0))
    return (int(levels[0]), int(levels[-1])) if levels.size else None


def mask_min_max(raw: np.ndarray, min_raw: int = TOOLBOX_MIN_RAW, max_depth: float = NYU_MAX_DEPTH) -> np.ndarray:
    """Set the pixels at the frame's smallest and largest valid depth to invalid (Chapter 2).

    The paper (section 4.1) masks "depths equal to the minimum or maximum recorded for each
    image" to remove windows, open doorways and specular surfaces. On quantised raw disparity
    "equal" is exact, so the rule is applied to the raw frame, before registration (after it,
    values are no longer shared levels). Returns a copy with those pixels set to 2047.
    """
    idx = _as_index(raw)
    out = np.array(raw, copy=True)
    lv = _min_max_levels(idx, _metres_lut(int(min_raw), float(max_depth)))
    if lv is not None:
        out[(idx == lv[0]) | (idx == lv[1])] = RAW_INVALID
    return out


# ------------------------------------------------------------------------------ geometry


@functools.lru_cache(maxsize=8)
def depth_rays(calib: KinectCalibration) -> tuple[np.ndarray, np.ndarray]:
    """Ideal normalised ray coordinates ``(x, y)`` (z = 1) of every raw depth pixel.

    Introduced in Chapter 2. Raw pixel ``(u, v)`` sits at distorted normalised coordinates
    ``((u - cx)/fx, (v - cy)/fy)``; removing the depth lens distortion gives the ray it saw.
    Cached per calibration (float32, read-only).
    """
    K = calib.depth
    v, u = np.mgrid[0:K.height, 0:K.width].astype(np.float64)
    x, y = calib.depth_distortion.remove((u - K.cx) / K.fx, (v - K.cy) / K.fy)
    x, y = x.astype(np.float32), y.astype(np.float32)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def register_depth(raw: np.ndarray, calib: KinectCalibration = NYU_KINECT, value: str = "rgb",
                   min_max_mask: bool = False, min_raw: int = TOOLBOX_MIN_RAW,
                   max_depth: float = NYU_MAX_DEPTH) -> np.ndarray:
    """Project a raw depth frame into the (undistorted) RGB camera with a z-buffer (Chapter 2).

    The toolbox's ``project_depth_map.m``, vectorised: raw disparity -> metres (invalid = 0),
    each raw pixel back-projected along its undistorted ray (instead of resampling the depth
    image, which mixes depths across edges), moved into the RGB camera, projected and rounded
    to the nearest pixel; where several points land on one pixel the nearest wins. Points landing
    on any pixel of the image are kept (the toolbox's ``0 < x < W`` test on its 1-based grid also
    drops the last column and row).

    Args:
        raw: ``(H, W)`` raw disparity (the size selects ``calib.for_size``).
        value: ``"rgb"`` stores the point's z in the RGB camera (the true registered z-depth);
            ``"toolbox"`` stores its z in the depth camera, as ``project_depth_map.m`` does (the
            two differ by up to a few millimetres).
        min_max_mask: apply :func:`mask_min_max` first (the paper's rule).

    Returns:
        ``(H, W)`` float32 metres in the RGB camera's pixel grid, 0 = no depth.
    """
    raw = np.asarray(raw)
    h, w = raw.shape
    calib = calib.for_size(w, h)
    idx = _as_index(raw)
    lut = _metres_lut(int(min_raw), float(max_depth))
    if min_max_mask:  # the paper's rule, folded into the lookup table (see mask_min_max)
        lv = _min_max_levels(idx, lut)
        if lv is not None:
            lut = lut.copy()
            lut[list(lv)] = 0.0
    z = lut[idx].ravel()
    rx, ry = depth_rays(calib)
    keep = np.flatnonzero(z > 0)
    z = z[keep]
    X, Y = rx.ravel()[keep] * z, ry.ravel()[keep] * z
    M = np.asarray(calib.rotation, dtype=np.float32)
    t = np.asarray(calib.translation, dtype=np.float32)
    Xr = M[0, 0] * X + M[0, 1] * Y + M[0, 2] * z + t[0]
    Yr = M[1, 0] * X + M[1, 1] * Y + M[1, 2] * z + t[1]
    Zr = M[2, 0] * X + M[2, 1] * Y + M[2, 2] * z + t[2]
    K = calib.rgb
    inv = 1.0 / Zr
    ui = np.rint(K.fx * Xr * inv + K.cx)
    vi = np.rint(K.fy * Yr * inv + K.cy)
    ok = (Zr > 0) & (ui >= 0) & (ui <= w - 1) & (vi >= 0) & (vi <= h - 1)
    idx = vi[ok].astype(np.intp) * w + ui[ok].astype(np.intp)
    vals = (Zr if value == "rgb" else z)[ok] if value in ("rgb", "toolbox") else None
    if vals is None:
        raise UsageError(f"value must be 'rgb' or 'toolbox', got {value!r}")
    out = np.full(h * w, np.inf, dtype=np.float32)
    np.minimum.at(out, idx, vals.astype(np.float32))
    out[~np.isfinite(out)] = 0.0
    return out.reshape(h, w)


def register_depth_toolbox(raw: np.ndarray, calib: KinectCalibration = NYU_KINECT,
                           value: str = "toolbox") -> np.ndarray:
    """``project_depth_map.m`` as the toolbox does it, for comparison with :func:`register_depth`.

    Introduced in Chapter 2, which measures each difference on simulated ground truth. The
    steps that differ from :func:`register_depth`:

    1. The raw disparity *image* is undistorted by bilinear resampling (the toolbox's
       ``undistort_depth``; ideal pixels whose source falls outside the frame read 0), so
       disparities are blended across depth edges, instead of each raw pixel keeping its value
       and moving along its own undistorted ray.
    2. The "noise mask" is the set of pixels equal to the frame's **maximum raw value** (2047,
       "no reading", whenever the frame has a hole), resampled the same way; every ideal pixel
       it touches (> 0) is invalid. It is not the paper's min/max rule (:func:`mask_min_max`).
    3. Raw below 600 is invalid; depths beyond 10 m are **clipped** to 10 m, not dropped.
    4. Points land on a pixel only if ``0 < x < W`` and ``0 < y < H`` on the 1-based grid: the
       last column and row of the 0-based grid get nothing.
    5. ``value="toolbox"`` stores the depth camera's z (the toolbox's choice); ``"rgb"`` the
       z in the RGB camera. The nearest stored value wins each pixel.

    Args:
        raw: ``(H, W)`` raw disparity. calib: the Kinect (resized with ``for_size``).
        value: ``"toolbox"`` or ``"rgb"``, as above.

    Returns:
        ``(H, W)`` float32 metres in the RGB camera's pixel grid, 0 = no depth.
    """
    from scipy.ndimage import map_coordinates

    if value not in ("rgb", "toolbox"):
        raise UsageError(f"value must be 'rgb' or 'toolbox', got {value!r}")
    raw = np.asarray(raw)
    h, w = raw.shape
    calib = calib.for_size(w, h)
    K = calib.depth
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    xd, yd = calib.depth_distortion.apply((u - K.cx) / K.fx, (v - K.cy) / K.fy)
    src = [K.fy * yd + K.cy, K.fx * xd + K.cx]
    r = raw.astype(np.float64)
    ideal = map_coordinates(r, src, order=1, mode="constant", cval=0.0)
    noise = map_coordinates(255.0 * (r == r.max()), src, order=1, mode="constant", cval=0.0) > 0
    ideal[(ideal < TOOLBOX_MIN_RAW) | noise] = RAW_INVALID
    with np.errstate(divide="ignore"):
        z = DISPARITY_NUMERATOR / (DISPARITY_OFFSET - ideal)
    z = np.clip(np.where(ideal >= RAW_INVALID, 0.0, z), 0.0, NYU_MAX_DEPTH).ravel()
    keep = np.flatnonzero(z > 0)
    z = z[keep]
    P = np.stack([(u.ravel()[keep] - K.cx) / K.fx * z, (v.ravel()[keep] - K.cy) / K.fy * z, z])
    Pr = np.asarray(calib.rotation) @ P + np.asarray(calib.translation)[:, None]
    Kr = calib.rgb
    ui = np.rint(Kr.fx * Pr[0] / Pr[2] + Kr.cx)
    vi = np.rint(Kr.fy * Pr[1] / Pr[2] + Kr.cy)
    ok = (Pr[2] > 0) & (ui >= 0) & (ui < w - 1) & (vi >= 0) & (vi < h - 1)
    vals = (z if value == "toolbox" else Pr[2])[ok]
    out = np.full(h * w, np.inf)
    np.minimum.at(out, vi[ok].astype(np.intp) * w + ui[ok].astype(np.intp), vals)
    out[~np.isfinite(out)] = 0.0
    return np.clip(out, 0.0, NYU_MAX_DEPTH).astype(np.float32).reshape(h, w)


@functools.lru_cache(maxsize=8)
def _rgb_undistort_map(calib: KinectCalibration) -> tuple[np.ndarray, np.ndarray]:
    """For each ideal RGB pixel: its four source pixels in the raw image and their bilinear
    weights in 1/256 (summing to exactly 256)."""
    K = calib.rgb
    v, u = np.mgrid[0:K.height, 0:K.width].astype(np.float64)
    xd, yd = calib.rgb_distortion.apply((u - K.cx) / K.fx, (v - K.cy) / K.fy)
    su = np.clip(K.fx * xd + K.cx, 0, K.width - 1).ravel()
    sv = np.clip(K.fy * yd + K.cy, 0, K.height - 1).ravel()
    u0 = np.minimum(np.floor(su), K.width - 2).astype(np.int32)
    v0 = np.minimum(np.floor(sv), K.height - 2).astype(np.int32)
    fu, fv = su - u0, sv - v0
    w = np.rint(np.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv]) * 256).astype(np.int32)
    big = np.argmax(w, axis=0)
    w[big, np.arange(w.shape[1])] += 256 - w.sum(0)
    base = v0 * K.width + u0
    idx = np.stack([base, base + 1, base + K.width, base + K.width + 1])
    w = w.astype(np.uint16)
    for a in (idx, w):
        a.setflags(write=False)
    return idx, w


def undistort_rgb(rgb: np.ndarray, calib: KinectCalibration = NYU_KINECT) -> np.ndarray:
    """Remove the RGB lens distortion (bilinear resampling), as ``project_depth_map.m`` does.

    Introduced in Chapter 2. The output is the image of the ideal pinhole camera ``calib.rgb``,
    the camera :func:`register_depth` projects into. (Each pixel is gathered as one 32-bit word
    and blended in 8-bit fixed point: three times faster than float arithmetic, within 1 level.)
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise UsageError(f"expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    idx, wts = _rgb_undistort_map(calib.for_size(w, h))
    px = np.zeros((h * w, 4), np.uint8)
    px[:, :3] = rgb.reshape(-1, 3)
    words = px.view(np.uint32).ravel()
    acc = np.zeros((h * w, 4), np.uint16)
    for k in range(4):
        acc += words[idx[k]].view(np.uint8).reshape(-1, 4) * wts[k][:, None]
    return ((acc + 128) >> 8).astype(np.uint8)[:, :3].reshape(h, w, 3)
