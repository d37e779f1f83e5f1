"""c: Prompt-as-Prefix (Time-LLM), built in batch tensors.

The prompt names the data, the task and statistics of each input series::

    Dataset description: <description> Task description: forecast the next <H> steps given the previous
    <L> steps information; Input statistics: min value <v>, max value <v>, median value <v>, the trend of
    input is <upward|downward>, top <k> lags are : <lag>, <lag>, ...

The official code formats this string per series in a Python loop and runs the tokenizer on every
batch. Here the constant text is tokenised and embedded once (:meth:`PromptAsPrefix.bind`), and each
number is written digit by digit with single-token digits (``+01.234``; lags zero-padded to a fixed
width), so every prompt in a batch has the same length and is assembled by tensor arithmetic. Values
are those of the normalised input, clamped to +-99.999.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xdomain.registry import TRANSFORMS

_INT_DIGITS = 2
_FRAC_DIGITS = 3
_VALUE_TOKENS = 1 + _INT_DIGITS + 1 + _FRAC_DIGITS  # sign, digits, point, digits


def series_statistics(z: torch.Tensor, top_k: int) -> dict[str, torch.Tensor]:
    """Min, max, median, trend (+1/-1) and the ``top_k`` autocorrelation lags of each row of ``z``.

    Lags are taken from 1 to L // 2 (lag 0 is always the maximum and carries no information; the
    official code includes it). Shapes: ``z (B', L)`` -> each ``(B',)`` and lags ``(B', top_k)``.
    """
    length = z.shape[-1]
    spectrum = torch.fft.rfft(z.float(), dim=-1)
    corr = torch.fft.irfft(spectrum * torch.conj(spectrum), n=length, dim=-1)  # (B', L) circular autocorr.
    max_lag = max(length // 2, 1)
    k = min(top_k, max_lag)
    lags = torch.topk(corr[:, 1 : max_lag + 1], k, dim=-1).indices + 1  # (B', k)
    return {
        "min": z.min(dim=-1).values,
        "max": z.max(dim=-1).values,
        "median": z.median(dim=-1).values,
        "trend": torch.where(z[:, -1] - z[:, 0] > 0, 1, -1),
        "lags": lags,
    }


@TRANSFORMS.register("prompt-as-prefix")
class PromptAsPrefix(nn.Module):
    """c: a fixed-format text prefix with per-series statistics, embedded by the frozen backbone.

    Args:
        description: one or two sentences about the data set.
        lookback, horizon: quoted in the task description.
        top_k_lags: how many autocorrelation lags to quote.

    Shapes:
        - input: ``(B', L)`` normalised series
        - output: ``(B', S_prompt, hidden_size)`` (``S_prompt`` is the same for every series)
    """

    def __init__(self, description: str = "", lookback: int = 512, horizon: int = 96, top_k_lags: int = 5):
        super().__init__()
        self.description = description or "a collection of time series observed at regular intervals."
        self.lookback = lookback
        self.horizon = horizon
        self.top_k_lags = top_k_lags
        self.bound = False
        # buffers made by bind()
        self.digit_ids: torch.Tensor
        self.trend_ids: torch.Tensor
        self.template_embeddings: torch.Tensor
        self.var_positions: torch.Tensor
        self._source: tuple[Any, ...] = ()

    def _single_token(self, backbone: Any, text: str) -> int:
        ids = backbone.token_ids(text)
        if len(ids) != 1:
            raise ValueError(
                f"the backbone's tokenizer splits {text!r} into {len(ids)} tokens; Prompt-as-Prefix needs "
                "single-token digits and signs (disable the prompt for this backbone)"
            )
        return ids[0]

    def bind(self, backbone: Any, **context: Any) -> PromptAsPrefix:
        del context
        if self.bound:
            return self
        digits = [self._single_token(backbone, str(d)) for d in range(10)]
        self.register_buffer("digit_ids", torch.tensor(digits), persistent=False)
        self.point_id = self._single_token(backbone, ".")
        self.sign_ids = (self._single_token(backbone, "+"), self._single_token(backbone, "-"))
        self.comma_id = self._single_token(backbone, ",")
        for up, down in (("upward", "downward"), ("up", "down"), ("rising", "falling")):
            up_ids, down_ids = backbone.token_ids(" " + up), backbone.token_ids(" " + down)
            if len(up_ids) == len(down_ids):
                break
        else:  # pragma: no cover - every tokenizer we know has one of these pairs
            raise ValueError("no trend words of equal token length for this tokenizer")
        self.register_buffer("trend_ids", torch.tensor([up_ids, down_ids]), persistent=False)
        self.lag_width = len(str(self.lookback))
        k = min(self.top_k_lags, max(self.lookback // 2, 1))

        # the constant text, between the variable slots
        texts = [
            f"Dataset description: {self.description} Task description: forecast the next "
            f"{self.horizon} steps given the previous {self.lookback} steps information; "
            "Input statistics: min value",
            ", max value",
            ", median value",
            ", the trend of input is",
            f", top {k} lags are :",
            ".",
        ]
        pieces = [backbone.token_ids(t) for t in texts]
        slots = [_VALUE_TOKENS, _VALUE_TOKENS, _VALUE_TOKENS, len(up_ids), k * (self.lag_width + 1) - 1]
        template: list[int] = []
        var_pos: list[int] = []
        for piece, slot in zip(pieces[:-1], slots, strict=True):
            template += piece
            var_pos += range(len(template), len(template) + slot)
            template += [0] * slot
        template += pieces[-1]
        ids = torch.tensor(template)
        with torch.no_grad():
            const_emb = backbone.embed_ids(ids.to(backbone.word_embeddings.device)).detach()  # (S_p, D)
        # constant parts: embedded once here, never re-tokenised
        self.register_buffer("template_embeddings", const_emb, persistent=False)
        self.register_buffer("var_positions", torch.tensor(var_pos), persistent=False)
        self._source = (backbone,)  # outside the module tree: see PatchReprogrammingTransform.bind
        self.num_lags = k
        self.bound = True
        return self

    @property
    def length(self) -> int:
        return int(self.template_embeddings.shape[0])

    def _value_ids(self, v: torch.Tensor) -> torch.Tensor:
        """``(B',)`` floats -> ``(B', 7)`` token ids of ``+dd.ddd``."""
        q = torch.round(v.abs().clamp(max=99.999) * 10**_FRAC_DIGITS).long()  # (B',)
        powers = 10 ** torch.arange(_INT_DIGITS + _FRAC_DIGITS - 1, -1, -1, device=v.device)
        digits = self.digit_ids[(q.unsqueeze(-1) // powers) % 10]  # (B', 5)
        sign = torch.where(v < 0, self.sign_ids[1], self.sign_ids[0]).unsqueeze(-1)
        point = torch.full_like(sign, self.point_id)
        return torch.cat([sign, digits[:, :_INT_DIGITS], point, digits[:, _INT_DIGITS:]], dim=-1)

    def _lag_ids(self, lags: torch.Tensor) -> torch.Tensor:
        """``(B', k)`` integers -> ``(B', k*(w+1)-1)`` ids of zero-padded lags separated by commas."""
        powers = 10 ** torch.arange(self.lag_width - 1, -1, -1, device=lags.device)
        digits = self.digit_ids[(lags.unsqueeze(-1) // powers) % 10]  # (B', k, w)
        comma = torch.full((*lags.shape, 1), self.comma_id, device=lags.device, dtype=digits.dtype)
        return torch.cat([digits, comma], dim=-1).flatten(1)[:, :-1]

    def token_ids(self, z: torch.Tensor) -> torch.Tensor:
        """The variable token ids of each series, ``(B', n_var)`` (for inspection and tests)."""
        stats = series_statistics(z, self.num_lags)
        trend = self.trend_ids[(stats["trend"] < 0).long()]  # (B', n_trend)
        return torch.cat(
            [
                self._value_ids(stats["min"]),
                self._value_ids(stats["max"]),
                self._value_ids(stats["median"]),
                trend,
                self._lag_ids(stats["lags"]),
            ],
            dim=-1,
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.bound:
            raise RuntimeError("PromptAsPrefix is not bound to a backbone; call bind(backbone)")
        var = self._source[0].embed_ids(self.token_ids(z.detach()))  # (B', n_var, D)
        out = self.template_embeddings.unsqueeze(0).expand(z.shape[0], -1, -1).clone()  # (B', S_p, D)
        out[:, self.var_positions] = var.to(out.dtype)
        return out


__all__ = ["PromptAsPrefix", "series_statistics"]
