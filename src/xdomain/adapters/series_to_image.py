"""Domain adapter: univariate series as images for a frozen vision model.

Two renderings, both per series and both in ``[0, 1]`` (a vision backbone applies its own pixel
normalisation):

- ``"gasf"``: the Gramian angular summation field (Wang & Oates, "Imaging time-series to improve
  classification and imputation", IJCAI 2015). The series is min-max scaled to ``[-1, 1]``, read as
  angles ``phi = arccos(x)``, and pixel ``(i, j)`` is ``cos(phi_i + phi_j) = x_i x_j - sqrt(1 - x_i^2)
  sqrt(1 - x_j^2)``, mapped from ``[-1, 1]`` to ``[0, 1]``. The ``L x L`` field is resized to
  ``size x size`` with bilinear interpolation (antialiased when shrinking, so long series do not alias).
- ``"line"``: a soft, differentiable line plot, dark on white, the way the series would be drawn on
  paper. The series is min-max scaled to ``[0, 1]`` (bottom to top). Each of the ``size`` columns covers
  a stretch of the time axis; the line in that column spans the range from the lowest to the highest
  value the (linearly interpolated) series takes over that stretch, so steep slopes stay connected.
  A pixel's darkness is ``exp(-d^2 / 2)``, ``d`` its vertical distance to that range in pixels (a line
  about two pixels wide). Every step is differentiable in the series values.

A constant series maps to the middle of the range (GASF: an all-zero image; line: a flat line halfway up).

Shapes:
    - encode: ``(B, L)`` -> ``(B, 3, size, size)`` in ``[0, 1]`` (the three channels equal)
    - decode: any -> unchanged
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xdomain.registry import ADAPTERS

METHODS = ("gasf", "line")


def _min_max(x: torch.Tensor) -> torch.Tensor:
    """Each row scaled to ``[0, 1]``; a constant row becomes 0.5."""
    lo = x.amin(dim=1, keepdim=True)
    span = x.amax(dim=1, keepdim=True) - lo
    flat = span <= 0
    scaled = (x - lo) / torch.where(flat, torch.ones_like(span), span)
    return torch.where(flat, torch.full_like(x, 0.5), scaled).clamp(0.0, 1.0)


def gasf(x: torch.Tensor, size: int) -> torch.Tensor:
    """Gramian angular summation field of each row, in ``[0, 1]``: ``(B, L)`` -> ``(B, size, size)``."""
    u = 2.0 * _min_max(x) - 1.0  # (B, L) in [-1, 1]
    # the floor keeps sqrt's gradient finite at u = +-1 (the series' own minimum and maximum)
    s = (1.0 - u * u).clamp_min(torch.finfo(x.dtype).tiny).sqrt()  # sin(phi), (B, L)
    field = u[:, :, None] * u[:, None, :] - s[:, :, None] * s[:, None, :]  # (B, L, L)
    image = (field + 1.0) / 2.0
    if image.shape[-1] != size:
        shrink = image.shape[-1] > size
        image = F.interpolate(
            image[:, None], size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
        )[:, 0]
    return image.clamp(0.0, 1.0)  # (B, size, size)


def soft_line(x: torch.Tensor, size: int) -> torch.Tensor:
    """A soft line plot of each row, dark on white, in ``[0, 1]``: ``(B, L)`` -> ``(B, size, size)``."""
    b, length = x.shape
    v = _min_max(x)  # (B, L) in [0, 1], 0 at the bottom
    # the series at the size + 1 column edges, linearly interpolated
    pos = torch.linspace(0.0, length - 1.0, size + 1, device=x.device, dtype=x.dtype)  # (size+1,)
    i0 = pos.floor().long().clamp(max=length - 1)
    i1 = (i0 + 1).clamp(max=length - 1)
    frac = pos - i0.to(x.dtype)
    edges = v[:, i0] * (1.0 - frac) + v[:, i1] * frac  # (B, size+1)
    lo = torch.minimum(edges[:, :-1], edges[:, 1:])  # (B, size)
    hi = torch.maximum(edges[:, :-1], edges[:, 1:])
    # samples that fall inside a column widen its range (peaks between two edges)
    column = (torch.arange(length, device=x.device, dtype=x.dtype) * size / max(length - 1, 1)).long()
    column = column.clamp(max=size - 1).expand(b, length)  # (B, L)
    lo = lo.scatter_reduce(1, column, v, reduce="amin", include_self=True)
    hi = hi.scatter_reduce(1, column, v, reduce="amax", include_self=True)
    rows = 1.0 - (torch.arange(size, device=x.device, dtype=x.dtype) + 0.5) / size  # (size,) top row first
    y = rows[None, :, None]  # (1, size, 1)
    d = (F.relu(lo[:, None, :] - y) + F.relu(y - hi[:, None, :])) * size  # (B, size, size) in pixels
    return 1.0 - torch.exp(-0.5 * d * d)


@ADAPTERS.register("series-to-image")
class SeriesToImageAdapter(nn.Module):
    """Domain adapter: each series rendered as a ``size x size`` RGB image (GASF or a soft line plot).

    Args:
        size: image side in pixels (a vision backbone's ``image_size``, or smaller for a visual prompt).
        method: ``"gasf"`` or ``"line"`` (see the module docstring).

    Shapes:
        - encode: ``(B, L)`` -> ``(B, 3, size, size)`` in ``[0, 1]``, and no state (None)
        - decode: any -> unchanged
    """

    def __init__(self, size: int = 112, method: str = "gasf") -> None:
        super().__init__()
        self.size = size
        self.method = method

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size <= 0:
            raise ValueError(f"size must be a positive int, got {self.size!r}")
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or not x.is_floating_point() or x.shape[1] == 0:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"series batch must be a float tensor (B, L) with L >= 1, got {shape}")
        if not torch.isfinite(x).all():
            raise ValueError("series batch holds NaN or infinite values; impute or clean them first")
        image = gasf(x, self.size) if self.method == "gasf" else soft_line(x, self.size)  # (B, S, S)
        return image[:, None].expand(-1, 3, -1, -1).contiguous(), None  # (B, 3, S, S)

    def decode(self, y: Any, state: Any = None) -> Any:
        return y


__all__ = ["METHODS", "SeriesToImageAdapter", "gasf", "soft_line"]
