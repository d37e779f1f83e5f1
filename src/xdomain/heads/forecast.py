"""O: the forecasting output head of Time-LLM (a flatten head)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xdomain.registry import HEADS


@HEADS.register("flatten")
class FlattenHead(nn.Module):
    """O: keep the last ``n_positions`` hidden states and their first ``d_ff`` features, flatten, project.

    Args:
        horizon: output length H.
        d_ff: features kept per position (Time-LLM: 128; capped at the backbone's hidden size).
        dropout: after the projection.
        zero_init: start the projection at zero (a correction head: the model it corrects is unchanged
            until training moves it).

    Shapes:
        - input: ``(B', S, hidden_size)`` -> output: ``(B', H)``
    """

    def __init__(self, horizon: int, d_ff: int = 128, dropout: float = 0.1, zero_init: bool = False) -> None:
        super().__init__()
        self.horizon = horizon
        self.zero_init = zero_init
        self.d_ff = d_ff
        self.dropout = dropout
        self.bound = False

    def bind(self, backbone: Any, n_positions: int | None = None, **context: Any) -> FlattenHead:
        """Size the head: ``n_positions`` tokens, or as many as the bound ``transform`` of the context
        makes from ``lookback`` steps (``transform.num_tokens(lookback)``)."""
        if self.bound:
            return self
        if n_positions is None:
            transform, lookback = context.get("transform"), context.get("lookback")
            count = getattr(transform, "num_tokens", None)
            if lookback is None or count is None:
                raise ValueError(
                    "FlattenHead needs n_positions, or lookback= and a transform with num_tokens(lookback); "
                    f"got lookback={lookback!r} and a {type(transform).__name__}"
                )
            n_positions = int(count(lookback))
        self.features = min(self.d_ff, backbone.hidden_size)
        self.n_positions = n_positions
        self.linear = nn.Linear(self.features * n_positions, self.horizon)
        if self.zero_init:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)
        self.drop = nn.Dropout(self.dropout)
        self.bound = True
        return self

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if not self.bound:
            raise RuntimeError("FlattenHead is not bound to a backbone; call bind(backbone, n_positions=...)")
        h = hidden[:, -self.n_positions :, : self.features]  # (B', P, d_ff)
        return self.drop(self.linear(h.reshape(h.shape[0], -1)))  # (B', H)


__all__ = ["FlattenHead"]
