"""``AestheticCrop``: S2CNet's best crop of a given aspect ratio as a Kornia geometric augmentation.

Kornia draws an augmentation's parameters from the batch *shape* (``forward_parameters(batch_shape)``,
which is also what :class:`~kornia.augmentation.AugmentationSequential` calls before any module runs).
An aesthetic crop depends on the pixels, so the parameters are made in two steps:

1. ``forward_parameters(shape)``: Kornia's gate (``batch_prob``), ``forward_input_shape``, and, with
   ``top_k > 1``, one uniform draw per image (``draw``) from ``generator`` or torch's global generator,
   so seeding makes the choice reproducible; ``output_size`` when ``size`` is given.
2. When the image arrives (:meth:`AestheticCrop.forward`), if ``params`` has no ``src`` yet, the crops are
   chosen and written *into that dict*: the candidates of the ratio are scored in one batched call
   under ``no_grad`` on the image's device (the Cropper's batched scoring of one ratio's candidates), and per image the
   best one (or, with ``top_k > 1``, one of the ``top_k`` best picked by the draw with weights
   ``softmax(score / temperature)``) becomes ``src``/``dst``. A container's parameter list holds that
   same dict, so its masks, boxes, keypoints and ``inverse`` use the chosen crops; replaying ``params``
   reuses them without scoring again.

With a :class:`~s2c_ops.cropping.table.CropTable` (``table=``), step 2 looks the image up instead of
scoring it: by the ``keys`` given with the call (dataset indices or paths) or by the pixels' fingerprint;
the table's candidates (its ``candidates`` best, after the face rule) are drawn from the same way, and
``top_k=1`` gives the crop ``Cropper.crop`` gives for that image. A lazy table scores the images it lacks
(the first epoch) and keeps them. Recipe and costs: docs/training.md.

Reproducibility: the crops depend only on the images and the draws. Loading the model, the face detector or
a table draws nothing from torch's generator, so ``torch.manual_seed(s)`` before a run gives the same crops
in the main process; in DataLoader workers, torch seeds each worker from the main process's generator, so
the same seed gives the same crops there too (with the default global generator; a ``generator=`` given is
copied into each worker with its state: seed it per worker in ``worker_init_fn``).

Crops are whole pixels in Kornia's corner convention (``src`` corners ``(x0, y0)``, ``(x0 + w - 1, y0)``,
``(x0 + w - 1, y0 + h - 1)``, ``(x0, y0 + h - 1)``, as RandomCrop / CenterCrop build them), placed
within one pixel of the continuous candidate box the model scored.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from kornia.augmentation import GeometricAugmentationBase2D
from kornia.constants import Resample
from kornia.geometry.transform import crop_by_indices, crop_by_transform_mat
from torch import Tensor

from s2c_ops.cropping.candidates import MIN_CROP_SIDE, largest_crop, parse_ratio, pixel_crops
from s2c_ops.cropping.cropper import Cropper
from s2c_ops.cropping.table import CropTable, model_identity, proposer_identity
from s2c_ops.models.registry import create_model
from s2c_ops.cropping.proposals import check_num_boxes, create_proposer, whole_image_boxes
from s2c_ops.precision import full_precision

from .sampling import pick_candidates

__all__ = ["AestheticCrop"]

Scorer = Callable[..., Tensor]

_MODES = ("resample", "slice")


def _check_size(size: Any) -> Optional[Tuple[int, int]]:
    if size is None:
        return None
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size), int(size))
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"size must be None, an int or a (height, width) pair of ints, got {size!r}")
    for side in size:
        if isinstance(side, bool) or not isinstance(side, numbers.Integral):
            raise ValueError(f"size must hold ints (height, width), got {size!r}")
        if side < 2:
            raise ValueError(
                f"size must be at least 2 pixels on each side (a one-pixel side cannot be mapped back by "
                f"inverse), got {tuple(size)}"
            )
    return int(size[0]), int(size[1])


def _largest_crop_size(height: int, width: int, ratio: float) -> Tuple[int, int]:
    """(h, w) of the largest whole-pixel crop of ``ratio`` (what ``size=None`` gives for the largest box)."""
    h0, w0 = largest_crop(height, width, ratio)
    box = torch.tensor([[0.0, 0.0, w0, h0]])
    crop = pixel_crops(box, ratio, height, width)[0]
    return int(crop[3]), int(crop[2])


def _to_unit(images: Tensor) -> Tensor:
    """uint8 images (0..255) as float32 in [0, 1]."""
    return images.float().div_(255)


def _to_uint8(images: Tensor) -> Tensor:
    """float images in [0, 1] as uint8, rounded (torchvision's convention: uint8 in, uint8 out)."""
    return images.mul(255).round_().clamp_(0, 255).to(torch.uint8)


def _resample(input: Tensor, transform: Any, size: Tuple[int, int], flags: Dict[str, Any], padding_mode: str) -> Tensor:
    """``input`` warped by the (B, 3, 3) ``transform`` into ``size`` with the flags' resampling, in the
    input's own precision under autocast too (a sampling grid in bfloat16 misplaces pixels by several)."""
    if not isinstance(transform, Tensor):
        raise TypeError(f"Expected the `transform` be a torch.Tensor. Got {type(transform)}.")
    with full_precision(input.device):
        return crop_by_transform_mat(input, transform[:, :2, :], size, mode=flags["resample"].name.lower(),
                                     padding_mode=padding_mode, align_corners=flags["align_corners"])


def _corners(x0: Tensor, y0: Tensor, w: Tensor, h: Tensor) -> Tensor:
    """(B, 4, 2) corners in Kornia's order (top-left, top-right, bottom-right, bottom-left), inclusive."""
    x1, y1 = x0 + w - 1, y0 + h - 1
    return torch.stack(
        [torch.stack([x0, y0], -1), torch.stack([x1, y0], -1), torch.stack([x1, y1], -1), torch.stack([x0, y1], -1)],
        dim=1,
    )


class AestheticCrop(GeometricAugmentationBase2D):
    r"""Crop each image to its most aesthetic crop of aspect ratio ``ratio`` (S2CNet), resized to ``size``.

    Args:
        ratio: crop width / height: a positive finite number or ``"16:9"``, ``"4/3"``, ``"1.5"``.
        size: output ``(height, width)`` (an int for a square). ``None`` keeps the crop's own size, which
            needs every image of a call to get a crop of one size (one image, ``same_on_batch=True``, or
            crops that happen to agree); otherwise the call raises ``ValueError``. Give ``size`` with the
            ratio's shape, or the crop is stretched (a ``UserWarning`` says so). In an
            ``AugmentationSequential`` followed by augmentations that depend on the image size, give
            ``size``: with ``None`` the container cannot know the output size before the image is seen.
        model: the crop scorer, called like S2CNet: ``model(images, crop_boxes, object_boxes) -> Tensor[K]``
            with normalised ``(B, 3, h, w)`` images (official pre-processing), a list of B crop boxes and
            ``num_boxes`` object boxes per image, in those images' pixels. ``None`` (the default) uses the
            package's default model (S2CNet trained on FCDB with the geometry priors), loaded at first use. An
            :class:`~s2c_ops.S2CNet` (e.g. ``S2CNet.from_official(...)``) is used through its
            :meth:`~s2c_ops.S2CNet.fused` inference copy, made at first use on each device; another
            ``nn.Module`` is used as is on its own device and copied to the images' device when it differs
            (pass it in eval mode); any other callable gets the images on their device. The model is not a
            submodule: it is not in ``state_dict()`` and ``.to()`` does not move it.
        proposer: object boxes for the scorer: a proposer (see :mod:`s2c_ops.cropping.proposals`), a proposer name
            (``"saliency"``, ``"image"``), or ``None`` for the default proposer (faces, then salient regions,
            as the Cropper uses).
        top_k: ``1`` takes the best crop; ``k > 1`` picks one of the ``k`` best at random, weighted by
            ``softmax(score / temperature)``, from ``generator`` (default torch's global one). A draw never
            picks a crop that cuts more faces than the best one (the face rule's penalty is in the scores).
        temperature: the softmax temperature for ``top_k > 1`` (ignored for ``top_k = 1``); ``None`` weighs
            the ``k`` best equally.
        p: probability of cropping the whole batch (as in RandomResizedCrop, the batch is cropped or left
            whole together, since the output size changes). Images too small for the ratio raise
            ``ValueError`` whatever the draw, so a dataset that holds one fails at its first batch, not
            at the rare one that draws a crop.
        same_on_batch: one crop for the whole batch, the best by the mean score over the batch.
        keepdim: keep the input's rank (``(C, H, W)`` in, ``(C, h, w)`` out).
        cropping_mode: ``"resample"`` warps with the 3x3 matrix (bilinear, ``align_corners=True``,
            differentiable in the image); ``"slice"`` slices the crop and resizes it with ``interpolate``.
        num_boxes: object boxes per image for the scorer; default ``model.bbox_num`` (a scorer without
            ``bbox_num`` needs it).
        validate: the check that the images are RGB values in [0, 1] with no NaN or infinity
            (:func:`s2c_ops.cropping.pixels.check_unit_range`) before they are scored. ``None`` (the default)
            checks images on the CPU only: on a GPU the check would make the host wait for the device each
            call, so it is left to ``True``. ``False`` never checks.
        table: a :class:`~s2c_ops.cropping.table.CropTable` to look the candidates up in instead of scoring
            each image every epoch (``CropTable.load(path)``, ``CropTable.build(...)``, or ``CropTable()``
            that fills lazily). It must have been made with this model (weights digest), ratio and proposer:
            another is refused here with :class:`~s2c_ops.cropping.table.TableMismatch` (with
            ``model=None`` the default model is loaded once in this process to check its digest). A table
            keyed by index or path needs ``keys=`` with each call; a fingerprint table needs nothing (the
            images must be the pixels it was built from: put the augmentation first after decoding).
            Not with ``same_on_batch``.
        generator: the ``torch.Generator`` of the ``top_k`` draws (default: torch's global generator).

    Shape:
        - Input: :math:`(C, H, W)` or :math:`(B, C, H, W)` RGB, float in [0, 1] or uint8 in 0..255, ``C = 3``.
        - Output: :math:`(B, C, h, w)` (``keepdim``: the input's rank), of the input's dtype (uint8 images are
          cropped in float32 and rounded back).

    Parameters (``aug._params`` after a call): Kornia's ``src``/``dst`` corners (B, 4, 2), ``batch_prob``,
    ``forward_input_shape``, ``input_size`` and ``output_size`` (B, 2) as ``(height, width)``,
    ``crop_box`` (B, 4) the continuous ``(x1, y1, x2, y2)`` box the model scored and ``crop_score`` (B,)
    its score (the batch mean with ``same_on_batch``; NaN where the batch was not cropped), and ``draw``
    (B,) with ``top_k > 1``.
    ``transform_matrix`` maps input pixels to output pixels (the crop's corner pixel centres onto the
    output's); :meth:`inverse` warps the output back onto the input's canvas (zeros outside the crop).

    Raises:
        ValueError: at construction, for a ratio that is not positive and finite, a bad ``size``,
            ``top_k``, ``temperature``, ``p``, ``cropping_mode`` or ``num_boxes`` (below 1); at call time, for an
            input that is not ``(C, H, W)`` / ``(B, C, H, W)`` with 3 channels, an image too small to hold
            a crop of the ratio with both sides at least ``MIN_CROP_SIDE`` (16) pixels, crops of
            different sizes with ``size=None``, or (see ``validate``) NaN, infinite values or values outside
            [0, 1], naming the range found and the fix.
        TypeError: a ``model`` or ``proposer`` that is not callable, a ``num_boxes`` that is not an int, an
            input that is not a float or uint8 tensor.
        TableMismatch: a ``table`` made with another model, ratio or proposer (a ``ValueError``).
        TableMiss: with a table that does not fill lazily, images it does not hold (a ``KeyError``).

    Example:
        >>> import torch
        >>> from s2c_kornia import AestheticCrop
        >>> aug = AestheticCrop("4:3", size=(192, 256))                    # doctest: +SKIP
        >>> out = aug(torch.rand(8, 3, 256, 384))                          # doctest: +SKIP
        >>> out.shape                                                      # doctest: +SKIP
        torch.Size([8, 3, 192, 256])
        >>> from s2c_kornia import CropTable
        >>> table = CropTable.load("fcdb_4x3.safetensors")                 # doctest: +SKIP
        >>> aug = AestheticCrop("4:3", size=(192, 256), top_k=3, table=table)  # doctest: +SKIP
        >>> out = aug(images, keys=indices)                                # doctest: +SKIP
    """

    def __init__(
        self,
        ratio: Union[float, str],
        size: Optional[Union[int, Tuple[int, int]]] = None,
        model: Optional[Scorer] = None,
        proposer: Optional[Union[str, Callable[..., Any]]] = None,
        top_k: int = 1,
        temperature: Optional[float] = None,
        p: float = 1.0,
        same_on_batch: bool = False,
        keepdim: bool = False,
        cropping_mode: str = "resample",
        *,
        num_boxes: Optional[int] = None,
        validate: Optional[bool] = None,
        table: Optional[CropTable] = None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        ratio = parse_ratio(ratio)
        size = _check_size(size)
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
        if temperature is not None:
            if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
                raise ValueError(f"temperature must be None or a positive number, got {temperature!r}")
            temperature = float(temperature)
            if not (math.isfinite(temperature) and temperature > 0):
                raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        if cropping_mode not in _MODES:
            raise ValueError(f"cropping_mode must be one of {_MODES}, got {cropping_mode!r}")
        if model is not None and not callable(model):
            raise TypeError(f"model must be None, an S2CNet or a callable scorer, got {type(model).__name__}")
        proposer_name = proposer_identity(proposer)
        if isinstance(proposer, str):
            proposer = create_proposer(proposer)
        elif proposer is not None and not callable(proposer):
            raise TypeError(f"proposer must be None, a proposer name or a callable, got {type(proposer).__name__}")
        if num_boxes is not None:
            num_boxes = check_num_boxes(num_boxes)
        if validate not in (None, True, False):
            raise ValueError(f"validate must be None, True or False, got {validate!r}")
        if table is not None:
            if not isinstance(table, CropTable):
                raise TypeError(f"table must be None or a CropTable, got {type(table).__name__}")
            if same_on_batch:
                raise ValueError("same_on_batch=True needs the scores of one set of candidates for the whole "
                                 "batch: it does not go with a table")
            # A table made by another model, ratio or proposer is refused here, once, before any use.
            table.bind([ratio], model_identity(model), proposer_name)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be None or a torch.Generator, got {type(generator).__name__}")
        if size is not None:
            h, w = size
            if abs(w - h * ratio) > 1 and abs(h - w / ratio) > 1:
                warnings.warn(
                    f"size {size} (height, width) has aspect ratio {w / h:.4g}, not {ratio:.4g}: the crops are "
                    "stretched to it",
                    UserWarning,
                    stacklevel=2,
                )

        # As in RandomResizedCrop: the output size changes, so the batch is gated as a whole.
        super().__init__(p=1.0, same_on_batch=same_on_batch, p_batch=float(p), keepdim=keepdim)
        self.flags = {
            "ratio": ratio,
            "size": size,
            "top_k": int(top_k),
            "temperature": temperature,
            "resample": Resample.BILINEAR,
            "align_corners": True,
            "cropping_mode": cropping_mode,
            "padding_mode": "zeros",
        }
        # Not submodules: the scorer's weights stay out of state_dict() and .to() (see the class doc).
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_proposer", proposer)
        self.table = table
        self.generator = generator
        self._num_boxes = None if num_boxes is None else int(num_boxes)
        self.validate = validate
        self._croppers: Dict[str, Cropper] = {}

    def __repr__(self) -> str:
        model = "default" if self._model is None else type(self._model).__name__
        proposer = "default" if self._proposer is None else type(self._proposer).__name__
        return f"{super().__repr__()[:-1]}, model={model}, proposer={proposer})"

    # -- the scorer ------------------------------------------------------------------------------
    @property
    def model(self) -> Scorer:
        """The scorer as given, or the package's default model (loaded on first access)."""
        if self._model is None:
            object.__setattr__(self, "_model", create_model("default"))
        return self._model

    def cropper(self, device: Union[str, torch.device]) -> Cropper:
        """The :class:`~s2c_ops.Cropper` that scores images on ``device`` (made on first use; a module that
        must move there is copied, never moved)."""
        device = torch.device(device)
        key = str(device)
        if key not in self._croppers:
            proposer = self._proposer if self._proposer is not None else create_proposer("default")
            self._croppers[key] = Cropper(self.model, proposer, num_boxes=self._num_boxes, device=device)
        return self._croppers[key]

    # -- parameters ------------------------------------------------------------------------------
    def generate_parameters(self, batch_shape: Tuple[int, ...]) -> Dict[str, Tensor]:
        """What the shape alone decides: the random draws (``top_k > 1``) and the output size (``size``).
        The crops themselves are chosen when the image arrives (:meth:`forward`)."""
        batch = int(batch_shape[0])
        params: Dict[str, Tensor] = {}
        if self.flags["top_k"] > 1:
            n = 1 if self.same_on_batch else batch
            device = self.device if self.generator is None else self.generator.device
            draw = torch.rand(n, device=device, dtype=torch.float32, generator=self.generator)
            params["draw"] = draw.expand(batch).clone() if self.same_on_batch else draw
        if self.flags["size"] is not None:
            params["output_size"] = torch.tensor(self.flags["size"], dtype=torch.long).expand(batch, 2).clone()
        return params

    def _check_input(self, input: Any) -> None:
        if not isinstance(input, Tensor):
            raise TypeError(f"AestheticCrop expects a torch.Tensor image, got {type(input).__name__}")
        if input.dim() not in (3, 4):
            raise ValueError(
                f"AestheticCrop expects a (C, H, W) or (B, C, H, W) image batch, got shape {tuple(input.shape)}"
            )
        if not input.is_floating_point() and input.dtype != torch.uint8:
            raise TypeError(f"AestheticCrop expects float images in [0, 1] or uint8 images in 0..255, got dtype "
                            f"{input.dtype}")

    def forward(self, input: Tensor, params: Optional[Dict[str, Tensor]] = None, *,
                keys: Optional[Union[Tensor, Sequence[Any]]] = None, **kwargs: Any) -> Tensor:
        """Crops ``input``; ``params`` from an earlier call (or a container) replays those crops, and
        parameters drawn from the shape alone (no ``src`` yet) get their crops chosen from ``input``.
        ``keys``: one per image (dataset indices or paths), for a table keyed by them."""
        self._check_input(input)
        if input.dtype == torch.uint8:
            return _to_uint8(self.forward(_to_unit(input), params, keys=keys, **kwargs))
        images = self.transform_tensor(input)
        if params is None:
            params = self.forward_parameters(images.shape)
        if "src" not in params:
            self.choose_crops(images, params, keys=keys)
        return super().forward(input, params=params, **kwargs)

    def inverse(self, input: Tensor, params: Optional[Dict[str, Tensor]] = None, **kwargs: Any) -> Tensor:
        """The output warped back onto the input's canvas (zeros outside the crop); uint8 stays uint8."""
        if isinstance(input, Tensor) and input.dtype == torch.uint8:
            return _to_uint8(super().inverse(_to_unit(input), params, **kwargs))
        return super().inverse(input, params, **kwargs)

    @torch.no_grad()
    def choose_crops(self, images: Tensor, params: Dict[str, Tensor], *,
                     keys: Optional[Union[Tensor, Sequence[Any]]] = None) -> Dict[str, Tensor]:
        """Scores the candidates of ``images`` (B, 3, H, W) (or looks them up in the table) and writes the
        chosen crops into ``params`` (``src``, ``dst``, ``input_size``, ``output_size``, ``crop_box``,
        ``crop_score``); returns it."""
        b, c, height, width = images.shape
        ratio = self.flags["ratio"]
        if c != 3:
            raise ValueError(f"AestheticCrop needs RGB images (3 channels), got {c} in shape {tuple(images.shape)}")
        largest_h, largest_w = largest_crop(height, width, ratio)
        if largest_w < MIN_CROP_SIDE or largest_h < MIN_CROP_SIDE:
            raise ValueError(
                f"a {height}x{width} (height x width) image is too small for crops of ratio {ratio:g}: the largest "
                f"would be {largest_w:.1f}x{largest_h:.1f} px (width x height), under the model's minimum side "
                f"of {MIN_CROP_SIDE:g} px"
            )
        gate = params.get("batch_prob")  # Kornia's, on the CPU
        cropped = b > 0 and (gate is None or self.p_batch == 1.0 or bool((gate > 0.5).any()))
        # The crops stay on the images' device: nothing here waits for it.
        device = images.device
        if cropped and self.table is not None:
            boxes, scores = self._table_candidates(images, keys)
        elif cropped:
            boxes, scores = self.cropper(device)._score_candidates(images, ratio, validate=self.validate)
        if cropped:
            chosen, score = self._pick(boxes, scores.float(), params.get("draw"))
            chosen, score = chosen.float(), score.float()
            x0, y0, w, h = pixel_crops(chosen, ratio, height, width).unbind(1)
        else:  # a skipped batch keeps the whole image (the output is the input; this is what the matrix says)
            chosen = whole_image_boxes(b, height, width, device=device)
            score = torch.full((b,), float("nan"), device=device)
            x0, y0, w, h = chosen.long().unbind(1)

        if b > 0 and not cropped:  # Kornia hands a skipped batch back as it came, whatever ``size`` says
            out_h, out_w = height, width
        elif self.flags["size"] is not None:
            out_h, out_w = self.flags["size"]
        elif b == 0:
            out_h, out_w = _largest_crop_size(height, width, ratio)
        else:
            sizes = torch.unique(torch.stack([h, w], 1), dim=0)
            if len(sizes) > 1:
                listed = ", ".join(f"{int(hw[1])}x{int(hw[0])}" for hw in sizes[:4])
                raise ValueError(
                    f"the chosen crops differ in size across the batch ({listed}, width x height): pass "
                    "size=(height, width) to resize them to one size, or same_on_batch=True"
                )
            out_h, out_w = int(sizes[0, 0]), int(sizes[0, 1])

        zeros = torch.zeros(b, dtype=torch.float32, device=device)
        params["src"] = _corners(x0.float(), y0.float(), w.float(), h.float())
        params["dst"] = _corners(
            zeros, zeros, torch.full((b,), float(out_w), device=device), torch.full((b,), float(out_h), device=device)
        )
        params["input_size"] = torch.tensor([height, width], dtype=torch.long).expand(b, 2).clone()
        params["output_size"] = torch.tensor([out_h, out_w], dtype=torch.long).expand(b, 2).clone()
        params["crop_box"] = chosen.clone()
        params["crop_score"] = score
        return params

    def _table_candidates(self, images: Tensor, keys: Optional[Union[Tensor, Sequence[Any]]]) -> Tuple[Tensor, Tensor]:
        """The table's candidates of each image, (B, k, 4) boxes in its pixels and (B, k) scores, on the
        images' device; images the table lacks are scored and added first (a lazy table) or raise."""
        table, ratio = self.table, self.flags["ratio"]
        size = (int(images.shape[-2]), int(images.shape[-1]))
        ids = table.keys_of(images, keys)
        names = keys if table.keys == "path" else None  # errors name the paths given, not their hashes
        found, boxes, scores = table.lookup(ids, size, ratio, names)
        if not bool(found.all()):
            miss = (~found).nonzero().flatten()
            if not table.lazy:
                raise table.missing(ids[miss], size, ratio, names and [names[i] for i in miss.tolist()])
            table.fill(self.cropper(images.device), list(images[miss.to(images.device)]), ids[miss])
            found, boxes, scores = table.lookup(ids, size, ratio, names)
        return boxes.to(images.device), scores.to(images.device)

    def _pick(self, boxes: Tensor, scores: Tensor, draw: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """:func:`~s2c_kornia.sampling.pick_candidates` with this augmentation's settings."""
        return pick_candidates(boxes, scores, draw, self.flags["top_k"], self.flags["temperature"], self.same_on_batch)

    # -- the transformation ----------------------------------------------------------------------
    def compute_transformation(self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any]) -> Tensor:
        """The (B, 3, 3) matrix taking input pixels to output pixels: the ``src`` corners onto ``dst``'s
        (a scale and a translation, as ``get_perspective_transform`` gives for these boxes)."""
        if "src" not in params or "dst" not in params:
            raise RuntimeError(
                "AestheticCrop chooses its crops from the image: call it on the image first, or pass the "
                "params of an earlier call"
            )
        dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
        src = params["src"].to(input.device, dtype)
        dst = params["dst"].to(input.device, dtype)
        scale = (dst[:, 2] - dst[:, 0]) / (src[:, 2] - src[:, 0])  # (B, 2): x and y
        shift = dst[:, 0] - scale * src[:, 0]
        matrix = torch.zeros(src.shape[0], 3, 3, device=input.device, dtype=dtype)
        matrix[:, 0, 0], matrix[:, 1, 1] = scale[:, 0], scale[:, 1]
        matrix[:, :2, 2] = shift
        matrix[:, 2, 2] = 1
        return matrix.to(input.dtype)

    def _output_size(self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any]) -> Tuple[int, int]:
        if flags["size"] is not None:
            return tuple(flags["size"])
        out = params["output_size"]
        if len(out) == 0:  # an empty batch gets the size of the largest crop of the ratio
            return _largest_crop_size(input.shape[-2], input.shape[-1], flags["ratio"])
        return int(out[0, 0]), int(out[0, 1])

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:
        size = self._output_size(input, params, flags)
        if input.shape[0] == 0:
            return input.new_zeros(0, input.shape[1], *size)
        if flags["cropping_mode"] == "resample":
            return _resample(input, transform, size, flags, "zeros")
        if flags["cropping_mode"] == "slice":
            mode = "nearest-exact" if flags["resample"] == Resample.NEAREST else flags["resample"].name.lower()
            align_corners = None if mode.startswith("nearest") else flags["align_corners"]
            return crop_by_indices(input, params["src"], size, interpolation=mode, align_corners=align_corners)
        raise NotImplementedError(f"Not supported type: {flags['cropping_mode']}.")

    def inverse_transform(
        self,
        input: Tensor,
        flags: Dict[str, Any],
        transform: Optional[Tensor] = None,
        size: Optional[Tuple[int, int]] = None,
    ) -> Tensor:
        if not isinstance(size, tuple):
            raise TypeError(f"Expected the size be a tuple. Got {type(size)}")
        return _resample(input, transform, size, flags, flags["padding_mode"])
