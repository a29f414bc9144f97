"""Display and persistence methods of a fitted mixed model (plots, HTML, JSON, saving).

Kept apart from :mod:`hlm.results.fitted`; :class:`MixedModelResult` inherits these methods.
Each is a thin call into :mod:`hlm.plots`, :mod:`hlm.report` or :mod:`hlm.io`.
"""

from __future__ import annotations


class DisplayMethods:
    """Mixin: plots, ``to_html``, ``_repr_html_``, ``to_dict``, ``save``."""

    # ------------------------------------------------------------------ plots
    def plot(self, kind: str = "caterpillar", **options):
        """A plot of the fit as a matplotlib Figure (``pip install 'hlm[plots]'``).

        Parameters
        ----------
        kind : {"caterpillar", "shrinkage", "residuals", "profile"}
            See :mod:`hlm.plots`.
        **options
            Passed to the plot function.
        """
        from hlm.plots import plot

        return plot(self, kind, **options)

    def plot_caterpillar(self, group: str | None = None, level: float = 0.95, **options):
        """Sorted empirical Bayes estimates with intervals (:func:`hlm.plots.caterpillar`)."""
        from hlm.plots import caterpillar

        return caterpillar(self, group=group, level=level, **options)

    def plot_shrinkage(self, group: str | None = None):
        """Per-group OLS against EB estimates by group size (:func:`hlm.plots.shrinkage`)."""
        from hlm.plots import shrinkage

        return shrinkage(self, group=group)

    def plot_residuals(self, **options):
        """Level-1 and level-2 residual diagnostics (:func:`hlm.plots.residuals`)."""
        from hlm.plots import residuals

        return residuals(self, **options)

    def plot_profile(self, which=None, level: float = 0.95, progress=None, **options):
        """Profiled criterion against each theta (:func:`hlm.plots.profile`)."""
        from hlm.plots import profile

        return profile(self, which=which, level=level, progress=progress, **options)

    # ------------------------------------------------------------------ documents
    def to_dict(self) -> dict:
        """The fit as JSON data, in the layout of ``hlm fit --format json`` (docs/cli.md)."""
        from hlm.report.result_dict import result_dict

        return result_dict(self)

    def to_html(self, plots=None, progress=None) -> str:
        """A self-contained HTML page: the model in level and mixed form, tables, plots.

        Parameters
        ----------
        plots : list of str, optional
            Plot kinds to embed (default: every kind that applies to this model; see
            :data:`hlm.report.html_page.DEFAULT_PLOTS`); ``[]`` for none.
        progress : bool, optional
            Progress bar while the plots are made.
        """
        from hlm.report.html_page import html_page

        return html_page(self, plots=plots, progress=progress)

    def _repr_html_(self) -> str:
        """Notebook display: the tables of :meth:`to_html` without plots or maths."""
        from hlm.report.html_page import html_fragment

        return html_fragment(self)

    # ------------------------------------------------------------------ saving
    def save(self, path, data: bool = True) -> None:
        """Save the fit to ``path`` in hlm's file format (a zip of JSON, .npz and Parquet).

        Parameters
        ----------
        path : str or Path
        data : bool
            Also store the rows used in the fit (Parquet), which fitted values, residuals,
            residual and shrinkage plots and HLM-style outputs need after :func:`hlm.load`.
            Summaries, tables, ``ranef()`` and profiles need only the cross-products,
            which are always stored.  See docs/file_format.md.
        """
        from hlm.io.store import save_result

        save_result(self, path, data=data)
