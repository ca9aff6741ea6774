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

KITTI (a ``prepare kitti-raw`` output) takes the same steps after
:class:`~mdlearn.data.transforms.KittiPaperCrop`: the full-resolution pixel is mapped through the
crop box, then the resize. The results file carries the ground-truth variant and counts the
listed frames without a depth map; the card's ground-truth line always names the data evaluated,
never the protocol's reference data. Under ``torchrun`` each process evaluates a contiguous
:func:`shard` of the test set and the statistics are merged in image order, so the numbers equal a
one-process evaluation exactly.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import MdlearnError, UsageError

__all__ = ["NetworkEval", "predict_in_region", "unit_blocks_to_full", "protocol_for_size", "evaluate_network", "shard"]


@torch.no_grad()
def predict_in_region(model, dataset, scale: str = "fine", batch_size: int = 16,
                      device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Depth ``(N, H, W)`` float32 metres at the input size, and the rows the output covers
    ``(H, W)`` bool (Chapters 6-7, for both families).

    Like :func:`mdlearn.recipes.predict` (bilinear upsampling in log depth, then ``exp``), but
    into the input rows the output grid stands for: all of them for NYU networks (the result
    equals ``recipes.predict`` exactly), the bottom ``fine_rows`` rows for KITTI ones, whose
    output units are centred there (:meth:`~mdlearn.models.DepthNet.output_grid`). Pixels
    outside the region are 0 (no prediction).
    """
    import torch.nn.functional as F

    from .runtime import default_device

    dev = default_device(device)
    model = model.to(dev).eval()
    w, h = model.config.input_size
    top = h - model.config.fine_rows
    out = []
    for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False):
        logd = model(batch["image"].to(dev), scale=scale).float()
        logd = F.interpolate(logd, size=(h - top, w), mode="bilinear", align_corners=False)
        depth = torch.zeros(logd.shape[0], h, w)
        depth[:, top:] = logd.exp()[:, 0].cpu()
        out.append(depth.numpy())
    region = np.zeros((h, w), bool)
    region[top:] = True
    return (np.concatenate(out) if out else np.zeros((0, h, w), np.float32)), region


def unit_blocks_to_full(logd: np.ndarray, rows: np.ndarray, cols: np.ndarray, jump: float,
                        crop_offset: tuple[int, int], resized: tuple[int, int],
                        full: tuple[int, int], source_box: tuple[int, int, int, int] | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour upsampling of an output-grid log-depth map to the full-resolution frame.

    Args:
        logd: ``(h, w)`` log depth on the output grid.
        rows, cols: input-pixel row / column of each unit's centre (``(h,)``, ``(w,)``).
        jump: input pixels between neighbouring units (4 for the paper's networks).
        crop_offset: ``(top, left)`` of the network input inside the resized image.
        resized: ``(H', W')`` of the resized image the input was cropped from.
        full: ``(H, W)`` of the ground truth.
        source_box: ``(top, left, height, width)`` of the part of the full frame that was resized
            (KITTI: :class:`~mdlearn.data.transforms.KittiPaperCrop`'s box); default the whole frame.

    Returns:
        ``depth (H, W)`` float32 metres (0 outside the region) and ``region (H, W)`` bool.
    """
    H, W = full
    (rh, rw), (top, left) = resized, crop_offset
    box_top, box_left, box_h, box_w = source_box if source_box is not None else (0, 0, H, W)

    def nearest(n_full: int, start: int, n_box: int, n_resized: int, offset: int,
                centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # full pixel centre -> resized-image coordinate -> input coordinate
        x = (np.arange(n_full) - start + 0.5) * n_resized / n_box - 0.5 - offset
        idx = np.rint((x - centres[0]) / jump).astype(np.int64)
        inside = (idx >= 0) & (idx < len(centres))
        idx = np.clip(idx, 0, len(centres) - 1)
        inside &= np.abs(x - centres[idx]) <= jump / 2
        return idx, inside

    iy, oky = nearest(H, box_top, box_h, rh, top, rows.astype(np.float64))
    ix, okx = nearest(W, box_left, box_w, rw, left, cols.astype(np.float64))
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


def shard(n: int, rank: int, world: int) -> range:
    """The test images process ``rank`` of ``world`` evaluates: a contiguous block of ``range(n)``.

    The blocks of all processes are disjoint and cover ``range(n)`` exactly once (no padding
    duplicates, unlike ``DistributedSampler``); in rank order they are the single-process order,
    so merged statistics equal a one-process evaluation exactly (Chapter 9).

    >>> [list(shard(5, r, 2)) for r in range(2)]
    [[0, 1], [2, 3, 4]]
    """
    if not 0 <= rank < world:
        raise UsageError(f"need 0 <= rank < world, got rank {rank} of {world}")
    return range(rank * n // world, (rank + 1) * n // world)


@dataclass
class NetworkEval:
    """The result of :func:`evaluate_network`: the protocol's :class:`~mdlearn.evaluation.EvalResult`
    plus what was evaluated. ``region_in_crop`` is the fraction of the network region's pixels
    inside the protocol's crop (averaged over images); ``missing_ground_truth`` counts listed
    images without a ground-truth file (KITTI frames the variant has no map for), which are not
    among ``result``'s images."""

    result: Any
    checkpoint: str
    data: str
    split: str
    scale: str
    ground_truth: str
    region_in_crop: float
    missing_ground_truth: int = 0
    processes: int = 1

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {"protocol": r.protocol.name, "card": r.protocol.card(), "checkpoint": self.checkpoint,
                "data": self.data, "split": self.split, "scale": self.scale, "ground_truth": self.ground_truth,
                "images": r.n_images, "pixels": r.n_pixels,
                "images_without_ground_truth": r.n_empty + self.missing_ground_truth,
                "images_without_valid_pixels": r.n_empty,
                "frames_without_ground_truth_file": self.missing_ground_truth,
                "network_region_inside_crop": self.region_in_crop, "processes": self.processes,
                "metrics": {k: float(v) for k, v in r.metrics.items()},
                "confidence_95": {k: list(v) for k, v in r.confidence_intervals(1000, 0.95, seed=0).items()},
                "confidence_method": "percentile bootstrap over test images, 1000 resamples, seed 0"}


def _protocol_family(name: str) -> str:
    return "kitti" if name.split("@")[0].startswith("kitti") else "nyu"


def _test_set(family: str, data_root: Path, split: str, cache_size: tuple[int, int]):
    """The test set at full resolution, the resize to the cache size, its describer of a sample's
    resized box, and the card's ground-truth line."""
    if family == "kitti":
        from .data.kitti_dataset import prepared_dataset
        from .data.transforms import KittiPaperCrop, kitti_paper_input

        ds = prepared_dataset(data_root, split)
        box = KittiPaperCrop().crop_box
        listed = ds.raw_dir / "splits" / f"{split}_files.txt"
        line = (f"{ds.variant} (prepare kitti-raw) in {Path(data_root).resolve()}, {len(ds) + ds.missing} images of "
                f"{listed}, {ds.missing} of them without a depth map")
        return ds, kitti_paper_input(size=cache_size), box, line, ds.missing
    from .data.nyu_dataset import NYUSyncDataset
    from .data.transforms import nyu_paper_input

    ds = NYUSyncDataset(data_root, split)
    line = f"the {len(ds)} images of {ds.list_file} ({{gt}} depth)"
    return ds, nyu_paper_input(cache_size), None, line, 0


@torch.no_grad()
def evaluate_network(checkpoint: str | os.PathLike, data_root: str | os.PathLike, protocol: str = "nyu_paper", *,
                     split: str = "test", scale: str | None = None, device: str | None = None,
                     progress: bool = True) -> NetworkEval:
    """Evaluate a checkpoint on the ``split`` of a test set under ``protocol`` (Chapter 9).

    ``data_root`` is an NYU sync-layout folder for NYU networks, a ``prepare kitti-raw`` output for
    KITTI ones (:func:`mdlearn.data.kitti_dataset.prepared_dataset`; KITTI images are cut by
    :class:`~mdlearn.data.transforms.KittiPaperCrop`, and the prediction is mapped back through that
    box). The network's input path (cache size, input size) comes from the recipe the checkpoint
    records; ``scale`` defaults to the checkpoint's stage. Images without a valid ground-truth
    pixel in the evaluated region are counted and skipped, never silently, as are KITTI frames
    without a depth map. The protocol card's ground-truth line names the data evaluated.

    Under ``torchrun`` (an initialised process group) each process evaluates its :func:`shard`
    of the images and the per-image statistics are merged in image order: every process returns
    the one-process result exactly.

    Raises:
        UsageError: an unknown protocol; a checkpoint of another architecture, or of the other
            dataset than the protocol or the data folder; a data folder in the wrong layout.
        MdlearnError: an unreadable checkpoint; a split without images.
    """
    from tqdm.auto import tqdm

    from .data.augment import test_transform
    from .evaluation import get_protocol
    from .models import _receptive_fields
    from .runs import check_data_folder
    from .runtime import default_device
    from .train import distributed_context, model_from_checkpoint, read_checkpoint

    get_protocol(protocol)  # unknown names fail before any work
    state = read_checkpoint(checkpoint)
    arch = state.get("arch") if isinstance(state.get("arch"), dict) else {}
    if arch.get("name") != "eigen2014":
        raise UsageError(f"{checkpoint}: a checkpoint of another architecture ({arch.get('name')!r}); mdlearn "
                         "evaluate takes the eigen2014 networks mdlearn train writes")
    recipe = (state.get("meta") or {}).get("recipe")
    if not recipe:
        raise MdlearnError(f"{checkpoint}: records no recipe (trained by an older mdlearn?); cannot rebuild its "
                           "input path")
    family = recipe["family"]
    if family not in ("nyu", "kitti") or arch.get("dataset") != family:
        raise UsageError(f"{checkpoint}: recipe family {family!r} and architecture {arch.get('dataset')!r} do not "
                         "name one of the datasets nyu, kitti")
    network = {"nyu": "an NYU network", "kitti": "a KITTI network"}[family]
    if _protocol_family(protocol) != family:
        raise UsageError(f"{checkpoint}: {network}, but protocol {protocol} is for "
                         f"{_protocol_family(protocol).upper()} test sets")
    try:
        check_data_folder(family, data_root, split)
    except UsageError as e:
        raise UsageError(f"{checkpoint} is {network}; --data {e}") from None
    rank, world = distributed_context()
    dev = default_device(device)
    model = model_from_checkpoint(checkpoint, device=dev)
    scale = scale or state["stage"]
    cache_size, input_size = tuple(recipe["cache_size"]), tuple(recipe["input_size"])
    ds, resize, box_of, gt_line, missing = _test_set(family, Path(data_root), split, cache_size)
    crop = test_transform(family, input_size)
    rows, cols = (t.numpy() for t in model.output_grid())
    jump = float(_receptive_fields(model.config)["fine.conv4"][1])
    top = int(round((cache_size[0] - input_size[0]) / 2.0))  # torchvision's centre crop rounding
    left = int(round((cache_size[1] - input_size[1]) / 2.0))
    if len(ds) == 0:
        raise MdlearnError(f"{data_root}: the {split} split has no images")
    proto = protocol_for_size(protocol, tuple(ds[0]["depth"].shape[-2:]))
    set_scope = proto.alignment != "none" and proto.alignment_scope == "set"
    if set_scope and world > 1:
        raise UsageError(f"protocol {protocol} fits one scale over the whole set; evaluate it in one process")
    gt_kinds: set[str] = set()
    fractions: list[float] = []
    mine = shard(len(ds), rank, world)

    def triples():
        for i in tqdm(mine, desc=f"evaluate {Path(data_root).name}/{split}", unit="image",
                      disable=not progress or rank != 0):
            sample = ds[i]
            x = crop(resize(sample))["image"][None].to(dev).as_subclass(torch.Tensor)
            logd = model(x, scale=scale)[0, 0].float().cpu().numpy()
            gt = sample["depth"][0].numpy()
            source_box = box_of(*gt.shape) if box_of is not None else None
            depth, region = unit_blocks_to_full(logd, rows, cols, jump, (top, left), cache_size, gt.shape,
                                                source_box=source_box)
            in_crop = proto.crop.mask(*gt.shape) if proto.crop is not None else np.ones_like(region)
            fractions.append(float((region & in_crop).sum() / max(region.sum(), 1)))
            gt_kinds.add(str(sample.get("gt", "")))
            yield depth, gt, region

    acc = proto.accumulator()
    acc.allow_empty = True
    scales: list[float] = []
    if set_scope:
        items = list(triples())  # one scale for the whole set: the inputs are read twice
        fixed = proto.set_scale([t[0] for t in items], [t[1] for t in items], [t[2] for t in items])
    else:  # streamed: one image in memory at a time (654 NYU frames at 640x480 would take GBs)
        items, fixed = triples(), None
    for depth, gt, region in items:
        s = proto.update(acc, depth, gt, region, scale=fixed)
        if s is not None:
            scales.append(s)
    if world > 1:  # every process's statistics, merged in image order (the shards are contiguous, in rank order)
        parts: list[Any] = [None] * world
        torch.distributed.all_gather_object(parts, (acc, scales, fractions, sorted(gt_kinds)))
        acc, scales, fractions, gt_kinds = proto.accumulator(), [], [], set()
        acc.allow_empty = True
        for part_acc, part_scales, part_fractions, part_kinds in parts:
            acc.add_statistics(part_acc)
            scales += part_scales
            fractions += part_fractions
            gt_kinds.update(part_kinds)
    kinds = ",".join(sorted(gt_kinds))
    proto = dataclasses.replace(proto, ground_truth=gt_line.replace("{gt}", kinds))
    result = proto.result(acc, scales)
    return NetworkEval(result, str(checkpoint), str(Path(data_root).resolve()), split, scale, kinds,
                       float(np.mean(fractions)), missing, world)
