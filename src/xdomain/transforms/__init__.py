"""I: input transformations (and the context c, a fixed text prompt)."""

from xdomain.transforms.patch_reprogramming import PatchEmbedding, PatchReprogrammingTransform
from xdomain.transforms.prompt import PromptAsPrefix, series_statistics

__all__ = ["PatchEmbedding", "PatchReprogrammingTransform", "PromptAsPrefix", "series_statistics"]
