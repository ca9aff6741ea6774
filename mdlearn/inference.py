"""Depth from anyone's photos with a trained checkpoint, and exporting the network (Chapter 9).

``mdlearn predict IMAGE... --checkpoint CKPT`` and ``mdlearn export`` are thin wrappers of
:func:`predict_image`, :func:`write_prediction` and :func:`export_model`.

How a photo of any size meets a network with a fixed input (the fully connected Coarse 6 and 7
fix it): the whole photo is resized (anti-aliased, possibly anisotropically) to the network's
input size, the network predicts log depth on its output grid, and that grid is interpolated
back, linearly **in log depth**, to every pixel of the photo, each output unit placed at the
photo position of the input pixel it is centred on (:meth:`mdlearn.models.DepthNet.output_grid`).
Pixels outside the region the network predicts (KITTI's fine network sees only the bottom rows)
get depth 0 = no prediction, never an extrapolated value; the thin band that the valid
convolutions leave around the grid takes the nearest unit's value.

Metric scale holds only near the training domain: a network trained on indoor rooms seen by a
Kinect-like camera predicts metres for similar rooms and cameras; on anything else its depths are
right up to an unknown scale at best (the scale-invariant error of Chapter 4 is what it was
trained to get right). The command says so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import FormatError, MdlearnError, UsageError
from .jobs import write_atomically

__all__ = ["Prediction", "parse_intrinsics", "load_image", "check_image", "checkpoint_intrinsics", "predict_image",
           "write_prediction", "export_model", "EXPORT_FORMATS", "DOMAIN_NOTE"]

#: What ``mdlearn predict`` prints about metric scale.
DOMAIN_NOTE = ("note: depths are in metres only for scenes and cameras like the training data's; "
               "elsewhere trust them up to an unknown global scale at best")

#: Formats :func:`export_model` writes.
EXPORT_FORMATS = ("onnx", "torchscript")


@dataclass
class Prediction:
    """One photo's depth (Chapter 9).

    Attributes:
        depth: ``(H, W)`` float32 metres at the photo's own size; 0 where the network predicts nothing.
        image: ``(H, W, 3)`` uint8, the photo (for coloured point clouds and previews).
        intrinsics: ``(fx, fy, cx, cy)`` in the photo's pixels (0-based pixel centres).
        source: the photo's path (or a name).
    """

    depth: np.ndarray
    image: np.ndarray
    intrinsics: tuple[float, float, float, float]
    source: str


def parse_intrinsics(text: str) -> tuple[float, float, float, float]:
    """``"fx,fy,cx,cy"`` (pixels) -> four floats; ``UsageError`` saying what is expected otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(np.isfinite(values)) or values[0] <= 0 or values[1] <= 0:
        raise UsageError(f"--intrinsics must be four numbers fx,fy,cx,cy in pixels with fx, fy > 0, got {text!r}")
    return values  # type: ignore[return-value]


def _open_image(path: str | os.PathLike, convert: bool) -> np.ndarray | None:
    """Open ``path`` with Pillow: decode it to ``(H, W, 3)`` uint8 RGB (``convert``) or only verify
    its header and structure (cheap; returns None). One-line errors name the file."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            if not convert:
                im.verify()
                return None
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except Exception as e:  # noqa: BLE001 - any Pillow failure means: not an image we can read
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FormatError(f"{path}: not a readable image ({reason})") from None


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB (Pillow; greyscale and alpha converted).

    Raises:
        UsageError: no such file.
        FormatError: the file is not an image Pillow can read (one line naming it).
    """
    return _open_image(path, convert=True)  # type: ignore[return-value]


def check_image(path: str | os.PathLike) -> None:
    """Raise as :func:`load_image` would, without decoding the pixels (``mdlearn predict`` checks
    every input before it writes anything)."""
    _open_image(path, convert=False)


def checkpoint_intrinsics(state: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """The camera at the network input a checkpoint records (``meta.input_intrinsics``), or None."""
    k = (state.get("meta") or {}).get("input_intrinsics")
    return tuple(float(v) for v in k) if k is not None and len(k) == 4 else None  # type: ignore[return-value]


def _rescale_intrinsics(k: Sequence[float], src: tuple[int, int], dst: tuple[int, int]) -> tuple[float, ...]:
    """Intrinsics of an image of size ``src`` (w, h) resized to ``dst`` (w, h), pixel centres at integers."""
    sx, sy = dst[0] / src[0], dst[1] / src[1]
    fx, fy, cx, cy = (float(v) for v in k)
    return fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5


def _network_input(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """``(1, 3, h, w)`` float32 in [0, 1] from an ``(H, W, 3)`` uint8 photo, anti-aliased resize."""
    from torchvision.transforms.v2 import functional as TF

    w, h = size
    x = TF.to_dtype(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), torch.float32, scale=True)
    return TF.resize(x, [h, w], antialias=True)[None]


def _grid_to_photo(logd: np.ndarray, rows: np.ndarray, cols: np.ndarray, input_size: tuple[int, int],
                   photo_size: tuple[int, int], first_row: int) -> np.ndarray:
    """Interpolate an output-grid log-depth map ``(h, w)`` to the photo: linear between the unit
    centres, the nearest border unit's value in the thin band the valid convolutions leave around
    the grid, and 0 (no prediction) above input row ``first_row`` (the region the network sees)."""
    from scipy.interpolate import RegularGridInterpolator

    (win, hin), (W, H) = input_size, photo_size
    # output unit centres in photo pixel coordinates (pixel centres at integers)
    ry = (rows.astype(np.float64) + 0.5) * H / hin - 0.5
    cx = (cols.astype(np.float64) + 0.5) * W / win - 0.5
    yy, xx = np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64)
    interp = RegularGridInterpolator((ry, cx), logd.astype(np.float64), method="linear", bounds_error=False)
    gy, gx = np.meshgrid(np.clip(yy, ry[0], ry[-1]), np.clip(xx, cx[0], cx[-1]), indexing="ij")
    out = np.exp(interp(np.stack([gy, gx], axis=-1))).astype(np.float32)
    out[yy < first_row * H / hin - 0.5] = 0.0
    return out


@torch.no_grad()
def predict_image(model, image: np.ndarray, *, scale: str = "fine", intrinsics: Sequence[float] | None = None,
                  input_intrinsics: Sequence[float] | None = None, source: str = "image",
                  device: torch.device | str | None = None) -> Prediction:
    """Depth for one photo ``(H, W, 3)`` uint8 at its own size (Chapter 9).

    Args:
        model: a :class:`~mdlearn.models.DepthNet` (e.g. from
            :func:`mdlearn.train.model_from_checkpoint`).
        scale: ``"fine"`` (Coarse+Fine) or ``"coarse"``.
        intrinsics: the photo's own ``(fx, fy, cx, cy)`` in its pixels, if known.
        input_intrinsics: else, the camera at the network input during training
            (:func:`checkpoint_intrinsics`), rescaled to the photo; with neither, the prediction
            has no camera and :func:`write_prediction` writes no point cloud.
    """
    from .runtime import default_device

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise UsageError(f"{source}: expected an (H, W, 3) uint8 image, got {img.shape} {img.dtype}")
    dev = default_device(device)
    model = model.to(dev).eval()
    size = tuple(model.config.input_size)  # (w, h)
    H, W = img.shape[:2]
    logd = model(_network_input(img, size).to(dev), scale=scale)[0, 0].float().cpu().numpy()
    rows, cols = (t.numpy() for t in model.output_grid())
    first = model.config.input_size[1] - model.config.fine_rows
    depth = _grid_to_photo(logd, rows, cols, size, (W, H), first)
    if intrinsics is not None:
        k = tuple(float(v) for v in intrinsics)
    elif input_intrinsics is not None:
        k = _rescale_intrinsics(input_intrinsics, size, (W, H))
    else:
        k = (float("nan"),) * 4
    return Prediction(depth=depth, image=img, intrinsics=k, source=source)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ writing


def _point_cloud(pred: Prediction) -> np.ndarray:
    """The structured vertex array (x, y, z metres in the camera frame; red, green, blue) of valid pixels."""
    fx, fy, cx, cy = pred.intrinsics
    v, u = np.nonzero(pred.depth > 0)
    z = pred.depth[v, u].astype(np.float32)
    verts = np.empty(len(z), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"),
                                    ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    verts["x"], verts["y"], verts["z"] = (u - cx) / fx * z, (v - cy) / fy * z, z
    rgb = pred.image[v, u]
    verts["red"], verts["green"], verts["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return verts


def write_prediction(pred: Prediction, out_dir: str | os.PathLike, stem: str, *, overwrite: bool = False,
                     point_cloud: bool = True) -> dict[str, Path]:
    """Write a :class:`Prediction` as ``<stem>.depth.png`` (16-bit, millimetres, 0 = none),
    ``<stem>.depth.npy`` (float32 metres), ``<stem>.preview.png`` (the photo and its depth with a
    colour bar in metres) and ``<stem>.ply`` (a coloured point cloud, written with ``plyfile``;
    only with intrinsics). Each file is written atomically.

    Depths beyond 65.535 m do not fit the PNG's millimetres: they are 0 there (and kept in the
    ``.npy``); the returned dict then has an entry ``"clipped"`` with their count.

    Raises:
        MdlearnError: an output exists and ``overwrite`` is false (nothing is written then).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image
    from plyfile import PlyData, PlyElement

    from .plotting import BOOK_WIDTH, show_depth

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    has_camera = bool(np.all(np.isfinite(pred.intrinsics)))
    names = {"png": out / f"{stem}.depth.png", "npy": out / f"{stem}.depth.npy",
             "preview": out / f"{stem}.preview.png"}
    if point_cloud and has_camera:
        names["ply"] = out / f"{stem}.ply"
    existing = [str(p) for p in names.values() if p.exists()]
    if existing and not overwrite:
        raise MdlearnError(f"{existing[0]}: exists; refusing to replace it (pass --overwrite, or another --out)")
    depth = pred.depth.astype(np.float32)
    mm = np.round(depth * 1000.0)
    too_far = mm > np.iinfo(np.uint16).max
    mm[too_far] = 0
    write_atomically(names["png"], lambda p: Image.fromarray(mm.astype(np.uint16)).save(p, format="PNG"))

    def _npy(p: Path) -> None:
        with open(p, "wb") as f:
            np.save(f, depth)

    write_atomically(names["npy"], _npy)

    def _preview(p: Path) -> None:
        fig, axes = plt.subplots(1, 2, figsize=(BOOK_WIDTH, BOOK_WIDTH * 0.42), layout="constrained")
        axes[0].imshow(pred.image)
        axes[0].set_title(Path(pred.source).name)
        axes[0].axis("off")
        show_depth(axes[1], np.where(depth > 0, depth, 0.0), title="predicted depth")
        fig.savefig(p, format="png", dpi=120)
        plt.close(fig)

    write_atomically(names["preview"], _preview)
    if "ply" in names:
        element = PlyElement.describe(_point_cloud(pred), "vertex")
        write_atomically(names["ply"], lambda p: PlyData([element], text=False).write(str(p)))
    result: dict[str, Any] = dict(names)
    if too_far.any():
        result["clipped"] = int(too_far.sum())
    return result


# ------------------------------------------------------------------------------------ export


class _Exported(torch.nn.Module):
    """The network at one scale as a plain ``image -> log depth`` module (what gets exported)."""

    def __init__(self, model, scale: str) -> None:
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image, scale=self.scale)


def export_model(model, path: str | os.PathLike, fmt: str = "onnx", *, scale: str = "fine",
                 overwrite: bool = False, check: bool = True, atol: float = 1e-4) -> dict[str, Any]:
    """Export ``model`` (eval mode, CPU) at ``scale`` to ``path`` as ONNX or TorchScript (Chapter 9).

    The exported graph maps ``(B, 3, h, w)`` float32 images in [0, 1] to ``(B, 1, h', w')`` log
    depth. With ``check``, the written file is loaded by its own runtime (onnxruntime for ONNX,
    ``torch.jit.load`` for TorchScript) and run on a random batch of two; the largest absolute
    difference from PyTorch's output is returned as ``max_abs_diff`` and must stay below ``atol``
    (else ``MdlearnError``, and the file is removed: it is ours and wrong). The file is written
    atomically.
    """
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; known: {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise MdlearnError(f"{path}: exists; refusing to replace it (pass --overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    net = _Exported(model.to("cpu").eval(), scale).eval()
    w, h = model.config.input_size
    example = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = net(example).numpy()

    def _write(tmp: Path) -> None:
        if fmt == "onnx":
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(net, (example,), str(tmp), input_names=["image"], output_names=["log_depth"],
                                  dynamic_axes={"image": {0: "batch"}, "log_depth": {0: "batch"}}, dynamo=False)
        else:
            import warnings

            # TorchScript is deprecated in favour of torch.export but is still what C++ / mobile
            # deployments load; the check below proves the traced graph right for this model
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.jit.save(torch.jit.trace(net, (example,)), str(tmp))
        if check:
            got = _run_exported(tmp, fmt, example)
            diff = float(np.abs(got - ref).max())
            report["max_abs_diff"] = diff
            if not diff < atol:
                raise MdlearnError(f"{path}: the exported {fmt} model differs from PyTorch by {diff:.2e} "
                                   f"(tolerance {atol:.0e}); not written")

    report: dict[str, Any] = {"path": path, "format": fmt, "scale": scale, "input": (h, w)}
    write_atomically(path, _write)
    return report


def _run_exported(path: Path, fmt: str, example: torch.Tensor) -> np.ndarray:
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise MdlearnError("checking an ONNX export needs onnxruntime: pip install onnxruntime") from None
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return sess.run(None, {"image": example.numpy()})[0]
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu")
        return loaded(example).numpy()
