"""The coarse and fine networks of Eigen, Puhrsch & Fergus (2014), Fig. 1 (Chapters 6 and 7).

Introduced in Chapter 6 (the coarse network) and Chapter 7 (the fine network). Both networks
output **log depth** (natural log of metres): "the final linear layer predicts the log depth"
(paper Section 3.3). Sizes below are ``width x height`` as the paper prints them; tensors are
``(B, C, H, W)``.

============ ========================================== ======== =========== ===========
layer        operation                                  channels NYU         KITTI
============ ========================================== ======== =========== ===========
input        RGB crop                                   3        304x228     576x172
Coarse 1     11x11 conv stride 4 (valid), 2x2 max pool  96       37x27       71x20
Coarse 2     5x5 conv (zero-padded), 2x2 max pool       256      18x13       35x10 (*)
Coarse 3, 4  3x3 conv (zero-padded)                     384, 384 18x13       35x10
Coarse 5     3x3 conv (zero-padded), 3x3 stride-2 pool  256      8x6         17x4
Coarse 6     fully connected, ReLU, dropout 0.5         4096     1x1         1x1
Coarse 7     fully connected, linear, reshaped          1        74x55       142x27
Fine 1       9x9 conv stride 2 (valid), 2x2 max pool    63       74x55       142x27
Fine 2       concatenation with the Coarse 7 output     64       74x55       142x27
Fine 3       5x5 conv, zero-padded                      64       74x55       142x27
Fine 4       5x5 conv, zero-padded, linear              1        74x55       142x27
============ ========================================== ======== =========== ===========

Every hidden layer is followed by a ReLU; Coarse 7 and Fine 4 are linear. The fully connected
sizes are computed from the input size (12288 = 8*6*256 inputs to Coarse 6 on NYU), so
:func:`build_model` accepts any input size large enough, e.g. the book's 152x114.

**Ambiguities of Fig. 1 and how this module resolves them** (``eigen2014-facts.md`` Section 1):

* *Coarse 5 downsampling.* Fig. 1 gives Coarse 5 the ratio /32 but names no pooling. We follow
  Coarse 5 with an AlexNet-style 3x3 stride-2 max pool (no padding): 18x13 -> 8x6 on NYU and
  35x10 -> 17x4 on KITTI, which are exactly the printed sizes.
* *Coarse 2 on KITTI (*).* A zero-padded 5x5 conv and a 2x2 pool give 35x10 where Fig. 1 prints
  35x9; no single convention reproduces every printed size, and the difference vanishes at
  Coarse 5 (17x4 either way). We keep the one convention NYU confirms.
* *Fine 1 pool.* Fig. 1 labels a 2x2 pool; with it each fine output sees 43x43 input pixels, not
  the 45x45 the text states. The default ``fine_pool=2`` follows the figure;
  ``fine_pool=3`` (a 3x3 stride-2 pool with 1 pixel of padding, same 74x55 output) gives 45x45.
* *Dropout rate.* Not stated; we use 0.5, the rate of the AlexNet-style network [9] the paper
  cites for its pretraining head.
* *Pooling.* Max pooling (the paper says "max-pooling operations", Section 3.1.1), floor rounding.
* *KITTI fine input.* The fine network "sees the bottom crop corresponding to the target area"
  (Section 4.2): its input is the bottom ``fine_rows`` rows of the image. With ``fine_rows=116``
  of the 172 rows, Fine 1 gives 142x27, the printed output size. NYU's fine input is the whole image.
* *Initialisation.* Not stated (the coarse convolutions come from ImageNet); PyTorch's default
  initialisation is used; :func:`load_pretrained_coarse` loads pretrained Coarse 1-5 weights.
* *Grouped convolutions.* AlexNet's two-GPU groups are not mentioned; all convolutions are dense.
* *Input normalisation.* Not stated; the ImageNet-pretrained layers the paper starts from expect
  mean-subtracted input. :class:`DepthNet` subtracts a per-channel mean and divides by a
  per-channel standard deviation (``ModelConfig.input_mean`` / ``input_std``, default ImageNet's,
  the convention of pretrained AlexNet-style weights) before both stacks, so callers always pass
  RGB in [0, 1] and an exported model carries its normalisation with it.

The output map is the Fine 1 output grid (the paper's /4 ratio). Output unit ``(i, j)`` is centred
on input pixel ``(row0 + 4 i, col0 + 4 j)`` (see :meth:`DepthNet.output_grid`), which is where
:mod:`mdlearn.train` samples the target depth.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import MdlearnError, UsageError

__all__ = ["ModelConfig", "CoarseNet", "FineNet", "DepthNet", "build_model", "layer_table",
           "load_pretrained_coarse", "PAPER_INPUT_SIZE", "PAPER_FINE_ROWS", "COARSE_CONV_KEYS",
           "model_from_description", "count_parameters", "IMAGENET_MEAN", "IMAGENET_STD", "canonical_description"]

#: The paper's network input sizes ``(width, height)`` (Fig. 1).
PAPER_INPUT_SIZE: dict[str, tuple[int, int]] = {"nyu": (304, 228), "kitti": (576, 172)}
#: Rows of the image the fine network sees (KITTI: the bottom crop with depth, Section 4.2).
PAPER_FINE_ROWS: dict[str, int] = {"nyu": 228, "kitti": 116}
#: The state_dict keys :func:`load_pretrained_coarse` expects (Coarse 1-5 weights and biases).
COARSE_CONV_KEYS: tuple[str, ...] = tuple(f"conv{i}.{p}" for i in range(1, 6) for p in ("weight", "bias"))

# (kernel, stride, padding) of each spatial layer, in order; "fc" ends the spatial part.
_COARSE_SPATIAL: tuple[tuple[str, int, int, int], ...] = (
    ("conv1", 11, 4, 0), ("pool1", 2, 2, 0),
    ("conv2", 5, 1, 2), ("pool2", 2, 2, 0),
    ("conv3", 3, 1, 1), ("conv4", 3, 1, 1),
    ("conv5", 3, 1, 1), ("pool5", 3, 2, 0),
)
_COARSE_CHANNELS = {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256}
_FINE_POOL = {2: (2, 2, 0), 3: (3, 2, 1)}
#: Per-channel RGB mean and standard deviation of ImageNet (inputs in [0, 1]): the normalisation
#: pretrained AlexNet-style coarse layers expect, and the default of :func:`build_model`.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: What a checkpoint written before input normalisation existed was trained with (none).
_NO_NORMALISATION = {"input_mean": [0.0, 0.0, 0.0], "input_std": [1.0, 1.0, 1.0]}


def _out_size(n: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a conv / max pool along one axis (floor rounding)."""
    return (n + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the architecture (stored in every checkpoint; Chapter 6).

    Attributes:
        dataset: ``"nyu"`` or ``"kitti"`` (which paper configuration).
        input_size: ``(width, height)`` of the image given to the coarse network, pixels.
        fine_rows: the fine network sees the bottom ``fine_rows`` rows of the image.
        fine_pool: 2 (Fig. 1's 2x2 pool, 43x43 receptive field) or 3 (3x3 stride 2, 45x45).
        dropout: dropout probability after Coarse 6.
        fc_hidden: width of Coarse 6 (4096 in the paper).
        input_mean, input_std: per-channel RGB statistics (inputs in [0, 1]) the model subtracts
            and divides by before both stacks.
    """

    dataset: str
    input_size: tuple[int, int]
    fine_rows: int
    fine_pool: int = 2
    dropout: float = 0.5
    fc_hidden: int = 4096
    input_mean: tuple[float, float, float] = IMAGENET_MEAN
    input_std: tuple[float, float, float] = IMAGENET_STD

    def coarse_feature_size(self) -> tuple[int, int]:
        """``(width, height)`` of the Coarse 5 map after its pool (8x6 on NYU)."""
        w, h = self.input_size
        for _, k, s, p in _COARSE_SPATIAL:
            w, h = _out_size(w, k, s, p), _out_size(h, k, s, p)
        return w, h

    def output_size(self) -> tuple[int, int]:
        """``(width, height)`` of the output map: the Fine 1 grid (74x55 on NYU, 142x27 on KITTI)."""
        w, h = self.input_size[0], self.fine_rows
        w, h = _out_size(w, 9, 2, 0), _out_size(h, 9, 2, 0)
        k, s, p = _FINE_POOL[self.fine_pool]
        return _out_size(w, k, s, p), _out_size(h, k, s, p)

    def fc_inputs(self) -> int:
        """Number of inputs of Coarse 6 (12288 on NYU)."""
        w, h = self.coarse_feature_size()
        return w * h * _COARSE_CHANNELS["conv5"]

    def describe(self) -> dict[str, Any]:
        """Plain-python description (lists, not tuples), as stored in checkpoints."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["input_mean"], d["input_std"] = list(self.input_mean), list(self.input_std)
        return d


class CoarseNet(nn.Module):
    """The global coarse-scale network, Coarse 1-7 (Chapter 6).

    Input ``(B, 3, H, W)`` RGB in [0, 1] (the network learns its own normalisation); output
    ``(B, 1, h, w)`` log depth on the output grid (``config.output_size()``), in float32 (or the
    autocast dtype).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.relu1 = relu()
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2)
        self.relu2 = relu()
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.relu3 = relu()
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1)
        self.relu4 = relu()
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1)
        self.relu5 = relu()
        self.pool5 = nn.MaxPool2d(3, 2)
        self.flatten = nn.Flatten(1)
        self.fc6 = nn.Linear(config.fc_inputs(), config.fc_hidden)
        self.relu6 = relu()
        self.drop6 = nn.Dropout(config.dropout)
        out_w, out_h = config.output_size()
        self.fc7 = nn.Linear(config.fc_hidden, out_w * out_h)
        self.unflatten = nn.Unflatten(1, (1, out_h, out_w))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Coarse 1-5 (the ImageNet-pretrainable part): ``(B, 3, H, W)`` -> ``(B, 256, h5, w5)``."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.conv3(x))
        x = self.relu4(self.conv4(x))
        return self.pool5(self.relu5(self.conv5(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.features(x))
        x = self.drop6(self.relu6(self.fc6(x)))
        return self.unflatten(self.fc7(x))


class _Concat(nn.Module):
    """Fine 2: concatenate the Fine 1 features with the coarse prediction along channels."""

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return torch.cat([fine, coarse.to(fine.dtype)], dim=1)


class FineNet(nn.Module):
    """The local fine-scale network, Fine 1-4 (Chapter 7).

    ``forward(image_rows, coarse)``: ``image_rows`` ``(B, 3, fine_rows, W)`` (the bottom rows of
    the image the fine network sees), ``coarse`` ``(B, 1, h, w)`` the coarse log depth; returns
    ``(B, 1, h, w)`` refined log depth.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv2d(3, 63, 9, stride=2)
        self.relu1 = nn.ReLU(inplace=True)
        k, s, p = _FINE_POOL[config.fine_pool]
        self.pool1 = nn.MaxPool2d(k, s, padding=p)
        self.concat = _Concat()
        self.conv3 = nn.Conv2d(64, 64, 5, padding=2)
        self.relu3 = nn.ReLU(inplace=True)
        self.conv4 = nn.Conv2d(64, 1, 5, padding=2)

    def forward(self, image_rows: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(image_rows)))
        if x.shape[-2:] != coarse.shape[-2:]:
            raise UsageError(f"the fine network's Fine 1 map is {x.shape[-1]}x{x.shape[-2]} but the coarse output "
                             f"is {coarse.shape[-1]}x{coarse.shape[-2]}: the image is not the model's input size")
        x = self.concat(x, coarse)
        x = self.relu3(self.conv3(x))
        return self.conv4(x)


class DepthNet(nn.Module):
    """The whole model of Fig. 1: a :class:`CoarseNet` and a :class:`FineNet` (Chapters 6-7).

    ``forward(image, scale="fine")`` takes ``(B, 3, H, W)`` images of ``config.input_size`` and
    returns ``(B, 1, h, w)`` **log depth** (metres) on the output grid. ``scale="coarse"`` returns
    the coarse prediction (Chapter 6); ``scale="fine"`` the refined one, with the coarse network run
    without gradient, as the paper trains it ("we do not backpropagate through the coarse one").

    After :meth:`freeze_coarse`, the coarse network stays in eval mode (no dropout) even when
    ``model.train()`` is called: it is a fixed feature extractor for the fine stage.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.coarse = CoarseNet(config)
        self.fine = FineNet(config)
        self.coarse_frozen = False
        # derived from the config, not trained: kept out of the state_dict (persistent=False)
        self.register_buffer("input_mean", torch.tensor(config.input_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(config.input_std).view(1, 3, 1, 1), persistent=False)

    def describe(self) -> dict[str, Any]:
        """The architecture as plain python (stored in checkpoints, compared when loading)."""
        return {"name": "eigen2014", **self.config.describe()}

    def freeze_coarse(self, frozen: bool = True) -> None:
        """Fix the coarse network for the fine stage: no ``requires_grad``, eval mode (Chapter 7)."""
        self.coarse_frozen = frozen
        for p in self.coarse.parameters():
            p.requires_grad_(not frozen)
        self.coarse.train(self.training and not frozen)

    def train(self, mode: bool = True) -> "DepthNet":
        super().train(mode)
        if self.coarse_frozen:
            self.coarse.eval()
        return self

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """``(image - input_mean) / input_std`` per channel: what both stacks see (Chapter 6)."""
        return (image - self.input_mean.to(image.dtype)) / self.input_std.to(image.dtype)

    def fine_input(self, image: torch.Tensor) -> torch.Tensor:
        """The rows of ``image`` the fine network sees: the bottom ``fine_rows`` rows."""
        return image[..., image.shape[-2] - self.config.fine_rows:, :]

    def forward(self, image: torch.Tensor, scale: str = "fine") -> torch.Tensor:
        w, h = self.config.input_size
        if image.ndim != 4 or image.shape[1] != 3 or tuple(image.shape[-2:]) != (h, w):
            raise UsageError(f"expected images (B, 3, {h}, {w}) for this {self.config.dataset} model with input "
                             f"{w}x{h}, got {tuple(image.shape)}")
        if scale not in ("coarse", "fine"):
            raise UsageError(f"scale must be 'coarse' or 'fine', got {scale!r}")
        image = self.normalise(image)
        if scale == "coarse":
            return self.coarse(image)
        with torch.no_grad():
            coarse = self.coarse(image)
        return self.fine(self.fine_input(image), coarse)

    def output_grid(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Input-pixel rows ``(h,)`` and columns ``(w,)`` on which the output units are centred.

        Integer pixel coordinates of the full input image (pixel centres at integers): row
        ``H - fine_rows + start + 4 i`` and column ``start + 4 j`` with ``start`` from the Fine 1
        receptive-field arithmetic (5 for the 2x2 pool, 4 for the 3x3 one).
        """
        rf = _receptive_fields(self.config)
        start, jump = rf["fine.conv4"][2], rf["fine.conv4"][1]
        out_w, out_h = self.config.output_size()
        offset = self.config.input_size[1] - self.config.fine_rows
        rows = torch.round(offset + start + jump * torch.arange(out_h, dtype=torch.float64)).long()
        cols = torch.round(start + jump * torch.arange(out_w, dtype=torch.float64)).long()
        return rows, cols


def build_model(dataset: str, input_size: tuple[int, int] | None = None, *, fine_rows: int | None = None,
                fine_pool: int = 2, dropout: float = 0.5, fc_hidden: int = 4096,
                input_mean: tuple[float, float, float] = IMAGENET_MEAN,
                input_std: tuple[float, float, float] = IMAGENET_STD) -> DepthNet:
    """The paper's network for ``dataset`` (``"nyu"`` or ``"kitti"``) at ``input_size`` (Chapter 6).

    Args:
        dataset: ``"nyu"`` or ``"kitti"``.
        input_size: ``(width, height)`` of the coarse input; default the paper's (304x228 NYU,
            576x172 KITTI). Fully connected sizes and the output map follow from it.
        fine_rows: rows (from the bottom) the fine network sees; default all of them on NYU and
            ``round(116 / 172 * height)`` on KITTI (116 at the paper's size).
        fine_pool: 2 (Fig. 1) or 3 (the 45x45 receptive field of the text); see the module docstring.
        dropout: probability after Coarse 6 (0.5; the paper does not state it).
        fc_hidden: Coarse 6 width (4096).
        input_mean, input_std: per-channel RGB mean and standard deviation (inputs in [0, 1])
            the model normalises its input with; default ImageNet's (:data:`IMAGENET_MEAN`).

    Raises:
        UsageError: unknown dataset, or an input too small for the network.
    """
    if dataset not in PAPER_INPUT_SIZE:
        raise UsageError(f"dataset must be one of {sorted(PAPER_INPUT_SIZE)}, got {dataset!r}")
    if input_size is None:
        input_size = PAPER_INPUT_SIZE[dataset]
    if len(input_size) != 2:
        raise UsageError(f"input_size must be (width, height), got {input_size!r}")
    w, h = int(input_size[0]), int(input_size[1])
    if fine_rows is None:
        ph = PAPER_INPUT_SIZE[dataset][1]
        fine_rows = h if dataset == "nyu" else int(round(PAPER_FINE_ROWS[dataset] / ph * h))
    if fine_pool not in _FINE_POOL:
        raise UsageError(f"fine_pool must be 2 (Fig. 1) or 3 (45x45 receptive field), got {fine_pool!r}")
    if not 0.0 <= dropout < 1.0:
        raise UsageError(f"dropout must lie in [0, 1), got {dropout}")
    if not 0 < fine_rows <= h:
        raise UsageError(f"fine_rows must lie in 1..{h} (the image height), got {fine_rows}")
    mean, std = tuple(float(v) for v in input_mean), tuple(float(v) for v in input_std)
    if len(mean) != 3 or len(std) != 3 or not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
        raise UsageError(f"input_mean / input_std must be three finite numbers each, std > 0; got {input_mean!r}, "
                         f"{input_std!r}")
    config = ModelConfig(dataset=dataset, input_size=(w, h), fine_rows=int(fine_rows), fine_pool=fine_pool,
                         dropout=float(dropout), fc_hidden=int(fc_hidden), input_mean=mean, input_std=std)
    fw, fh = config.coarse_feature_size()
    ow, oh = config.output_size()
    if fw < 1 or fh < 1 or ow < 1 or oh < 1:
        raise UsageError(f"input {w}x{h} (fine rows {fine_rows}) is too small for the {dataset} network: Coarse 5 "
                         f"would be {fw}x{fh} and the output {ow}x{oh}")
    return DepthNet(config)


def model_from_description(description: dict[str, Any]) -> DepthNet:
    """Rebuild the model a checkpoint's ``arch`` entry (:meth:`DepthNet.describe`) describes."""
    d = canonical_description(description)
    if d.pop("name", None) != "eigen2014":
        raise UsageError(f"unknown architecture {description.get('name')!r}; this mdlearn knows 'eigen2014'")
    return build_model(d["dataset"], tuple(d["input_size"]), fine_rows=d["fine_rows"], fine_pool=d["fine_pool"],
                       dropout=d["dropout"], fc_hidden=d["fc_hidden"], input_mean=tuple(d["input_mean"]),
                       input_std=tuple(d["input_std"]))


def canonical_description(description: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``arch`` entry with what older mdlearn versions left implicit made explicit:
    checkpoints written before input normalisation existed were trained on raw [0, 1] input, so a
    missing ``input_mean`` / ``input_std`` means 0 / 1. Compare architectures in this form."""
    return {**_NO_NORMALISATION, **description}


# ------------------------------------------------------------------------------------ layer table


def _receptive_fields(config: ModelConfig) -> dict[str, tuple[int, int, float]]:
    """``name -> (receptive field, jump, start)`` along one axis, in input pixels.

    Standard arithmetic: ``rf += (k - 1) * jump``, ``start += ((k - 1) / 2 - p) * jump``,
    ``jump *= s``. ``start`` is the input coordinate of the first output unit's centre. The fine
    path's numbers are relative to the fine input (its own receptive field, ignoring the coarse
    input, which sees the whole image).
    """
    out: dict[str, tuple[int, int, float]] = {}
    rf, jump, start = 1, 1, 0.0
    for name, k, s, p in _COARSE_SPATIAL:
        rf, start, jump = rf + (k - 1) * jump, start + ((k - 1) / 2 - p) * jump, jump * s
        out[f"coarse.{name}"] = (rf, jump, start)
    rf, jump, start = 1, 1, 0.0
    k, s, p = _FINE_POOL[config.fine_pool]
    for name, k, s, p in (("conv1", 9, 2, 0), ("pool1", k, s, p), ("conv3", 5, 1, 2), ("conv4", 5, 1, 2)):
        rf, start, jump = rf + (k - 1) * jump, start + ((k - 1) / 2 - p) * jump, jump * s
        out[f"fine.{name}"] = (rf, jump, start)
    return out


_LAYER_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Coarse 1", "coarse.conv1", "11x11 conv, stride 4, ReLU"),
    ("Coarse 1", "coarse.pool1", "2x2 max pool"),
    ("Coarse 2", "coarse.conv2", "5x5 conv, pad 2, ReLU"),
    ("Coarse 2", "coarse.pool2", "2x2 max pool"),
    ("Coarse 3", "coarse.conv3", "3x3 conv, pad 1, ReLU"),
    ("Coarse 4", "coarse.conv4", "3x3 conv, pad 1, ReLU"),
    ("Coarse 5", "coarse.conv5", "3x3 conv, pad 1, ReLU"),
    ("Coarse 5", "coarse.pool5", "3x3 max pool, stride 2"),
    ("Coarse 6", "coarse.fc6", "fully connected, ReLU, dropout"),
    ("Coarse 7", "coarse.fc7", "fully connected, linear"),
    ("Coarse 7", "coarse.unflatten", "reshape to the output map"),
    ("Fine 1", "fine.conv1", "9x9 conv, stride 2, ReLU"),
    ("Fine 1", "fine.pool1", "max pool"),
    ("Fine 2", "fine.concat", "concatenate with Coarse 7"),
    ("Fine 3", "fine.conv3", "5x5 conv, pad 2, ReLU"),
    ("Fine 4", "fine.conv4", "5x5 conv, pad 2, linear"),
)


def layer_table(model: DepthNet, input_size: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """One row per layer of ``model``, measured by running it (Chapters 6-7).

    Runs the real module on one zero image (forward hooks record every output shape), so the
    table cannot drift from the code. ``input_size`` ``(width, height)`` must be the model's own
    (default); it is accepted so a chapter can state it explicitly.

    Returns:
        Dicts with keys ``layer`` (the paper's name), ``module`` (attribute path), ``operation``,
        ``shape`` (``(C, H, W)`` or ``(features,)`` of one sample), ``size`` (``"WxH"`` or ``""``),
        ``receptive_field`` (input pixels along one axis, ``None`` = the whole image for the fully
        connected layers; the fine path's own field), ``stride`` (input pixels between adjacent
        units) and ``params`` (weights + biases of that layer).
    """
    if input_size is not None and tuple(input_size) != tuple(model.config.input_size):
        raise UsageError(f"input_size {tuple(input_size)} differs from the model's {tuple(model.config.input_size)}; "
                         "build a model for that size with build_model(dataset, input_size)")
    w, h = model.config.input_size
    modules = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for _, name, _ in _LAYER_ROWS:
        def hook(mod, inputs, output, name=name):
            shapes[name] = tuple(output.shape[1:])
        hooks.append(modules[name].register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w, device=p.device, dtype=p.dtype), scale="fine")
    finally:
        for hk in hooks:
            hk.remove()
        model.train(was_training)
    rf = _receptive_fields(model.config)
    rows = [{"layer": "input", "module": "", "operation": "RGB image", "shape": (3, h, w), "size": f"{w}x{h}",
             "receptive_field": 1, "stride": 1, "params": 0}]
    for layer, name, op in _LAYER_ROWS:
        shape = shapes[name]
        if name == "fine.pool1":
            k = model.config.fine_pool
            op = f"{k}x{k} max pool, stride 2" + (", pad 1" if k == 3 else "")
        field, stride = (rf[name][0], rf[name][1]) if name in rf else (None, None)
        if name == "fine.concat":
            field, stride = rf["fine.pool1"][0], rf["fine.pool1"][1]
        rows.append({
            "layer": layer, "module": name, "operation": op, "shape": shape,
            "size": f"{shape[-1]}x{shape[-2]}" if len(shape) == 3 else "",
            "receptive_field": field, "stride": stride,
            "params": sum(p.numel() for p in modules[name].parameters(recurse=False)),
        })
    return rows


# ----------------------------------------------------------------------------- pretrained weights


def load_pretrained_coarse(model: DepthNet, path: str | Path) -> None:
    """Load ImageNet-pretrained Coarse 1-5 weights from a local state_dict file (Chapter 6).

    The file is a ``torch.save``'d dict with exactly the keys :data:`COARSE_CONV_KEYS`
    (``conv1.weight``, ``conv1.bias``, ... ``conv5.bias``), shapes as in ``model.coarse``; a
    ``"coarse."`` prefix on every key is accepted too. It is read with
    ``torch.load(weights_only=True)`` (no code runs). All or nothing: every missing, unexpected
    or mis-shaped key is named in one :class:`MdlearnError` and the model is left untouched.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MdlearnError(f"{path}: no such pretrained-weights file") from None
    except Exception as e:  # noqa: BLE001 - any unpickling/zip failure is a bad file
        raise MdlearnError(f"{path}: not a readable torch state_dict ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise MdlearnError(f"{path}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
    if state and all(k.startswith("coarse.") for k in state):
        state = {k[len("coarse."):]: v for k, v in state.items()}
    own = model.coarse.state_dict()
    problems = [f"missing {k}" for k in COARSE_CONV_KEYS if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in COARSE_CONV_KEYS]
    for k in COARSE_CONV_KEYS:
        if k in state:
            v = state[k]
            if not torch.is_tensor(v):
                problems.append(f"{k} is a {type(v).__name__}, not a tensor")
            elif tuple(v.shape) != tuple(own[k].shape):
                problems.append(f"{k} has shape {tuple(v.shape)}, the model needs {tuple(own[k].shape)}")
            elif not v.is_floating_point() or not bool(torch.isfinite(v).all()):
                problems.append(f"{k} is not finite floating point")
    if problems:
        raise MdlearnError(f"{path}: cannot load pretrained Coarse 1-5 weights: {'; '.join(problems)}")
    with torch.no_grad():
        for k in COARSE_CONV_KEYS:
            own[k].copy_(state[k].to(own[k].dtype))


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())



def format_layer_table(rows: list[dict[str, Any]]) -> str:
    """:func:`layer_table`'s rows as a fixed-width text table that fits the book's column (Chapter 6).

    Columns: layer, operation, output size (width x height) and channels, receptive field and
    stride in input pixels, parameters.
    """
    head = f"{'layer':9s}{'operation':31s}{'out':>8s}{'ch':>6s}{'rf':>5s}{'st':>4s}{'params':>12s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ch = r["shape"][0] if len(r["shape"]) == 3 else r["shape"][0]
        rf = "" if r["receptive_field"] is None else str(r["receptive_field"])
        st = "" if r["stride"] is None else str(r["stride"])
        lines.append(f"{r['layer']:9s}{r['operation'][:30]:31s}{r['size'] or '-':>8s}{ch:>6d}{rf:>5s}{st:>4s}"
                     f"{r['params']:>12,d}")
    return "\n".join(lines)
