"""Whether hlm's compiled loops are on, and their module.

numba is a dependency; the compiled loops (docs/design.md, "Compiled loops") are used unless
numba cannot be imported or ``HLM_NUMBA=0`` is set, in which case the NumPy paths give the
same numbers.  Model building (:mod:`hlm.design.kernels`) and the factor
(:mod:`hlm.linalg.blocked`) both ask here, so neither depends on the other for it.
"""

from __future__ import annotations

_GROUP_KERNELS = []


def group_kernels():
    """The compiled per-group loops of one-term models, or None without numba.

    Imported on first use; ``HLM_NUMBA=0`` in the environment turns them off (the NumPy
    paths give the same numbers).
    """
    if not _GROUP_KERNELS:
        import os

        module = None
        if os.environ.get("HLM_NUMBA", "1") != "0":
            try:
                from hlm.linalg import _numba_groups as module
            except ImportError:
                module = None
        _GROUP_KERNELS.append(module)
    return _GROUP_KERNELS[0]
