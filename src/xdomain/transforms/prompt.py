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

``layout="constant-first"`` reorders the template so that all constant text comes first::

    Dataset description: <description> Task description: forecast the next <H> steps given the previous
    <L> steps information; Input statistics (min, max, median, trend, top <k> lags): <v>, <v>, <v>,
    <upward|downward>, <lag>, <lag>, ... .

so that its keys and values can be computed once (:attr:`PromptAsPrefix.constant_embeddings`, used by the
Reprogrammer with the backbone's prefix cache). ``stats`` says how the per-series part is given: as the
digits above, as ``soft_tokens`` learned soft tokens (a small MLP from the same statistics into the
embedding space), or not at all.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xdomain.config import PROMPT_STATS
from xdomain.registry import TRANSFORMS

PROMPT_LAYOUTS = ("interleaved", "constant-first")

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
        stats: ``"digits"``, ``"soft"`` or ``"off"`` (see the module docstring).
        layout: ``"interleaved"`` (Time-LLM's) or ``"constant-first"`` (needed by ``stats`` other than
            digits, and by a prefix cache).
        soft_tokens: the number of learned tokens of ``stats="soft"``.
        cache: whether a Reprogrammer should compute the constant text once through the backbone's
            prefix cache (``layout="constant-first"`` only).

    Shapes:
        - input: ``(B', L)`` normalised series
        - output: ``(B', S_prompt, hidden_size)`` (``S_prompt`` is the same for every series)
    """

    def __init__(
        self,
        description: str = "",
        lookback: int = 512,
        horizon: int = 96,
        top_k_lags: int = 5,
        stats: str = "digits",
        layout: str = "interleaved",
        soft_tokens: int = 4,
        cache: bool = False,
    ):
        super().__init__()
        if stats not in PROMPT_STATS:
            raise ValueError(f"stats must be one of {PROMPT_STATS}, got {stats!r}")
        if layout not in PROMPT_LAYOUTS:
            raise ValueError(f"layout must be one of {PROMPT_LAYOUTS}, got {layout!r}")
        if layout == "interleaved" and (stats != "digits" or cache):
            raise ValueError(
                f"layout='interleaved' writes the statistics as digits between constant text and cannot be "
                f"cached; got stats={stats!r}, cache={cache!r}: use layout='constant-first'"
            )
        if not isinstance(soft_tokens, int) or soft_tokens <= 0:
            raise ValueError(f"soft_tokens must be a positive integer, got {soft_tokens!r}")
        self.stats = stats
        self.layout = layout
        self.soft_tokens = soft_tokens
        self.cache = cache
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

        if self.layout == "constant-first":
            self._bind_constant_first(backbone, k)
            self._source = (backbone,)
            self.num_lags = k
            self.bound = True
            return self
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

    def _bind_constant_first(self, backbone: Any, k: int) -> None:
        fields = {"digits": f" (min, max, median, trend, top {k} lags):", "soft": ":", "off": "."}
        text = (
            f"Dataset description: {self.description} Task description: forecast the next {self.horizon} "
            f"steps given the previous {self.lookback} steps information; Input statistics"
            + fields[self.stats]
        )
        ids = torch.tensor(backbone.token_ids(text))
        with torch.no_grad():
            const_emb = backbone.embed_ids(ids.to(backbone.word_embeddings.device)).detach()  # (S_c, D)
        self.register_buffer("template_embeddings", const_emb, persistent=False)
        self.register_buffer("var_positions", torch.zeros(0, dtype=torch.long), persistent=False)
        if self.stats == "soft":
            # min, max, median, trend and the lags (as fractions of the lookback) -> soft tokens, scaled
            # like the word embeddings
            hidden = backbone.hidden_size
            self.stats_mlp = nn.Sequential(
                nn.Linear(4 + k, 64), nn.GELU(), nn.Linear(64, self.soft_tokens * hidden)
            )
            scale = float(backbone.word_embeddings.detach().float().std())
            self.register_buffer("soft_scale", torch.tensor(scale), persistent=False)

    @property
    def constant_embeddings(self) -> torch.Tensor | None:
        """The constant text's embeddings ``(S_c, D)`` when it all comes first (else None)."""
        return self.template_embeddings if self.layout == "constant-first" else None

    @property
    def num_series_tokens(self) -> int:
        """Tokens per series after the constant text (``layout="constant-first"``)."""
        if self.stats == "off":
            return 0
        if self.stats == "soft":
            return self.soft_tokens
        trend = int(self.trend_ids.shape[1])
        return 3 * (_VALUE_TOKENS + 1) + trend + 1 + self.num_lags * (self.lag_width + 1)

    @property
    def length(self) -> int:
        if self.layout == "constant-first":
            return int(self.template_embeddings.shape[0]) + self.num_series_tokens
        return int(self.template_embeddings.shape[0])

    def series_tokens(self, z: torch.Tensor) -> torch.Tensor:
        """The per-series part of a constant-first prompt, ``(B', num_series_tokens, D)``."""
        backbone = self._source[0]
        hidden = backbone.hidden_size
        if self.stats == "off":
            return z.new_zeros(z.shape[0], 0, hidden)
        stats = series_statistics(z.detach(), self.num_lags)
        if self.stats == "soft":
            feats = torch.cat(
                [
                    torch.stack(
                        [stats["min"], stats["max"], stats["median"], stats["trend"].to(z.dtype)], -1
                    ),
                    stats["lags"].to(z.dtype) / self.lookback,
                ],
                dim=-1,
            ).clamp(-100.0, 100.0)
            mlp: Any = self.stats_mlp
            out: torch.Tensor = mlp(feats.to(mlp[0].weight.dtype))
            scale: Any = self.soft_scale
            return out.view(z.shape[0], self.soft_tokens, hidden) * scale
        comma = torch.full((z.shape[0], 1), self.comma_id, device=z.device, dtype=torch.long)
        trend = self.trend_ids[(stats["trend"] < 0).long()]
        ids = torch.cat(
            [
                self._value_ids(stats["min"]), comma,
                self._value_ids(stats["max"]), comma,
                self._value_ids(stats["median"]), comma,
                trend, comma,
                self._lag_ids(stats["lags"]),
                torch.full_like(comma, self.point_id),
            ],
            dim=-1,
        )
        emb: torch.Tensor = backbone.embed_ids(ids)
        return emb

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
        if self.layout == "constant-first":
            series = self.series_tokens(z)
            const = self.template_embeddings.unsqueeze(0).expand(z.shape[0], -1, -1)
            return torch.cat([const.to(series.dtype), series], dim=1)
        var = self._source[0].embed_ids(self.token_ids(z.detach()))  # (B', n_var, D)
        out = self.template_embeddings.unsqueeze(0).expand(z.shape[0], -1, -1).clone()  # (B', S_p, D)
        out[:, self.var_positions] = var.to(out.dtype)
        return out


__all__ = ["PROMPT_LAYOUTS", "PromptAsPrefix", "series_statistics"]
