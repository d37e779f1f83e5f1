"""O: output alignment heads."""

from xdomain.heads.forecast import FlattenHead

__all__ = ["FlattenHead"]
