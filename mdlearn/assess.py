"""A trained network on a test set, at the ground truth's own resolution, under a named protocol (Chapter 9).

The paper (§4.3): "we compare [...] on the intersection of their regions, and upsample
predictions to the full original input resolution using nearest-neighbor". Here, for an NYU-layout
test set:

1. each test image goes through the recipe's own test path (resized to the cache size, centre
   crop to the network input: :func:`mdlearn.recipes.training_data` does the same);
2. the network predicts log depth on its output grid; every output unit covers the
   ``jump x jump`` block of input pixels around the pixel it is centred on
   (:meth:`mdlearn.models.DepthNet.output_grid`);
3. every full-resolution pixel whose centre falls in a unit's block gets that unit's depth
   (nearest neighbour); the union of the blocks is the **network region**, and pixels outside it
   have no prediction;
4. the protocol (:mod:`mdlearn.evaluation`) evaluates on its crop **intersected with** the network
   region. The fraction of the network region inside the crop is reported (the paper's footnote 3
   gives 86 % for NYU).

A test set rendered at another size than the protocol's crop (the smaller synthetic worlds) is
evaluated with the crop's fractions instead: the protocol is renamed ``<name>@HxW`` and its card
says so.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import MdlearnError, UsageError

__all__ = ["NetworkEval", "unit_blocks_to_full", "protocol_for_size", "evaluate_network"]


def unit_blocks_to_full(logd: np.ndarray, rows: np.ndarray, cols: np.ndarray, jump: float,
                        crop_offset: tuple[int, int], resized: tuple[int, int],
                        full: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour upsampling of an output-grid log-depth map to the full-resolution frame.

    Args:
        logd: ``(h, w)`` log depth on the output grid.
        rows, cols: input-pixel row / column of each unit's centre (``(h,)``, ``(w,)``).
        jump: input pixels between neighbouring units (4 for the paper's networks).
        crop_offset: ``(top, left)`` of the network input inside the resized image.
        resized: ``(H', W')`` of the resized image the input was cropped from.
        full: ``(H, W)`` of the ground truth.

    Returns:
        ``depth (H, W)`` float32 metres (0 outside the region) and ``region (H, W)`` bool.
    """
    H, W = full
    (rh, rw), (top, left) = resized, crop_offset

    def nearest(n_full: int, n_resized: int, offset: int, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # full pixel centre -> resized-image coordinate -> input coordinate
        x = (np.arange(n_full) + 0.5) * n_resized / n_full - 0.5 - offset
        idx = np.rint((x - centres[0]) / jump).astype(np.int64)
        inside = (idx >= 0) & (idx < len(centres))
        idx = np.clip(idx, 0, len(centres) - 1)
        inside &= np.abs(x - centres[idx]) <= jump / 2
        return idx, inside

    iy, oky = nearest(H, rh, top, rows.astype(np.float64))
    ix, okx = nearest(W, rw, left, cols.astype(np.float64))
    region = oky[:, None] & okx[None, :]
    depth = np.exp(logd[np.ix_(iy, ix)]).astype(np.float32)
    depth[~region] = 0.0
    return depth, region


def protocol_for_size(name: str, size: tuple[int, int]):
    """The named protocol, or for a ground truth of another size than its pixel crop's, the same
    protocol with the crop as fractions, renamed ``<name>@HxW``."""
    from .data.crops import FractionCrop, PixelCrop
    from .evaluation import get_protocol

    proto = get_protocol(name)
    crop = proto.crop
    if isinstance(crop, PixelCrop) and tuple(crop.image_size) != tuple(size):
        h, w = crop.image_size
        frac = FractionCrop(f"{crop.name}-fractions", crop.top / h, crop.bottom / h, crop.left / w, crop.right / w,
                            source=f"{crop.name} as fractions of {h}x{w}")
        proto = proto.replace(f"{name}@{size[0]}x{size[1]}", crop=frac,
                              reference=f"{name} with its {h}x{w} crop scaled to a {size[0]}x{size[1]} test set")
    return proto


@dataclass
class NetworkEval:
    """The result of :func:`evaluate_network`: the protocol's :class:`~mdlearn.evaluation.EvalResult`
    plus what was evaluated. ``region_in_crop`` is the fraction of the network region's pixels
    inside the protocol's crop (averaged over images)."""

    result: Any
    checkpoint: str
    data: str
    split: str
    scale: str
    ground_truth: str
    region_in_crop: float

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {"protocol": r.protocol.name, "card": r.protocol.card(), "checkpoint": self.checkpoint,
                "data": self.data, "split": self.split, "scale": self.scale, "ground_truth": self.ground_truth,
                "images": r.n_images, "pixels": r.n_pixels, "images_without_ground_truth": r.n_empty,
                "network_region_inside_crop": self.region_in_crop,
                "metrics": {k: float(v) for k, v in r.metrics.items()},
                "confidence_95": {k: list(v) for k, v in r.confidence_intervals(1000, 0.95, seed=0).items()},
                "confidence_method": "percentile bootstrap over test images, 1000 resamples, seed 0"}


@torch.no_grad()
def evaluate_network(checkpoint: str | os.PathLike, data_root: str | os.PathLike, protocol: str = "nyu_paper", *,
                     split: str = "test", scale: str | None = None, device: str | None = None,
                     progress: bool = True) -> NetworkEval:
    """Evaluate a checkpoint on the ``split`` of an NYU-layout dataset under ``protocol`` (Chapter 9).

    The network's input path (cache size, input size) comes from the recipe the checkpoint
    records; ``scale`` defaults to the checkpoint's stage. Images without a valid ground-truth
    pixel in the evaluated region are counted and skipped, never silently.
    """
    from tqdm.auto import tqdm

    from .data.augment import test_transform
    from .data.nyu_dataset import NYUSyncDataset
    from .data.transforms import nyu_paper_input
    from .evaluation import get_protocol
    from .models import _receptive_fields
    from .runtime import default_device
    from .train import model_from_checkpoint, read_checkpoint

    get_protocol(protocol)  # unknown names fail before any work
    state = read_checkpoint(checkpoint)
    recipe = (state.get("meta") or {}).get("recipe")
    if not recipe:
        raise MdlearnError(f"{checkpoint}: records no recipe (trained by an older mdlearn?); cannot rebuild its "
                           "input path")
    if recipe["family"] != "nyu":
        raise UsageError(f"{checkpoint}: a {recipe['family']} network; mdlearn evaluate handles NYU-layout test sets "
                         "so far")
    dev = default_device(device)
    model = model_from_checkpoint(checkpoint, device=dev)
    scale = scale or state["stage"]
    cache_size, input_size = tuple(recipe["cache_size"]), tuple(recipe["input_size"])
    resize, crop = nyu_paper_input(cache_size), test_transform("nyu", input_size)
    ds = NYUSyncDataset(data_root, split)
    rows, cols = (t.numpy() for t in model.output_grid())
    jump = float(_receptive_fields(model.config)["fine.conv4"][1])
    top = int(round((cache_size[0] - input_size[0]) / 2.0))  # torchvision's centre crop rounding
    left = int(round((cache_size[1] - input_size[1]) / 2.0))
    if len(ds) == 0:
        raise MdlearnError(f"{data_root}: the {split} split has no images")
    proto = protocol_for_size(protocol, tuple(ds[0]["depth"].shape[-2:]))
    gt_kinds: set[str] = set()
    fractions: list[float] = []

    def triples():
        for i in tqdm(range(len(ds)), desc=f"evaluate {Path(data_root).name}/{split}", unit="image",
                      disable=not progress):
            sample = ds[i]
            x = crop(resize(sample))["image"][None].to(dev).as_subclass(torch.Tensor)
            logd = model(x, scale=scale)[0, 0].float().cpu().numpy()
            gt = sample["depth"][0].numpy()
            depth, region = unit_blocks_to_full(logd, rows, cols, jump, (top, left), cache_size, gt.shape)
            in_crop = proto.crop.mask(*gt.shape) if proto.crop is not None else np.ones_like(region)
            fractions.append(float((region & in_crop).sum() / max(region.sum(), 1)))
            gt_kinds.add(str(sample.get("gt", "")))
            yield depth, gt, region

    if proto.alignment != "none" and proto.alignment_scope == "set":
        items = list(triples())  # one scale for the whole set: the inputs are read twice
        result = proto.evaluate([t[0] for t in items], [t[1] for t in items], [t[2] for t in items],
                                allow_empty=True)
    else:  # streamed: one image in memory at a time (654 NYU frames at 640x480 would take GBs)
        a, b, c = itertools.tee(triples(), 3)
        result = proto.evaluate((t[0] for t in a), (t[1] for t in b), (t[2] for t in c), allow_empty=True)
    return NetworkEval(result, str(checkpoint), str(Path(data_root).resolve()), split, scale,
                       ",".join(sorted(gt_kinds)), float(np.mean(fractions)))
