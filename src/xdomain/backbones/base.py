"""f: what every frozen source model shares, whatever its domain (language, speech, vision).

A backbone is frozen (``requires_grad=False`` on every weight), stays in eval mode whatever its caller
asks (dropout and batch-norm statistics never change), and can describe itself for a checkpoint
(:meth:`FrozenBackbone.spec`, with a weight fingerprint so that trained parts are never loaded onto
another model).

Classifier backbones (speech, vision) also say what they take and what they give:

- ``input_kind``: ``"waveform"`` (``(B, T)`` float samples at ``sample_rate``, ``T = input_length``) or
  ``"image"`` (``(B, 3, image_size, image_size)`` pixels in ``[0, 1]``; the backbone applies its own
  normalisation);
- ``output_kind``: ``"logits"`` (scores over ``num_outputs`` source classes, for label mapping) or
  ``"embedding"`` (a ``num_outputs``-wide feature vector, for a linear head);
- ``source_labels``: names of the source classes where known (``None`` otherwise).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from typing import Any

import torch
from torch import nn


def weights_fingerprint(module: nn.Module, header: str = "") -> str:
    """A short hash of ``header`` and a strided sample (about 256 values) of every weight and buffer.

    Enough to tell two models apart, without hashing hundreds of megabytes at every save and load."""
    h = hashlib.sha256()
    h.update(header.encode())
    tensors = list(module.named_parameters()) + list(module.named_buffers())
    for name, p in tensors:
        flat = p.detach().reshape(-1)
        if flat.numel() == 0:
            continue
        sample = flat[:: max(1, flat.numel() // 256)].float().cpu()
        h.update(name.encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()[:16]


def package_file(package: str, *relative: str, install: str) -> str:
    """The path of a data file shipped inside an installed package, found without importing it.

    Several model packages import heavy or broken dependencies at import time; only their weight files
    are needed. ``install`` is the pip command that provides the package (quoted in the error)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"this backbone needs the package {package!r}, which is not installed: {install}")
    root = next(iter(spec.submodule_search_locations))
    path = os.path.join(root, *relative)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"package {package!r} is installed at {root} but has no {os.path.join(*relative)}"
        )
    return path


class FrozenBackbone(nn.Module):
    """Base class of the frozen classifier backbones (speech, vision).

    Subclasses build their network in ``__init__``, call :meth:`freeze` at its end, and set the class
    attributes below. ``forward`` takes the input described by ``input_kind`` and returns
    ``(B, num_outputs)``.
    """

    frozen = True
    input_kind: str = "waveform"  # "waveform" | "image"
    output_kind: str = "logits"  # "logits" | "embedding"
    num_outputs: int = 0
    sample_rate: int | None = None  # waveform backbones
    input_length: int | None = None  # waveform backbones: samples per clip
    image_size: int | None = None  # image backbones
    source_labels: list[str] | None = None

    def __init__(self, name: str = "custom") -> None:
        super().__init__()
        self.name = name

    def freeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenBackbone:
        # frozen: dropout and batch-norm statistics stay fixed whatever the caller asks
        return super().train(False)

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenBackbone:
        # frozen and eval-locked: a copy could never differ, so copies (scikit-learn's clone in a grid
        # search) share this one instead of duplicating its weights
        return self

    def fingerprint(self) -> str:
        return weights_fingerprint(self, f"{type(self).__name__}|{self.num_outputs}")

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.input_kind,
            "name": self.name,
            "num_layers": None,
            "fingerprint": self.fingerprint(),
        }

    def check_input(self, x: torch.Tensor) -> None:
        """A clear error for input of the wrong shape."""
        if self.input_kind == "waveform":
            if x.ndim != 2 or (self.input_length is not None and x.shape[1] != self.input_length):
                raise ValueError(
                    f"{self.name} expects waveforms (B, {self.input_length}) at {self.sample_rate} Hz, "
                    f"got shape {tuple(x.shape)}"
                )
        elif x.ndim != 4 or x.shape[1] != 3 or (
            self.image_size is not None and tuple(x.shape[2:]) != (self.image_size, self.image_size)
        ):
            raise ValueError(
                f"{self.name} expects images (B, 3, {self.image_size}, {self.image_size}), "
                f"got shape {tuple(x.shape)}"
            )


__all__ = ["FrozenBackbone", "package_file", "weights_fingerprint"]
