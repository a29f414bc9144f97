"""Files: reading data files (:mod:`hlm.io.readers`) and saving / loading fitted models
(:mod:`hlm.io.store`, :mod:`hlm.io.load`; format in docs/file_format.md)."""

from hlm.io.load import load_result as load
from hlm.io.readers import read_data

__all__ = ["load", "read_data"]
