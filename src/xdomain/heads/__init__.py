"""O: output alignment heads."""

from xdomain.heads.forecast import FlattenHead
from xdomain.heads.label_mapping import LabelMappingHead
from xdomain.heads.linear import LinearHead
from xdomain.heads.vocab_projection import VocabProjectionHead

__all__ = ["FlattenHead", "LabelMappingHead", "LinearHead", "VocabProjectionHead"]
