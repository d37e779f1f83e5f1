"""I: input transformations (and the context c, a fixed text prompt)."""

from xdomain.transforms.additive import AdditiveProgramTransform, VisualPromptTransform
from xdomain.transforms.patch_reprogramming import PatchEmbedding, PatchReprogrammingTransform
from xdomain.transforms.prompt import PromptAsPrefix, series_statistics
from xdomain.transforms.vocab_map import VocabMapTransform

__all__ = [
    "AdditiveProgramTransform",
    "PatchEmbedding",
    "PatchReprogrammingTransform",
    "PromptAsPrefix",
    "VisualPromptTransform",
    "VocabMapTransform",
    "series_statistics",
]
