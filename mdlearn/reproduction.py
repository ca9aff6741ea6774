"""The paper's Tables 1 and 2: its published numbers, this book's numbers beside them (Chapter 9).

Introduced in Chapter 9 and used by ``mdlearn reproduce``. Three parts:

* **The paper's numbers** (:data:`PAPER_TABLE1`, :data:`PAPER_TABLE2`): typed from the tables of
  Eigen, Puhrsch & Fergus 2014 (arXiv:1406.2283v1), Table 1 (NYU Depth v2) and Table 2 (KITTI).
  They are the paper's, never ours; ``None`` where the paper prints a dash.
  :data:`LATER_METHODS` lists what later methods reached on the same benchmarks, each with the
  source it was read from (``../shared/reference/eigen2014-facts.md``, Section 6).
* **Our numbers, at the ground truth's resolution**: :func:`full_resolution_predictions` runs a
  trained checkpoint over a test set exactly as :func:`mdlearn.assess.evaluate_network` does (the
  recipe's test path, nearest-neighbour unit blocks, the network region) and yields the Mean
  baseline, Coarse and Coarse+Fine predictions of every image together, so that
  :func:`evaluate_methods` can score all of them under several protocols in one pass (Chapter
  9 compares protocols on the *same* predictions).
* **The comparison** (:func:`comparison_table`): Table 1 / Table 2 layout, the paper's published
  columns beside ours with 95 % bootstrap intervals over test images and the difference to the
  paper per metric. Numbers on a synthetic world carry a label saying they are not comparable
  with the paper's.

Every result keeps its per-image sufficient statistics
(:meth:`mdlearn.metrics.MetricAccumulator.statistics`), so a saved table can be recomputed from
its file exactly (:func:`read_results`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import FormatError, MdlearnError, UsageError
from .metrics import HIGHER_IS_BETTER, MetricAccumulator

__all__ = ["PAPER_SOURCE", "TABLE_METRICS", "PAPER_TABLE1", "PAPER_TABLE2", "PAPER_TABLES", "LATER_METHODS",
           "METHODS", "recipe_data_root", "TestPrediction", "MethodResult", "mean_log_at_output", "fill_unseen",
           "full_resolution_predictions", "evaluate_methods", "street_ground_truths", "log_mean_depth",
           "STREET_GROUND_TRUTHS", "results_to_json", "read_results", "comparison_table", "RESULTS_FORMAT"]

#: Where :data:`PAPER_TABLE1` and :data:`PAPER_TABLE2` come from.
PAPER_SOURCE = "Eigen, Puhrsch & Fergus 2014, arXiv:1406.2283v1, Table 1 (NYU Depth v2) and Table 2 (KITTI)"
#: The rows of Tables 1 and 2, in the paper's order.
TABLE_METRICS = ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "rmse_log_si")
#: The paper's row labels.
METRIC_LABELS = {"delta1": "threshold δ < 1.25", "delta2": "threshold δ < 1.25²", "delta3": "threshold δ < 1.25³",
                 "abs_rel": "abs relative difference", "sq_rel": "sqr relative difference",
                 "rmse": "RMSE (linear)", "rmse_log": "RMSE (log)", "rmse_log_si": "RMSE (log, scale inv.)"}
#: Our three columns, as the paper names them.
METHODS = ("Mean", "Coarse", "Coarse+Fine")


def _column(*values: float | None) -> dict[str, float | None]:
    return dict(zip(TABLE_METRICS, values, strict=True))


#: Table 1 of the paper (NYU Depth v2, 654 test images), column by column; None = a dash.
PAPER_TABLE1: dict[str, dict[str, float | None]] = {
    "Mean": _column(0.418, 0.711, 0.874, 0.408, 0.581, 1.244, 0.430, 0.304),
    "Make3D": _column(0.447, 0.745, 0.897, 0.349, 0.492, 1.214, 0.409, 0.325),
    "Ladicky&al": _column(0.542, 0.829, 0.940, None, None, None, None, None),
    "Karsch&al": _column(None, None, None, 0.350, None, 1.2, None, None),
    "Coarse": _column(0.618, 0.891, 0.969, 0.228, 0.223, 0.871, 0.283, 0.221),
    "Coarse+Fine": _column(0.611, 0.887, 0.971, 0.215, 0.212, 0.907, 0.285, 0.219),
}
#: Table 2 of the paper (KITTI, the Eigen test split), column by column.
PAPER_TABLE2: dict[str, dict[str, float | None]] = {
    "Mean": _column(0.556, 0.752, 0.870, 0.412, 5.712, 9.635, 0.444, 0.359),
    "Make3D": _column(0.601, 0.820, 0.926, 0.280, 3.012, 8.734, 0.361, 0.327),
    "Coarse": _column(0.679, 0.897, 0.967, 0.194, 1.531, 7.216, 0.273, 0.248),
    "Coarse+Fine": _column(0.692, 0.899, 0.967, 0.190, 1.515, 7.156, 0.270, 0.246),
}
#: Which table each dataset of ``mdlearn reproduce`` is compared with.
PAPER_TABLES = {"nyu": ("Table 1", PAPER_TABLE1), "kitti": ("Table 2", PAPER_TABLE2)}

#: What later methods reached (NYU: the 654 test images; KITTI: the Eigen split, under their own
#: protocols, which differ from the paper's: see the facts file). ``dagger``: a third-party
#: transcription the facts file asks to check before citing. None = not reported by the source.
LATER_METHODS: tuple[dict[str, Any], ...] = (
    {"method": "Eigen 2014, cited in 2015", "nyu": (0.614, 0.214, 0.877), "kitti": None,
     "source": "Eigen & Fergus 2015 (ICCV), Table 1", "dagger": False},
    {"method": "Eigen & Fergus 2015 (VGG)", "nyu": (0.769, 0.158, 0.641), "kitti": None,
     "source": "Eigen & Fergus 2015 (ICCV), Table 1", "dagger": False},
    {"method": "Laina 2016", "nyu": (None, 0.127, 0.573), "kitti": None,
     "source": "irolaina/FCRN-DepthPrediction:README.md", "dagger": False},
    {"method": "DORN", "nyu": (0.828, 0.115, 0.509), "kitti": None,
     "source": "liviniuk/DORN_depth_estimation_Pytorch:README.md (commit 64c4977)", "dagger": False},
    {"method": "BTS (DenseNet-161)", "nyu": (0.885, 0.110, 0.392), "kitti": (0.955, 0.060, 2.798),
     "source": "cleinc/bts:README.md", "dagger": False},
    {"method": "AdaBins", "nyu": (0.903, 0.103, 0.364), "kitti": (0.964, 0.058, 2.36),
     "source": "zhyever/Monocular-Depth-Estimation-Toolbox:configs/adabins/README.md (delta1 third-party)",
     "dagger": True},
    {"method": "ZoeDepth", "nyu": (0.951, 0.077, 0.282), "kitti": (0.971, 0.054, 2.281),
     "source": "LiheYoung/Depth-Anything:metric_depth/README.md", "dagger": False},
    {"method": "Depth Anything V1", "nyu": (0.984, 0.056, 0.206), "kitti": (0.982, 0.046, 1.896),
     "source": "LiheYoung/Depth-Anything:metric_depth/README.md", "dagger": False},
)
#: The three metrics of :data:`LATER_METHODS`' tuples.
LATER_METRICS = ("delta1", "abs_rel", "rmse")

#: The ``format`` entry of a results file (:func:`results_to_json`).
RESULTS_FORMAT = "mdlearn-table-results"


# ------------------------------------------------------------------------- predictions


@dataclass
class TestPrediction:
    """One test image with every method's prediction at the ground truth's resolution.

    ``gt`` ``(H, W)`` float32 metres (0 = none), ``region`` ``(H, W)`` bool (the pixels a network
    output unit covers), ``preds`` method name -> ``(H, W)`` float32 metres (0 outside the
    region), ``image`` the ``(3, H, W)`` input in [0, 1], ``name`` the RGB file.
    """

    name: str
    image: torch.Tensor
    gt: np.ndarray
    region: np.ndarray
    preds: dict[str, np.ndarray]


def recipe_data_root(recipe, data_root: str | os.PathLike | None = None) -> Path:
    """The folder a recipe trains and tests on (Chapter 9): ``data_root`` when given, else its
    named dataset, generated if missing (KITTI: the ``prepare kitti-raw`` output of the street
    world, prepared if missing), as :func:`mdlearn.recipes.trained_checkpoint` resolves it."""
    from . import recipes

    return Path(recipes._data_root(recipe, data_root, progress=False))


def mean_log_at_output(recipe, model, data_root: str | os.PathLike | None = None) -> np.ndarray:
    """The **Mean** baseline as a network would output it: the training set's mean log-depth image
    (:func:`mdlearn.recipes.mean_log_depth`, un-augmented centre crops) at the output units' pixels
    (:meth:`~mdlearn.models.DepthNet.output_grid`), ``(h, w)`` log metres (Chapter 9).

    Upsampled like the networks' outputs, it is evaluated on exactly their pixels.
    """
    from . import recipes

    mean = recipes.mean_log_depth(recipes.training_data(recipe, "train", data_root, augment=False, progress=False))
    rows, cols = (t.numpy() for t in model.output_grid())
    return np.log(fill_unseen(mean)[np.ix_(rows, cols)]).astype(np.float32)


def fill_unseen(mean: np.ndarray) -> np.ndarray:
    """A mean depth image with its never-valid pixels (0: no training view had depth there, as
    at the borders of Kinect depth) set to the geometric mean of the other pixels, so that the
    Mean baseline predicts a positive depth everywhere (Chapter 6 does the same). A copy."""
    out = np.array(mean, dtype=np.float32)
    seen = out > 0
    if not seen.any():
        raise UsageError("the mean depth image has no valid pixel: no training view has depth")
    out[~seen] = float(np.exp(np.log(out[seen].astype(np.float64)).mean()))
    return out


@torch.no_grad()
def full_resolution_predictions(checkpoint: str | os.PathLike, data_root: str | os.PathLike, *,
                                split: str = "test", mean_log: np.ndarray | None = None,
                                device: str | None = None, progress: bool = True) -> Iterator[TestPrediction]:
    """Mean, Coarse and Coarse+Fine for every image of a test ``split`` (Chapter 9).

    ``data_root`` is an NYU-layout folder for an NYU network, a ``prepare kitti-raw`` output for a
    KITTI one (Table 2). The same path as :func:`mdlearn.assess.evaluate_network` (which scores
    one scale of one checkpoint): each image is resized to the recipe's cache size (KITTI: after
    the paper's crop box) and centre-cropped to its input; each output unit's depth fills the block
    of full-resolution pixels around its pixel. ``checkpoint`` is a fine-stage checkpoint (its
    frozen coarse network gives Coarse); ``mean_log`` (:func:`mean_log_at_output`) adds the
    ``"Mean"`` prediction. KITTI frames without a depth map are skipped (the test set counts
    them). Streams one image at a time.
    """
    from tqdm.auto import tqdm

    from .assess import _test_set, unit_blocks_to_full
    from .data.augment import test_transform
    from .models import _receptive_fields
    from .runtime import default_device
    from .train import model_from_checkpoint, read_checkpoint

    state = read_checkpoint(checkpoint)
    recipe = (state.get("meta") or {}).get("recipe")
    if not recipe:
        raise MdlearnError(f"{checkpoint}: records no recipe; cannot rebuild its input path")
    family = recipe["family"]
    if family not in ("nyu", "kitti") or state["stage"] != "fine":
        raise UsageError(f"{checkpoint}: expected a fine-stage NYU- or KITTI-family checkpoint, got a "
                         f"{state['stage']} {family} one")
    dev = default_device(device)
    model = model_from_checkpoint(checkpoint, device=dev)
    cache_size, input_size = tuple(recipe["cache_size"]), tuple(recipe["input_size"])
    ds, resize, box_of, _, _ = _test_set(family, Path(data_root), split, cache_size)
    crop = test_transform(family, input_size)
    rows, cols = (t.numpy() for t in model.output_grid())
    jump = float(_receptive_fields(model.config)["fine.conv4"][1])
    top = int(round((cache_size[0] - input_size[0]) / 2.0))  # as evaluate_network: torchvision's rounding
    left = int(round((cache_size[1] - input_size[1]) / 2.0))
    for i in tqdm(range(len(ds)), desc=f"predict {Path(data_root).name}/{split}", unit="image",
                  disable=not progress):
        sample = ds[i]
        x = crop(resize(sample))["image"][None].to(dev).as_subclass(torch.Tensor)
        logs = {"Coarse": model(x, scale="coarse")[0, 0], "Coarse+Fine": model(x, scale="fine")[0, 0]}
        logs = {k: v.float().cpu().numpy() for k, v in logs.items()}
        if mean_log is not None:
            logs = {"Mean": np.asarray(mean_log, np.float32), **logs}
        gt = sample["depth"][0].numpy()
        box = box_of(*gt.shape) if box_of is not None else None
        preds, region = {}, None
        for name, logd in logs.items():
            preds[name], region = unit_blocks_to_full(logd, rows, cols, jump, (top, left), cache_size, gt.shape,
                                                      source_box=box)
        yield TestPrediction(str(sample["name"]), sample["image"].as_subclass(torch.Tensor), gt, region, preds)


#: The ground truths :func:`street_ground_truths` computes: ``"<variant>/<rule>"``.
STREET_GROUND_TRUTHS = ("camz/time", "camz/nearest", "velx/time", "velx/nearest")


def street_ground_truths(drive, frame: int, camera: int = 2) -> dict[str, np.ndarray]:
    """The four Velodyne ground truths of one KITTI-layout frame (Chapter 9): camera z-depth or
    Velodyne x (:data:`mdlearn.data.kitti_depth.GT_VARIANTS`) with the paper's time rule or the
    public nearest rule (:data:`~mdlearn.data.kitti_depth.CONFLICT_RULES`), each ``(H, W)``
    float32 metres, 0 = no point. ``drive`` is a :class:`mdlearn.data.kitti.RawDrive`."""
    from .data import kitti
    from .data.kitti_depth import sparse_depth

    points = kitti.read_velodyne(drive.velodyne_path(frame))
    dt = (drive.timestamps(f"image_0{camera}")[frame] - drive.timestamps("velodyne_points")[frame]) / 1e9
    calib = drive.calibration()
    out = {}
    for kind in STREET_GROUND_TRUTHS:
        variant, rule = kind.split("/")
        out[kind] = sparse_depth(points, calib, camera, variant=variant, rule=rule, image_dt=dt)
    return out


def log_mean_depth(maps: Iterable[np.ndarray]) -> np.ndarray:
    """The **Mean** baseline of sparse or dense depth maps ``(H, W)`` (metres, 0 = none): per pixel
    the geometric mean over the maps where it is valid (:func:`mdlearn.recipes.mean_log_depth`),
    pixels valid in none filled by :func:`fill_unseen`, so the map is positive everywhere.
    Chapter 9."""
    from .recipes import mean_log_depth

    maps = [np.asarray(m, np.float32) for m in maps]
    return fill_unseen(mean_log_depth([{"depth": torch.from_numpy(m)[None]} for m in maps]))


# ---------------------------------------------------------------------------------- scoring


@dataclass
class MethodResult:
    """One method under one protocol: per-image statistics and everything computed from them.

    ``statistics`` ``(n_images, 11)`` (:meth:`~mdlearn.metrics.MetricAccumulator.statistics`),
    ``images`` the names of those images, ``empty`` images without a valid pixel (skipped)."""

    protocol: str
    card: str
    aggregation: str
    images: list[str]
    statistics: np.ndarray
    empty: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def accumulator(self) -> MetricAccumulator:
        return MetricAccumulator.from_statistics(self.statistics, self.aggregation)

    @property
    def metrics(self) -> dict[str, float]:
        """The protocol's metrics of the set."""
        if "metrics" not in self._cache:
            self._cache["metrics"] = self.accumulator().compute()
        return self._cache["metrics"]

    def per_image(self) -> dict[str, np.ndarray]:
        """Each metric of each image, ``{name: (n_images,)}``."""
        return self.accumulator().per_image()

    def confidence(self, n_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, tuple[float, float]]:
        """Percentile-bootstrap intervals over test images (:meth:`MetricAccumulator.bootstrap`)."""
        key = f"ci-{n_resamples}-{level}-{seed}"
        if key not in self._cache:
            self._cache[key] = self.accumulator().bootstrap(n_resamples, level, seed)
        return self._cache[key]


def evaluate_methods(predictions: Iterable[TestPrediction], protocols: Mapping[str, Any],
                     masks: Mapping[str, Any] | None = None) -> dict[str, dict[str, MethodResult]]:
    """Score every method of every :class:`TestPrediction` under every protocol, in one pass.

    Args:
        predictions: e.g. :func:`full_resolution_predictions`.
        protocols: label -> :class:`~mdlearn.evaluation.EvalProtocol` (per-image alignment only:
            a set-level scale would need the set twice).
        masks: label -> ``f(TestPrediction) -> (H, W) bool`` restricting that protocol further
            (e.g. imitating a raw ground truth's holes). Every protocol is restricted to the
            network region.

    Returns:
        ``{protocol label: {method: MethodResult}}``. Chapter 9.
    """
    masks = dict(masks or {})
    for label, proto in protocols.items():
        if proto.alignment != "none" and proto.alignment_scope == "set":
            raise UsageError(f"protocol {label!r} fits one scale per set; evaluate_methods streams images")
    unknown = set(masks) - set(protocols)
    if unknown:
        raise UsageError(f"masks for unknown protocols: {', '.join(sorted(unknown))}")
    accs: dict[tuple[str, str], MetricAccumulator] = {}
    names: dict[tuple[str, str], list[str]] = {}
    for item in predictions:
        for label, proto in protocols.items():
            where = item.region & masks[label](item) if label in masks else item.region
            for method, pred in item.preds.items():
                key = (label, method)
                acc = accs.setdefault(key, MetricAccumulator(proto.aggregation, allow_empty=True))
                y, ys, _ = proto.prepare(pred, item.gt, where)
                if y.size == 0:
                    acc.n_empty += 1
                    continue
                acc.add_pixels(y, ys)
                names.setdefault(key, []).append(item.name)
    if not accs:
        raise UsageError("no test images to evaluate")
    out: dict[str, dict[str, MethodResult]] = {}
    for (label, method), acc in accs.items():
        proto = protocols[label]
        out.setdefault(label, {})[method] = MethodResult(proto.name, proto.card(), proto.aggregation,
                                                         names.get((label, method), []), acc.statistics(),
                                                         acc.n_empty)
    return out


# -------------------------------------------------------------------------------- files


def results_to_json(results: Mapping[str, MethodResult], *, dataset: str, synthetic: bool,
                    n_resamples: int = 1000, seed: int = 0, **extra: Any) -> dict[str, Any]:
    """A results file's content (plain JSON): per method the metrics, the 95 % bootstrap interval
    over test images and the per-image statistics they were computed from (Chapter 9)."""
    methods = {}
    for name, r in results.items():
        methods[name] = {"protocol": r.protocol, "card": r.card, "aggregation": r.aggregation,
                         "metrics": r.metrics, "confidence_95": {k: list(v) for k, v in
                                                                 r.confidence(n_resamples, 0.95, seed).items()},
                         "images": list(r.images), "images_without_pixels": r.empty,
                         "statistics": r.statistics.tolist()}
    return {"format": RESULTS_FORMAT, "version": 1, "dataset": dataset, "synthetic": bool(synthetic),
            "confidence_method": f"percentile bootstrap over test images, {n_resamples} resamples, seed {seed}",
            "bootstrap": {"n_resamples": n_resamples, "seed": seed}, "methods": methods, **extra}


def read_results(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, MethodResult]]:
    """Read a results file: its JSON and each method's :class:`MethodResult` rebuilt from the
    stored per-image statistics (so its numbers can be recomputed, not only read)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise FormatError(f"{path}: not a readable results file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise FormatError(f"{path}: not an mdlearn results file (format {RESULTS_FORMAT!r} expected)")
    out = {}
    for name, m in data["methods"].items():
        out[name] = MethodResult(m["protocol"], m["card"], m["aggregation"], list(m["images"]),
                                 np.asarray(m["statistics"], np.float64), int(m["images_without_pixels"]))
    return data, out


# ------------------------------------------------------------------------------- tables


def _fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def comparison_table(ours: Mapping[str, MethodResult], *, table: str = "nyu", synthetic: bool,
                     data_label: str, n_resamples: int = 1000, seed: int = 0) -> tuple[str, dict[str, Any]]:
    """The paper's Table 1 (``table="nyu"``) or Table 2 (``"kitti"``) with our columns beside it.

    Rows are the paper's eight metrics. Columns: every published column of the paper's table,
    then ours (:data:`METHODS` present in ``ours``) with the 95 % bootstrap interval over test
    images, then ours minus the paper's for each of our columns the paper also has. With
    ``synthetic`` the table is headed by a label saying the numbers are not comparable.

    Returns:
        ``(markdown, json)``: the JSON holds the same numbers (paper's, ours, intervals,
        differences) and where they come from. Chapter 9; ``mdlearn reproduce`` writes both.
    """
    if table not in PAPER_TABLES:
        raise UsageError(f"unknown table {table!r}; known: {', '.join(PAPER_TABLES)}")
    title, paper = PAPER_TABLES[table]
    mine = [m for m in METHODS if m in ours] + [m for m in ours if m not in METHODS]
    ci = {m: ours[m].confidence(n_resamples, 0.95, seed) for m in mine}
    diff = {m: {k: (None if paper[m][k] is None else ours[m].metrics[k] - paper[m][k]) for k in TABLE_METRICS}
            for m in mine if m in paper}
    cards = sorted({ours[m].card for m in mine})
    label = ("**Synthetic data — not comparable with the paper.** Our columns are measured on "
             f"{data_label}, a synthetic world; the paper's columns are on real data. The differences "
             "are shown for completeness only." if synthetic else
             f"Our columns are measured on {data_label}.")
    lines = [f"# {title} of Eigen et al. 2014 beside this book's numbers", "", label, "",
             f"Paper's columns: {PAPER_SOURCE} (typed from the paper). Ours: 95 % percentile-bootstrap "
             f"intervals over test images ({n_resamples} resamples, seed {seed}) in brackets.", ""]
    head = ["metric", "better"] + [f"paper {c}" for c in paper] + [f"ours {m}" for m in mine] \
        + [f"ours − paper, {m}" for m in diff]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in TABLE_METRICS:
        row = [METRIC_LABELS[k], "higher" if HIGHER_IS_BETTER[k] else "lower"]
        row += [_fmt(paper[c][k]) for c in paper]
        row += [f"{_fmt(ours[m].metrics[k])} [{_fmt(ci[m][k][0])}, {_fmt(ci[m][k][1])}]" for m in mine]
        row += ["–" if diff[m][k] is None else f"{diff[m][k]:+.3f}" for m in diff]
        lines.append("| " + " | ".join(row) + " |")
    n_images = {m: len(ours[m].images) for m in mine}
    lines += ["", f"Test images: {', '.join(f'{m} {n}' for m, n in n_images.items())}.", "",
              "Protocol:", "", "```", *cards, "```", ""]
    js = {"table": title, "paper_source": PAPER_SOURCE, "synthetic": bool(synthetic), "data": data_label,
          "label": label.replace("**", ""), "metrics": list(TABLE_METRICS), "paper": paper,
          "ours": {m: dict(ours[m].metrics) for m in mine},
          "confidence_95": {m: {k: list(v) for k, v in ci[m].items()} for m in mine},
          "ours_minus_paper": diff, "images": n_images, "protocol_cards": cards,
          "confidence_method": f"percentile bootstrap over test images, {n_resamples} resamples, seed {seed}"}
    return "\n".join(lines), js
