"""f: frozen masked language models that also give their masked-LM logits over the source vocabulary.

ReprogBERT (Melnyk et al., ICML 2023) reads the frozen model's masked-LM output: the last hidden state
goes through the model's own MLM head to logits over the English vocabulary, and a trained ``gamma``
(:class:`xdomain.heads.vocab_projection.VocabProjectionHead`) maps those logits onto amino acids.

:class:`MaskedLanguageBackbone` is a :class:`~xdomain.backbones.language.LanguageBackbone` (same
``forward``, ``word_embeddings``, ``spec``) that also carries the MLM head:
:meth:`MaskedLanguageBackbone.source_logits` maps hidden states to ``(B, L, V)`` logits.

Some checkpoints have no trained MLM head. The bundled MiniLM is a sentence-transformers checkpoint: it
holds the BERT encoder only, and loading it with ``AutoModelForMaskedLM`` reports every
``cls.predictions.*`` weight as missing (newly initialised at random). For those the backbone falls back
to the *tied decoder*, ``logits = hidden @ E^T`` with ``E`` the frozen input word embeddings: BERT ties
its decoder to the word embeddings, so this is the trained part of the head (it lacks only the
dense + GELU + LayerNorm transform and the output bias), and ``has_mlm_head`` is ``False``. A random head
is never used.

AntiBERTy (Ruffolo et al. 2021, ``antiberty==0.1.3``) is a BERT masked LM trained on antibody sequences
(vocabulary: 5 special tokens and the 20 amino acids); it reads proteins natively and serves as the
masked-infilling baseline beside reprogrammed English models (:func:`antiberty_token_ids`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xdomain.backbones.base import package_file, weights_fingerprint
from xdomain.backbones.language import ALIASES as LANGUAGE_ALIASES
from xdomain.backbones.language import LanguageBackbone
from xdomain.registry import BACKBONES

ANTIBERTY_INSTALL = 'pip install "xdomain[proteins]"'
ALIASES = ("minilm", "antiberty")
# IUPAC codes for ambiguous or non-standard residues: AntiBERTy has no token for them, only [UNK]
AMBIGUOUS_RESIDUES = "XBZUOJ"
MASK_CHAR = "_"  # AntiBERTy's own convention for a residue to infill


class MaskedLanguageBackbone(LanguageBackbone):
    """f: a frozen masked language model with its MLM head (or the tied decoder where it has none).

    Args:
        model: a ``transformers`` masked-LM model (``*ForMaskedLM``), or a base model (no head: the tied
            decoder is used).
        tokenizer: its tokenizer.
        name: how the model was named (alias, hub name or path).
        num_layers: keep only the first ``k`` transformer layers (None: all); the head reads the last kept.
        has_mlm_head: whether the model's MLM head holds trained weights. ``None``: yes when the model
            has a head module. Pass ``False`` when the checkpoint lacked the head's weights
            (:func:`load_masked_lm` finds out from the loading report).

    Attributes:
        has_mlm_head: ``True``: :meth:`source_logits` runs the model's own head; ``False``: the tied
            decoder ``hidden @ E^T``.

    Shapes:
        - forward: inputs_embeds ``(B, S, D)``, attention_mask ``(B, S)`` -> last hidden state ``(B, S, D)``
        - :meth:`source_logits`: ``(B, S, D)`` -> ``(B, S, V)``
    """

    mlm_head: nn.Module | None

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        name: str = "custom",
        num_layers: int | None = None,
        has_mlm_head: bool | None = None,
    ) -> None:
        super().__init__(model, tokenizer, name=name, num_layers=num_layers)
        base = getattr(model, "base_model", model)
        # a base model (BertModel) is its own base_model and has no head beside it
        heads = [] if base is model else [child for _, child in model.named_children() if child is not base]
        head: nn.Module | None = heads[0] if len(heads) == 1 else None
        if head is None and len(heads) > 1:
            if has_mlm_head:
                raise ValueError(
                    f"could not tell which of the {len(heads)} modules beside the encoder of "
                    f"{type(model).__name__} is its MLM head; expected one (BERT's `cls`, RoBERTa's "
                    "`lm_head`)"
                )
            warnings.warn(
                f"{type(model).__name__} has {len(heads)} modules beside its encoder, not one MLM head; "
                "source_logits uses the tied decoder hidden @ E^T instead",
                stacklevel=2,
            )
        elif head is None and has_mlm_head:
            raise ValueError(f"has_mlm_head=True but {type(model).__name__} has no MLM head (a base model)")
        if has_mlm_head is None:
            has_mlm_head = head is not None
        self.has_mlm_head = bool(has_mlm_head) and head is not None
        if self.has_mlm_head and head is not None:
            for p in head.parameters():
                p.requires_grad_(False)
            head.eval()
            self.mlm_head = head
        else:
            # an untrained (randomly initialised) head would feed noise to gamma: drop it
            self.mlm_head = None

    def train(self, mode: bool = True) -> MaskedLanguageBackbone:
        super().train(mode)
        if self.mlm_head is not None:
            self.mlm_head.eval()  # frozen: dropout stays off whatever the caller asks
        return self

    def source_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Masked-LM logits over the source vocabulary: ``(B, L, D)`` hidden states -> ``(B, L, V)``."""
        if hidden.ndim < 2 or hidden.shape[-1] != self.hidden_size:
            raise ValueError(f"hidden must be (B, L, {self.hidden_size}), got {tuple(hidden.shape)}")
        if self.mlm_head is not None:
            logits: torch.Tensor = self.mlm_head(hidden)
            return logits
        emb = self.word_embeddings
        return F.linear(hidden, emb.to(hidden.dtype))  # tied decoder: (B, L, D) @ (D, V) -> (B, L, V)

    def mlm_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids of the source vocabulary ``(B, L)`` -> masked-LM logits ``(B, L, V)``."""
        hidden = self(self.embed_ids(input_ids), attention_mask)  # (B, L, D)
        return self.source_logits(hidden)

    def fingerprint(self) -> str:
        """The encoder's fingerprint, and the MLM head's weights where it has a trained one."""
        base = super().fingerprint()
        if self.mlm_head is None:
            # the tied decoder reads only encoder weights: same function as the encoder alone
            return base
        return weights_fingerprint(self.mlm_head, f"{base}|mlm-head")

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "kind": "masked-language", "has_mlm_head": self.has_mlm_head}


# -- AntiBERTy -------------------------------------------------------------------------------------
def _antiberty_dir() -> str:
    return package_file("antiberty", "trained_models", install=ANTIBERTY_INSTALL)


@lru_cache(maxsize=1)
def _antiberty_vocab() -> dict[str, int]:
    path = os.path.join(_antiberty_dir(), "vocab.txt")
    with open(path, encoding="utf-8") as f:
        tokens = [line.strip() for line in f if line.strip()]
    return {tok: i for i, tok in enumerate(tokens)}


def antiberty_tokenizer() -> Any:
    """AntiBERTy's tokenizer: one token per residue, residues separated by spaces (``"E V Q L"``).

    transformers 5 ignores ``BertTokenizer(vocab_file=...)``, so the vocabulary is read here and passed
    as a dict."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab=dict(_antiberty_vocab()), do_lower_case=False)


def antiberty_token_ids(sequence: str, add_special_tokens: bool = True) -> list[int]:
    """Amino acids -> ids of AntiBERTy's own vocabulary (its tokenizer would need spaces between residues).

    ``_`` becomes ``[MASK]`` (AntiBERTy's convention for a residue to infill); the ambiguous or
    non-standard residue codes ``X B Z U O J`` become ``[UNK]``; with ``add_special_tokens`` the ids are
    wrapped in ``[CLS] ... [SEP]`` as AntiBERTy saw them in training. Any other character is an error.
    """
    if not isinstance(sequence, str):
        raise TypeError(
            f"sequence must be a str of one-letter amino-acid codes, got {type(sequence).__name__}"
        )
    vocab = _antiberty_vocab()
    ids = []
    for pos, char in enumerate(sequence):
        if char == MASK_CHAR:
            ids.append(vocab["[MASK]"])
        elif char in AMBIGUOUS_RESIDUES:
            ids.append(vocab["[UNK]"])
        elif char in vocab and not char.startswith("["):
            ids.append(vocab[char])
        else:
            residues = "".join(sorted(t for t in vocab if not t.startswith("[")))
            raise ValueError(
                f"unexpected character {char!r} at position {pos} of the sequence: expected an upper-case "
                f"amino acid ({residues}), one of {AMBIGUOUS_RESIDUES!r} (read as [UNK]) or {MASK_CHAR!r} "
                "(a masked residue)"
            )
    if add_special_tokens:
        ids = [vocab["[CLS]"], *ids, vocab["[SEP]"]]
    return ids


# -- loading ---------------------------------------------------------------------------------------
def _not_a_load_report(record: logging.LogRecord) -> bool:
    msg = str(record.msg)
    # the report itself, and (MiniLM) the note that the untied head bias is absent from the checkpoint
    return "LOAD REPORT" not in msg and "seem corrupted" not in msg


@contextlib.contextmanager
def _quiet_load_report() -> Iterator[None]:
    """For the bundled aliases the loading report is known in advance (MiniLM: no MLM head weights;
    AntiBERTy: its extra species/chain heads) and handled here (``has_mlm_head``), so it is not printed
    as a warning; other models keep the full report.

    A filter, not a log level: transformers runs extra checks (and logs more) when that logger's level
    is raised."""
    logger = logging.getLogger("transformers.modeling_utils")
    logger.addFilter(_not_a_load_report)
    try:
        yield
    finally:
        logger.removeFilter(_not_a_load_report)


def _head_weights_missing(model: Any, info: dict[str, Any]) -> bool:
    prefix = f"{model.base_model_prefix}."
    return any(not key.startswith(prefix) for key in info.get("missing_keys", ()))


def load_masked_lm(
    name: str = "minilm",
    num_layers: int | None = None,
    trust_remote_code: bool = False,
    *,
    torch_dtype: torch.dtype | None = None,
) -> MaskedLanguageBackbone:
    """Load a frozen masked LM by alias, hub name or local path.

    Aliases: ``"minilm"`` (the bundled MiniLM, no trained MLM head: tied decoder) and ``"antiberty"``
    (AntiBERTy 0.1.3, from the weights inside the ``antiberty`` package, which is not imported).
    Anything else goes to ``AutoModelForMaskedLM.from_pretrained``; whether the checkpoint held the MLM
    head's weights is read from the loading report (``has_mlm_head``).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"masked LM must be a non-empty string, got {name!r}")
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertForMaskedLM

    # typed loosely: transformers ships no stubs, and with output_loading_info it returns a pair
    auto_masked_lm: Any = AutoModelForMaskedLM
    bert_masked_lm: Any = BertForMaskedLM

    key = name.lower()
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "output_loading_info": True}
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype
    if key == "antiberty":
        folder = os.path.join(_antiberty_dir(), "AntiBERTy_md_smooth")
        with _quiet_load_report():
            model, info = bert_masked_lm.from_pretrained(folder, **kwargs)
        tokenizer = antiberty_tokenizer()
    else:
        path = LANGUAGE_ALIASES[key]() if key == "minilm" else name
        quiet = _quiet_load_report() if key == "minilm" else contextlib.nullcontext()
        try:
            with quiet:
                model, info = auto_masked_lm.from_pretrained(path, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            local = os.path.isdir(path)
            raise ValueError(
                f"unknown masked LM {name!r}: expected an alias {list(ALIASES)}, "
                "a local folder or a transformers hub name of a masked language model reachable from here"
                + (" (the folder exists but does not hold a loadable masked LM)" if local else "")
                + f"; loading failed with: {err}"
            ) from err
    has_head = not _head_weights_missing(model, info)
    return MaskedLanguageBackbone(model, tokenizer, name=name, num_layers=num_layers, has_mlm_head=has_head)


BACKBONES.register("antiberty")(lambda num_layers=None: load_masked_lm("antiberty", num_layers))
BACKBONES.register("masked-lm")(load_masked_lm)

__all__ = [
    "ALIASES",
    "AMBIGUOUS_RESIDUES",
    "MASK_CHAR",
    "MaskedLanguageBackbone",
    "antiberty_token_ids",
    "antiberty_tokenizer",
    "load_masked_lm",
]
