"""I: Voice2Series' additive program (placement, masks, upsampling, gradients) and the visual prompt."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from xdomain.adapters.series_to_waveform import SeriesToWaveformAdapter
from xdomain.backbones.base import FrozenBackbone
from xdomain.parts import Part
from xdomain.registry import TRANSFORMS
from xdomain.reprogrammer import Reprogrammer
from xdomain.transforms.additive import AdditiveProgramTransform, VisualPromptTransform


class Wave:
    """Just what bind() reads from a waveform backbone."""

    def __init__(self, input_length: object) -> None:
        self.input_length = input_length


class Picture:
    def __init__(self, image_size: object) -> None:
        self.image_size = image_size


class TinyWaveformBackbone(FrozenBackbone):
    """f stand-in: a seeded conv + linear classifier on (B, 24) waveforms, 5 source classes."""

    input_kind = "waveform"
    num_outputs = 5
    sample_rate = 16000
    input_length = 24

    def __init__(self) -> None:
        super().__init__("tiny-wave")
        torch.manual_seed(0)
        self.conv = nn.Conv1d(1, 4, kernel_size=5, stride=2)
        self.fc = nn.Linear(4 * 10, 5)
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.fc(torch.tanh(self.conv(x[:, None])).flatten(1))


def _with_program(t: AdditiveProgramTransform, values: torch.Tensor) -> AdditiveProgramTransform:
    with torch.no_grad():
        t.program.copy_(values)
    return t


# -- placement and masks ----------------------------------------------------------------------------------
def test_two_copies_and_the_outside_mask_hand_computed() -> None:
    t = _with_program(AdditiveProgramTransform(copies=2).bind(Wave(12)), torch.arange(100.0, 112.0))
    out = t(torch.tensor([[1.0, 2.0, 3.0]]))
    # segments of 6, each copy centred at offset (6 - 3) // 2 = 1; W only where no series sample sits
    assert out.tolist() == [[100, 1, 2, 3, 104, 105, 106, 1, 2, 3, 110, 111]]
    assert t.offsets(3) == [1, 7]
    assert t.program_mask(3).tolist() == [1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1]


def test_zero_program_leaves_the_padded_series() -> None:
    t = AdditiveProgramTransform(copies=2).bind(Wave(12))
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    assert t(x).tolist() == [
        [0, 1, 2, 3, 0, 0, 0, 1, 2, 3, 0, 0],
        [0, -1, 0.5, 4, 0, 0, 0, -1, 0.5, 4, 0, 0],
    ]


def test_full_mask_adds_the_program_on_the_series_too() -> None:
    t = _with_program(AdditiveProgramTransform(mask="full").bind(Wave(6)), torch.full((6,), 10.0))
    # one copy centred: offset (6 - 3) // 2 = 1
    assert t(torch.tensor([[1.0, 2.0, 3.0]])).tolist() == [[10, 11, 12, 13, 10, 10]]


def test_mask_none_is_the_no_program_baseline() -> None:
    t = AdditiveProgramTransform(mask="none", init="random").bind(Wave(7))
    assert list(t.parameters()) == []
    assert t.num_program_parameters() == 0
    assert t(torch.tensor([[1.0, 2.0, 3.0]])).tolist() == [[0, 0, 1, 2, 3, 0, 0]]


def test_upsample_repeats_each_sample() -> None:
    t = AdditiveProgramTransform(upsample=3).bind(Wave(12))
    assert t(torch.tensor([[5.0, -2.0]])).tolist() == [[0, 0, 0, 5, 5, 5, -2, -2, -2, 0, 0, 0]]


def test_upsample_with_copies_and_the_leftover_sample() -> None:
    t = _with_program(AdditiveProgramTransform(copies=3, upsample=2).bind(Wave(13)), torch.full((13,), 9.0))
    # n = 4, segments of 13 // 3 = 4: copies at 0, 4, 8; only the last sample is left for the program
    out = t(torch.tensor([[1.0, 2.0]]))
    assert out.tolist() == [[1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 9]]
    assert t.num_program_parameters(2) == 1


def test_series_that_does_not_fit_names_both_lengths() -> None:
    t = AdditiveProgramTransform(copies=2, upsample=2).bind(Wave(12))
    with pytest.raises(ValueError, match=re.escape("L*upsample*copies = 16 samples, but the backbone's "
                                                   "waveform has T = 12")):
        t(torch.zeros(1, 4))


# -- what trains ------------------------------------------------------------------------------------------
def test_gradient_reaches_w_only_where_the_mask_is_one() -> None:
    t = AdditiveProgramTransform(copies=2, init="random", seed=3).bind(Wave(12))
    x = torch.randn(4, 3, requires_grad=True)
    t(x).sum().backward()
    assert t.program.grad is not None
    assert t.program.grad.tolist() == (4 * t.program_mask(3)).tolist()
    assert x.grad is not None and torch.equal(x.grad, torch.full((4, 3), 2.0))  # two copies of each sample


def test_full_mask_gradient_everywhere() -> None:
    t = AdditiveProgramTransform(mask="full").bind(Wave(8))
    t(torch.randn(2, 3)).sum().backward()
    assert t.program.grad is not None and torch.equal(t.program.grad, torch.full((8,), 2.0))


def test_program_parameter_counts() -> None:
    t = AdditiveProgramTransform(copies=2).bind(Wave(12))
    assert isinstance(t.program, nn.Parameter)
    assert t.num_program_parameters() == 12
    assert t.num_program_parameters(3) == 6


def test_fixed_program_is_a_seeded_buffer_with_no_parameters() -> None:
    t = AdditiveProgramTransform(learnable=False, init="random", seed=1).bind(Wave(16000))
    assert list(t.parameters()) == []
    assert "program" in dict(t.named_buffers()) and "program" in t.state_dict()
    assert t.num_program_parameters() == 0
    again = AdditiveProgramTransform(learnable=False, init="random", seed=1).bind(Wave(16000))
    other = AdditiveProgramTransform(learnable=False, init="random", seed=2).bind(Wave(16000))
    assert torch.equal(t.program, again.program) and not torch.equal(t.program, other.program)
    assert 0.0095 < float(t.program.std()) < 0.0105 and abs(float(t.program.mean())) < 0.001
    x = torch.randn(2, 100)
    assert torch.equal(t(x), again(x))


# -- binding ---------------------------------------------------------------------------------------------
def test_unbound_transform_says_so() -> None:
    with pytest.raises(RuntimeError, match=re.escape("not bound to a backbone; call bind(backbone)")):
        AdditiveProgramTransform()(torch.zeros(1, 3))


@pytest.mark.parametrize("length", [None, 0, 12.0, "12"])
def test_bind_needs_a_waveform_backbone(length: object) -> None:
    with pytest.raises(ValueError, match=re.escape("positive int 'input_length'") + ".*" + re.escape(
            f"input_length={length!r}")):
        AdditiveProgramTransform().bind(Wave(length))
    with pytest.raises(ValueError, match="has input_length=None"):
        AdditiveProgramTransform().bind(object())


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"mask": "inside"}, "mask must be one of ['outside', 'full', 'none'], got 'inside'"),
        ({"init": "ones"}, "init must be one of ['zeros', 'random'], got 'ones'"),
        ({"copies": 0}, "copies must be a positive int, got 0"),
        ({"upsample": 1.5}, "upsample must be a positive int, got 1.5"),
    ],
)
def test_bad_settings_are_named_at_bind(kwargs: dict[str, object], message: str) -> None:
    t = AdditiveProgramTransform(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape(message)):
        t.bind(Wave(12))


def test_binding_twice_keeps_the_program_and_rejects_another_length() -> None:
    t = AdditiveProgramTransform(init="random").bind(Wave(12))
    program = t.program
    assert t.bind(Wave(12)) is t and t.program is program
    with pytest.raises(ValueError, match="bound to waveforms of 12 samples; this backbone takes 10"):
        t.bind(Wave(10))


def test_bad_input_shape() -> None:
    t = AdditiveProgramTransform().bind(Wave(12))
    with pytest.raises(ValueError, match=re.escape("expects a float series batch (B, L), got (2, 3, 1)")):
        t(torch.zeros(2, 3, 1))


def test_registered_names() -> None:
    assert isinstance(TRANSFORMS.build("additive-program", copies=2), AdditiveProgramTransform)
    assert isinstance(TRANSFORMS.build("visual-prompt", inner_size=4), VisualPromptTransform)


class IdentityHead(Part):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_voice2series_composition_trains_only_the_program_outside_the_series() -> None:
    backbone = TinyWaveformBackbone()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    model = Reprogrammer(
        backbone=backbone,
        transform=AdditiveProgramTransform(copies=2, init="random"),
        head=IdentityHead(),
        adapter=SeriesToWaveformAdapter(),
    )
    assert model.num_trainable() == 24
    w0 = model.transform.program.detach().clone()
    x = torch.randn(6, 5)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    for _ in range(3):  # plain SGD by hand: torch.optim's first use imports torch._dynamo (about 2 s)
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= 0.5 * p.grad
    assert model(x).shape == (6, 5)
    moved = (model.transform.program.detach() != w0).float()
    assert torch.equal(moved * (1 - model.transform.program_mask(5)), torch.zeros(24))  # series slots fixed
    assert moved.sum() > 0
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    assert list(model.trainable_state_dict()) == ["transform.program"]


# -- visual prompt ----------------------------------------------------------------------------------------
def test_visual_prompt_places_the_image_in_the_centre_and_the_program_on_the_border() -> None:
    t = VisualPromptTransform().bind(Picture(8))  # inner 4, border 2
    with torch.no_grad():
        t.program.fill_(0.25)
    img = torch.rand(2, 3, 4, 4)
    out = t(img)
    assert out.shape == (2, 3, 8, 8)
    assert torch.equal(out[:, :, 2:6, 2:6], img)  # already inner x inner: copied unchanged
    border = out.clone()
    border[:, :, 2:6, 2:6] = 0.25
    assert torch.equal(border, torch.full((2, 3, 8, 8), 0.25))
    assert t.num_program_parameters() == 3 * (64 - 16)


def test_visual_prompt_resizes_and_honours_inner_size() -> None:
    t = VisualPromptTransform(inner_size=6).bind(Picture(8))
    out = t(torch.full((1, 3, 20, 13), 0.3))
    assert out.shape == (1, 3, 8, 8)
    assert torch.allclose(out[:, :, 1:7, 1:7], torch.full((1, 3, 6, 6), 0.3))
    assert out[:, :, 0].abs().sum() == 0 and out[:, :, 7].abs().sum() == 0  # zero program on the border


def test_visual_prompt_clamps_with_a_straight_through_gradient() -> None:
    t = VisualPromptTransform().bind(Picture(8))
    with torch.no_grad():
        t.program.fill_(2.0)
        t.program[0] = -1.0
    out = t(torch.full((1, 3, 4, 4), 0.5))
    assert out.min() == 0.0 and out.max() == 1.0
    assert torch.equal(out[0, 0, 0], torch.zeros(8)) and torch.equal(out[0, 1, 0], torch.ones(8))
    out.sum().backward()
    assert t.program.grad is not None
    # clipped border pixels still get their gradient; the centre, under no program, gets none
    assert torch.equal(t.program.grad, t.border.expand(3, 8, 8))


def test_visual_prompt_fixed_program_and_errors() -> None:
    fixed = VisualPromptTransform(learnable=False, init="random", seed=0).bind(Picture(8))
    assert list(fixed.parameters()) == [] and fixed.num_program_parameters() == 0
    with pytest.raises(ValueError, match=re.escape("pixels in [0, 1], got values in [0, 255]")):
        fixed(torch.tensor([0.0, 255.0]).repeat(24).reshape(1, 3, 4, 4))
    message = "inner_size must be an int in [1, 7] for 8 x 8 images, got 8"
    with pytest.raises(ValueError, match=re.escape(message)):
        VisualPromptTransform(inner_size=8).bind(Picture(8))
    with pytest.raises(ValueError, match=r"positive int 'image_size'.*has image_size=None"):
        VisualPromptTransform().bind(Wave(16000))
    with pytest.raises(RuntimeError, match="not bound to a backbone"):
        VisualPromptTransform()(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match=re.escape("expects float images (B, 3, h, w), got (1, 1, 4, 4)")):
        fixed(torch.zeros(1, 1, 4, 4))
