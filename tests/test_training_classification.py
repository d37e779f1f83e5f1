"""The trainer's cross-entropy path (classes and tokens), penalties and epoch callbacks; the Reprogrammer's
attention-mask path (padding trimmed per batch, token outputs padded back). Values by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from xdomain.config import TrainConfig
from xdomain.parts import Part
from xdomain.reprogrammer import Reprogrammer
from xdomain.training.losses import IGNORE_INDEX, compute_loss, model_penalty
from xdomain.training.trainer import Trainer

QUIET = TrainConfig(progress=False, seed=3, epochs=2, batch_size=2, lr=0.1, patience=5)


def test_cross_entropy_over_tokens_ignores_unscored_positions_by_hand() -> None:
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0], [1.0, 3.0]]])  # (1, 3, 2)
    targets = torch.tensor([[0, IGNORE_INDEX, 1]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    expected -= math.log(math.exp(3) / (math.exp(1) + math.exp(3)))
    assert float(compute_loss("cross_entropy", logits, targets)) == pytest.approx(expected / 2)
    assert float(compute_loss("cross_entropy", logits, targets, reduction="sum")) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"scores \(\.\.\., C\) and labels"):
        compute_loss("cross_entropy", logits, torch.tensor([0, 1]))


def test_unknown_loss_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="loss must be one of"):
        Trainer(nn.Linear(2, 2), QUIET, loss="hinge")


def test_evaluate_reports_mean_cross_entropy_and_accuracy_by_hand() -> None:
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # logits = inputs
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    y = torch.tensor([0, 1, 1])  # the third is wrong
    result = Trainer(model, QUIET, loss="cross_entropy").evaluate(TensorDataset(x, y), batch_size=2)
    nll = [math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1)), math.log(1 + math.exp(3))]
    assert result["loss"] == pytest.approx(sum(nll) / 3, rel=1e-6)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["n"] == 3


class Penalised(nn.Module):
    """A linear layer whose weight carries an L1 penalty (as a sparse vocabulary map does)."""

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.weight = weight

    def penalty(self) -> torch.Tensor:
        return self.weight * self.lin.weight.abs().sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def test_penalties_are_summed_and_shrink_the_weights() -> None:
    outer = nn.Sequential(Penalised(0.5), nn.Identity(), Penalised(2.0))
    with torch.no_grad():
        for m in (outer[0], outer[2]):
            m.lin.weight.fill_(1.0)
    penalty = model_penalty(outer)
    assert penalty is not None and float(penalty.detach()) == pytest.approx(0.5 * 4 + 2.0 * 4)
    assert model_penalty(nn.Linear(2, 2)) is None
    x, y = torch.randn(8, 2), torch.randint(0, 2, (8,))
    plain, sparse = Penalised(0.0), Penalised(1.0)
    sparse.load_state_dict(plain.state_dict())
    for model in (plain, sparse):
        Trainer(model, QUIET, loss="cross_entropy").fit(TensorDataset(x, y))
    assert sparse.lin.weight.abs().sum() < plain.lin.weight.abs().sum()


def test_callbacks_run_before_every_epoch_with_the_unwrapped_model() -> None:
    seen: list[tuple[int, bool]] = []
    model = nn.Linear(2, 2)

    def callback(trainer: Trainer, epoch: int) -> None:
        seen.append((epoch, trainer.model is model))

    x, y = torch.randn(4, 2), torch.randint(0, 2, (4,))
    Trainer(model, QUIET, loss="cross_entropy", callbacks=[callback]).fit(TensorDataset(x, y))
    assert seen == [(0, True), (1, True)]


class MaskAdapter(nn.Module):
    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return ids, {"attention_mask": ids != 0}

    def decode(self, y: torch.Tensor, state: object) -> torch.Tensor:
        return y


class RecordingBackbone(nn.Module):
    """A sequence backbone stand-in (it has what xdomain.parts.SequenceBackbone asks)."""

    frozen = True
    hidden_size = 3

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.widths: list[int] = []

    @property
    def word_embeddings(self) -> torch.Tensor:
        return torch.zeros(5, 3)

    def spec(self) -> dict[str, str]:
        return {"name": "recording"}

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        assert tokens.shape[:2] == attention_mask.shape
        self.widths.append(int(tokens.shape[1]))
        return tokens * self.scale


class Embed(Part):
    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(5, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)


class TokenHead(Part):
    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return hidden[..., :2] + 1.0  # (B, L, 2), nonzero everywhere it is computed


def test_padding_columns_are_trimmed_and_token_outputs_padded_back() -> None:
    backbone = RecordingBackbone()
    model = Reprogrammer(backbone, Embed(), TokenHead(), adapter=MaskAdapter())
    ids = torch.tensor([[1, 2, 0, 0, 0], [3, 0, 0, 0, 0]])  # at most 2 real tokens, 5 columns
    out = model(ids)
    assert backbone.widths == [2]
    assert out.shape == (2, 5, 2)
    assert torch.all(out[:, 2:] == 0) and torch.all(out[0, :2] != 0)
    assert not backbone.scale.requires_grad  # frozen by the Reprogrammer
