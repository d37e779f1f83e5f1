"""O: output alignment heads."""

from xdomain.heads.forecast import FlattenHead
from xdomain.heads.label_mapping import MAPPINGS, LabelMappingHead
from xdomain.heads.linear import LinearHead
from xdomain.heads.vocab_label_mapping import VocabLabelMappingHead
from xdomain.heads.vocab_projection import VocabProjectionHead

__all__ = [
    "MAPPINGS",
    "FlattenHead",
    "LabelMappingHead",
    "LinearHead",
    "VocabLabelMappingHead",
    "VocabProjectionHead",
]
