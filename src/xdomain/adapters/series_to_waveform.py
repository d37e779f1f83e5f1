"""Domain adapter: univariate series as short "waveforms" for a frozen speech model (Voice2Series).

Voice2Series (Yang et al., ICML 2021) feeds each z-normalised UCR series to a keyword-spotting model as
if it were audio; where the series sits inside the model's input window, and the learned program around
it, are the transform's business (:class:`~xdomain.transforms.additive.AdditiveProgramTransform`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xdomain.registry import ADAPTERS


@ADAPTERS.register("series-to-waveform")
class SeriesToWaveformAdapter(nn.Module):
    """Domain adapter: z-normalise each series (population standard deviation); the answer passes unchanged.

    Args:
        normalise: z-normalise each series (mean 0, standard deviation 1; a constant series becomes
            zeros); ``False`` passes the values unchanged.

    Shapes:
        - encode: ``(B, L)`` -> ``(B, L)``, plus ``(mean, std)`` each ``(B, 1)`` (None when not normalising)
        - decode: any -> unchanged
    """

    def __init__(self, normalise: bool = True) -> None:
        super().__init__()
        self.normalise = normalise

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"series batch must be a float tensor (B, L), got {shape}")
        if torch.isnan(x).any():
            raise ValueError(
                "series batch holds NaN values (missing samples); impute them first "
                "(e.g. sklearn.impute or linear interpolation), the adapter does not guess them"
            )
        if not torch.isfinite(x).all():
            raise ValueError("series batch holds infinite values; expected finite values")
        if not self.normalise:
            return x, None
        mean = x.mean(dim=1, keepdim=True).detach()  # (B, 1)
        std = x.std(dim=1, keepdim=True, unbiased=False).detach()  # (B, 1)
        # a constant series has std 0: dividing by a tiny floor maps it to zeros instead of NaN
        return (x - mean) / std.clamp_min(torch.finfo(x.dtype).eps), (mean, std)

    def decode(self, y: Any, state: Any = None) -> Any:
        return y


__all__ = ["SeriesToWaveformAdapter"]
