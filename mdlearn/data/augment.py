"""The paper's online data augmentation (§3.4), applied jointly to a whole sample (Chapter 5).

Every step is a torchvision v2 transform acting on the sample of :mod:`mdlearn.data.sample`:
``image`` (``tv_tensors.Image``), ``depth`` and ``valid`` (``tv_tensors.Mask``, float and bool)
and ``intrinsics`` (:class:`~mdlearn.data.sample.CameraIntrinsics`, updated by every geometric
step). They are applied to samples already at training resolution (NYU 320x240, KITTI about
612x184: the resize that gets them there lives in :mod:`mdlearn.data.transforms` or in the
cache of :mod:`mdlearn.data.cache`).

The steps, in the paper's order (NYU values; KITTI's, from its footnote 2, in parentheses):

1. :class:`RandomZoom`: enlarge by ``s ~ U[1, 1.5]`` (KITTI ``U[1, 1.2]``), depth divided by ``s``;
2. ``v2.RandomRotation``: rotate by ``r ~ U[-5, 5]`` degrees (KITTI: none, "images are horizontal");
3. ``v2.RandomCrop``: to the network input, 228x304 (KITTI 172x576: nearly the whole
   612x184 half-resolution image, which goes to the coarse network);
4. :class:`RandomColorScale`: multiply the image by ``c ~ U[0.8, 1.2]^3``, one factor per channel;
5. ``v2.RandomHorizontalFlip``: ``p = 0.5``.

:func:`paper_augmentation` composes them; :func:`test_transform` is the deterministic test path
(one centre crop at scale 1, no rotation or colour change). Each step can be used alone (the
chapter shows them one at a time on one sample).

The rotation turns the image about its centre, which for the camera is a roll about the optical
axis (exact when ``fx == fy``) plus a shift of the principal point, which the intrinsics follow.
A roll keeps every z-depth, so depth values are only moved, never changed.

**Resampling.** The image is resampled bilinearly; ``depth`` and ``valid`` with
nearest-neighbour, both with the *same* source pixel for every output pixel, so a depth is
always one measured value (never an average across an edge or with a hole) and an invalid pixel
never leaks into a valid one. Pixels brought in by rotation or crop padding are filled with
depth 0 / ``valid`` False (and black in the image). After every step ``valid == valid & (depth > 0)``.

**Why depth is divided by s** (the exact statement, from the pinhole model
``u = fx X / Z + cx``). Enlarging the image by ``s`` is a *zoom*: it is exactly the picture a
camera with focal length ``s fx`` (its principal point moved with the pixels) takes of the *same*
world from the *same* place, so on its own it keeps every depth. :class:`RandomZoom` then divides the depths by
``s``. By the dollhouse argument of Chapter 1 (a world built ``1/s`` times smaller about the
camera centre gives the identical image, with every depth divided by ``s``), the augmented pair
(enlarged image, depth / ``s``) is *exactly* what the zoomed camera sees of the world shrunk by
``s`` -- a similar world, so the pair is geometrically consistent, and the sample's intrinsics
(``s fx``, updated by the resize) describe it exactly: back-projecting the augmented depth with
the augmented intrinsics gives every 3-D point divided by ``s``. Seen through the *original*
focal length ``fx`` -- the one the network implicitly assumes, since it never sees the camera --
the pair is the picture of the world with every point ``(X, Y, Z)`` moved to ``(X, Y, Z / s)``:
everything keeps its lateral size and comes ``s`` times closer. For a surface facing the camera
that is the paper's "moving the camera s times closer"; a slanted surface is also squashed along
the optical axis by ``s``, the mild warp the paper accepts for crops too. Without dividing, the
network would be taught that an object which looks ``s`` times larger is at the same distance.
``tests/test_augment.py`` checks the statement against the renderer.

**Seeding.** All random draws use torch's global generator (``torch.rand``), as torchvision v2
does. In the main process ``torch.manual_seed(seed)`` fixes them. A ``DataLoader`` worker seeds
its own torch generator with ``base_seed + worker_id``, where ``base_seed`` is drawn from the
loader's ``generator`` (or the global generator) when the iterator starts, so passing
``generator=torch.Generator().manual_seed(seed)`` makes the augmentations of every worker
reproducible (for a fixed ``num_workers``); :func:`mdlearn.train.make_loader` goes further and
seeds each sample from its stream position, so a resume, which restarts the workers, changes
nothing. Nothing here uses ``random`` or NumPy's generator, so no ``worker_init_fn`` is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import query_size

from ..errors import UsageError
from .sample import CameraIntrinsics

__all__ = ["RandomZoom", "RandomColorScale", "zoom", "zoom_size", "color_scale", "paper_augmentation", "test_transform",
           "AUGMENTATION", "INPUT_SIZE"]

#: The network's input size ``(height, width)`` per dataset (paper Fig. 1: 304x228 and 576x172).
INPUT_SIZE = {"nyu": (228, 304), "kitti": (172, 576)}

#: The paper's ranges per dataset (§3.4 and its footnote 2).
AUGMENTATION = {
    "nyu": {"scale": (1.0, 1.5), "degrees": 5.0, "color": (0.8, 1.2), "flip": 0.5},
    "kitti": {"scale": (1.0, 1.2), "degrees": 0.0, "color": (0.8, 1.2), "flip": 0.5},
}


def _family(dataset: str) -> str:
    """``"nyu"`` for ``nyu``, ``nyu-sync``, ``nyu-labeled``...; ``"kitti"`` likewise."""
    for fam in AUGMENTATION:
        if dataset == fam or dataset.startswith(fam + "-"):
            return fam
    raise UsageError(f"dataset must be one of {sorted(AUGMENTATION)} (or a sample's dataset name), got {dataset!r}")


def _is_depth(inpt: Any) -> bool:
    # in an mdlearn sample the float Mask is the depth map and the bool Mask its validity
    return isinstance(inpt, tv_tensors.Mask) and inpt.dtype.is_floating_point


def _zoom_one(inpt: Any, size: list[int], depth_divisor: float) -> Any:
    if isinstance(inpt, tv_tensors.Image):
        return F.resize(inpt, size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
    if isinstance(inpt, tv_tensors.Mask):
        # NEAREST_EXACT samples the source pixel whose centre is nearest ((u' + 0.5) / s - 0.5),
        # the pixel-centre convention the intrinsics follow; depth and valid use the same pixels.
        out = F.resize(inpt, size, interpolation=v2.InterpolationMode.NEAREST_EXACT)
        return tv_tensors.wrap(out / depth_divisor, like=out) if _is_depth(inpt) else out
    if isinstance(inpt, CameraIntrinsics):
        return F.resize(inpt, size)
    return inpt


def zoom_size(canvas: tuple[int, int], s: float) -> tuple[list[int], float]:
    """The output size ``[h, w]`` for enlarging a ``canvas = (H, W)`` image by ``s`` and the depth divisor.

    The size is rounded to whole pixels, so the achieved scale is ``h / H`` vertically and ``w / W``
    horizontally (they differ from ``s`` by less than half a pixel); depth is divided by their mean.
    """
    H, W = canvas
    h, w = max(1, round(H * s)), max(1, round(W * s))
    return [h, w], (h / H + w / W) / 2.0


def zoom(sample: dict[str, Any], s: float) -> dict[str, Any]:
    """Enlarge a sample by ``s`` (image, depth, valid, intrinsics) and divide its depth by ``s``.

    The functional form of :class:`RandomZoom` (Chapter 5); see the module docstring for why.
    ``s`` may be any positive number (``s < 1`` shrinks; depth is then multiplied by ``1 / s``).
    """
    if not s > 0:
        raise UsageError(f"zoom factor must be positive, got {s}")
    size, divisor = zoom_size(tuple(sample["image"].shape[-2:]), float(s))
    return {k: _zoom_one(v, size, divisor) for k, v in sample.items()}


class RandomZoom(v2.Transform):
    """Scale augmentation: enlarge by ``s ~ U[low, high]`` and divide depth by ``s`` (paper §3.4).

    Introduced in Chapter 5. The image is resized bilinearly, float ``Mask``\\ s (depth) and other
    ``Mask``\\ s (valid) nearest-neighbour with the same pixels, the intrinsics follow
    (``fx, fy`` times ``s``). ``scale=(1.5, 1.5)`` applies a fixed factor.
    """

    def __init__(self, scale: Sequence[float] = (1.0, 1.5)) -> None:
        super().__init__()
        low, high = (float(v) for v in scale)
        if not 0 < low <= high:
            raise UsageError(f"scale range must satisfy 0 < low <= high, got {tuple(scale)}")
        self.scale = (low, high)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        low, high = self.scale
        s = low + (high - low) * float(torch.rand(()))
        size, divisor = zoom_size(query_size(flat_inputs), s)
        return {"size": size, "divisor": divisor}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return _zoom_one(inpt, params["size"], params["divisor"])

    def extra_repr(self) -> str:
        return f"scale={self.scale}, depth divided by the scale, masks nearest-exact"


def color_scale(image: torch.Tensor, c: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """``image`` (3, H, W) in [0, 1] with channel ``k`` multiplied by ``c[k]``, clamped to [0, 1] (Chapter 5)."""
    c = torch.as_tensor(c, dtype=image.dtype, device=image.device).reshape(-1, 1, 1)
    out = (image * c).clamp_(0.0, 1.0)
    return tv_tensors.wrap(out, like=image) if isinstance(image, tv_tensors.Image) else out


class RandomColorScale(v2.Transform):
    """Colour augmentation: multiply each RGB channel by its own ``c ~ U[low, high]`` (paper §3.4).

    Introduced in Chapter 5. Acts on the ``Image`` only (depth, masks and camera pass through);
    the result is clamped to [0, 1].
    """

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, low: float = 0.8, high: float = 1.2) -> None:
        super().__init__()
        if not 0 <= low <= high:
            raise UsageError(f"colour range must satisfy 0 <= low <= high, got ({low}, {high})")
        self.low, self.high = float(low), float(high)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"c": self.low + (self.high - self.low) * torch.rand(3)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return color_scale(inpt, params["c"])

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}, per channel, clamped to [0, 1]"


def paper_augmentation(dataset: str = "nyu", input_size: tuple[int, int] | None = None, *,
                       scale: Sequence[float] | None = None, degrees: float | None = None,
                       color: Sequence[float] | None = None, flip: float | None = None) -> v2.Compose:
    """The paper's training augmentation for ``dataset`` (``"nyu"`` or ``"kitti"``) as one ``v2.Compose``.

    Introduced in Chapter 5. Steps, in the paper's order: :class:`RandomZoom`, ``v2.RandomRotation``
    (NYU only), ``v2.RandomCrop`` to ``input_size`` (default :data:`INPUT_SIZE`; padded with
    invalid pixels if the sample is smaller), :class:`RandomColorScale`,
    ``v2.RandomHorizontalFlip``. Keyword arguments override the ranges of :data:`AUGMENTATION`.
    Expects samples at training resolution; returns samples of ``input_size``.
    """
    fam = _family(dataset)
    p = dict(AUGMENTATION[fam])
    for k, v in (("scale", scale), ("degrees", degrees), ("color", color), ("flip", flip)):
        if v is not None:
            p[k] = v
    size = tuple(input_size) if input_size is not None else INPUT_SIZE[fam]
    steps: list[v2.Transform] = [RandomZoom(p["scale"])]
    if p["degrees"]:
        # fill=None: grid_sample's zero padding (black, depth 0, valid False), a third cheaper than fill=0
        steps.append(v2.RandomRotation(float(p["degrees"]), interpolation=v2.InterpolationMode.BILINEAR, fill=None))
    steps += [
        v2.RandomCrop(size, pad_if_needed=True, fill=0),
        RandomColorScale(*p["color"]),
        v2.RandomHorizontalFlip(float(p["flip"])),
    ]
    return v2.Compose(steps)


def test_transform(dataset: str = "nyu", input_size: tuple[int, int] | None = None) -> v2.Compose:
    """The deterministic test path: one centre crop to ``input_size`` at scale 1 (paper §3.4, last line).

    Introduced in Chapter 5. No randomness: the same sample always gives the same output.
    """
    size = tuple(input_size) if input_size is not None else INPUT_SIZE[_family(dataset)]
    return v2.Compose([v2.CenterCrop(size)])


test_transform.__test__ = False  # type: ignore[attr-defined]  (not a pytest test)
