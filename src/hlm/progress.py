"""Progress bars (tqdm) for work that can take more than a few seconds.

A bar is drawn on standard error only when it is a terminal, only once the work has run for
``delay`` seconds, and never when ``enabled=False`` or the environment variable
``HLM_PROGRESS=0`` is set (``HLM_PROGRESS=1`` forces bars on, e.g. in a notebook).
"""

from __future__ import annotations

import os
import sys


def progress_enabled(enabled: bool | None = None) -> bool | None:
    """Resolve ``enabled`` against ``HLM_PROGRESS``: True, False, or None for "if a tty"."""
    if enabled is not None:
        return bool(enabled)
    env = os.environ.get("HLM_PROGRESS", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("1", "true", "yes", "on"):
        return True
    return None


def progress_bar(
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool | None = None,
    delay: float = 2.0,
):
    """A tqdm bar on standard error (see the module docstring for when it shows).

    Parameters
    ----------
    total : int, optional
        Number of steps; None for work of unknown length (a counter).
    desc, unit : str
        Label and unit of the bar.
    enabled : bool, optional
        Force the bar on or off; default: on when standard error is a terminal.
    delay : float
        Seconds before the bar first appears, so quick work prints nothing.
    """
    from tqdm import tqdm

    on = progress_enabled(enabled)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=None if on is None else not on,
        delay=delay,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
    )
