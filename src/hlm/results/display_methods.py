"""Display and persistence methods of a fitted mixed model (plots, HTML, saving).

Kept apart from :mod:`hlm.results.fitted`; :class:`MixedModelResult` inherits these methods.
"""

from __future__ import annotations


class DisplayMethods:
    """Mixin: plots, ``to_html``, ``_repr_html_``, ``save`` (see :mod:`hlm.report`)."""
