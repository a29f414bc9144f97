"""statsmodels ``MixedLM`` worker (see :mod:`workerlib` for the protocol)."""

from __future__ import annotations

from workerlib import Tool, main


def setup() -> Tool:
    """Import statsmodels and describe how it fits a cell."""
    import statsmodels
    import statsmodels.formula.api as smf

    def fit(cell, df):
        if not cell.sm:
            raise NotImplementedError("n/a (crossed not supported)")
        spec = cell.sm
        model = smf.mixedlm(
            spec["fixed"], df, groups=df[spec["groups"]], re_formula=spec["re_formula"]
        )
        return model.fit(reml=cell.reml)

    def summarize(res):
        retvals = getattr(res, "mle_retvals", None) or {}
        evals = retvals.get("fcalls", retvals.get("iterations"))
        return {"criterion": -2.0 * float(res.llf), "evals": evals}

    return Tool(statsmodels.__version__, fit, summarize)


if __name__ == "__main__":
    main("statsmodels", setup)
