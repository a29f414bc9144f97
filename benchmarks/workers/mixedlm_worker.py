"""``mixedlm`` (Rust-core lme4 clone) worker (see :mod:`workerlib` for the protocol)."""

from __future__ import annotations

from workerlib import Tool, main


def setup() -> Tool:
    """Import mixedlm and describe how it fits a cell."""
    import mixedlm

    def fit(cell, df):
        return mixedlm.lmer(cell.formula, df, REML=cell.reml)

    def summarize(res):
        # `deviance` is the minimised objective: REML criterion or ML deviance.
        return {
            "criterion": float(res.deviance),
            "evals": int(res.function_evals),
            "converged": bool(res.converged),
            "optimizer": res.optimizer,
        }

    return Tool(mixedlm.__version__, fit, summarize)


if __name__ == "__main__":
    main("mixedlm", setup)
