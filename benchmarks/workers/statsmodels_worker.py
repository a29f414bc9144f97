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
        # MixedLMResults does not report the optimizer's evaluation count.
        return {"criterion": -2.0 * float(res.llf), "evals": None, "converged": res.converged}

    return Tool(statsmodels.__version__, fit, summarize)


if __name__ == "__main__":
    main("statsmodels", setup)
