"""Evaluate formulaic's fixed-effects coding with plain NumPy, for the common terms.

formulaic decides the coding of a formula on the data: which terms, which categorical
factors are reduced (treatment contrasts, first level as reference) and in which order the
columns come.  That decision is worth keeping, but formulaic's evaluation of a model matrix
costs a few milliseconds of fixed overhead, which is most of the time of a small fit.  When
every factor is a column looked up by name (numeric, or categorical with treatment
contrasts), each column of ``X`` is a product of numeric columns and level indicators, which
NumPy evaluates directly from formulaic's model spec.  Anything else (transforms such as
``log(x)``, ``C(x, Sum)``, polynomials) keeps formulaic's own evaluation.

The evaluator names its columns as formulaic does and is only used when the names match
formulaic's exactly; the caller also checks the values once against formulaic (see
:mod:`hlm.design.fixed`).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd


class FastColumns:
    """Columns of a formulaic model spec as products of data columns and level indicators.

    Build with :meth:`from_spec`, which returns None when the spec has a factor this class
    does not evaluate.
    """

    def __init__(self, plan, names):
        #: per output column, a list of (column name, level or None) factors
        self.plan = plan
        self.names = names
        self.levels = {}

    @classmethod
    def from_spec(cls, spec) -> FastColumns | None:
        """Plan the columns of ``spec`` (a formulaic ModelSpec), or None."""
        try:
            return cls._plan(spec)
        except _Unsupported:
            return None

    @classmethod
    def _plan(cls, spec) -> FastColumns:
        from formulaic.parser.types import Factor

        state = spec.encoder_state
        plan, names, levels = [], [], {}
        for structure in spec.structure:
            for scoped in structure.scoped_terms:
                if getattr(scoped, "scale", 1) not in (1, 1.0):
                    raise _Unsupported
                options = []
                for sf in scoped.factors:
                    f = getattr(sf.factor, "factor", sf.factor)  # EvaluatedFactor -> Factor
                    if f.eval_method is Factor.EvalMethod.LITERAL:
                        raise _Unsupported
                    if f.eval_method is not Factor.EvalMethod.LOOKUP or f.expr not in state:
                        raise _Unsupported
                    kind, info = state[f.expr]
                    if kind is Factor.Kind.NUMERICAL:
                        options.append([((f.expr, None), f.expr)])
                    elif kind is Factor.Kind.CATEGORICAL:
                        lv = _treatment_levels(info)
                        levels[f.expr] = lv
                        shown = lv[1:] if sf.reduced else lv
                        fmt = "{}[T.{}]" if sf.reduced else "{}[{}]"
                        options.append([((f.expr, v), fmt.format(f.expr, v)) for v in shown])
                    else:
                        raise _Unsupported
                if not options:  # the intercept: a scoped term without factors
                    plan.append([])
                    names.append("Intercept")
                    continue
                cols = list(itertools.product(*options))
                plan += [[c[0] for c in combo] for combo in cols]
                names += [":".join(c[1] for c in combo) for combo in cols]
        if list(names) != list(spec.column_names):
            raise _Unsupported
        out = cls(plan, names)
        out.levels = levels
        return out

    def evaluate(self, df, out: np.ndarray | None = None) -> np.ndarray:
        """The model matrix for ``df``, float64, one column per planned column.

        ``df`` is a DataFrame or :class:`hlm.columns.Columns`; ``out``, when given, is the
        (n, columns) array to fill.
        """
        from hlm.columns import column_array

        n = len(df)
        numeric, indicator = {}, {}
        if out is None:
            out = np.empty((n, len(self.plan)))
        for j, factors in enumerate(self.plan):
            if not factors:  # the intercept
                out[:, j] = 1.0
                continue
            col = None
            for name, level in factors:
                if level is None:
                    if name not in numeric:
                        numeric[name] = _numeric(column_array(df, name))
                    value = numeric[name]
                else:
                    key = (name, level)
                    if key not in indicator:
                        codes = _codes(column_array(df, name), self.levels[name])
                        for i, v in enumerate(self.levels[name]):
                            indicator[(name, v)] = (codes == i).astype(np.float64)
                    value = indicator[key]
                # the same products, in the same order, as ones * f1 * f2 ...
                col = value if col is None else col * value
            out[:, j] = col
        return out


class _Unsupported(Exception):
    """The spec has a factor the fast evaluator does not handle."""


def _treatment_levels(info) -> list:
    """Levels of a categorical factor coded with default treatment contrasts, else raise."""
    from formulaic.transforms.contrasts import TreatmentContrasts
    from formulaic.utils.sentinels import UNSET

    contrasts = info.get("contrasts")
    levels = info.get("categories")
    if contrasts is None or levels is None:
        raise _Unsupported
    c = contrasts.contrasts
    if not isinstance(c, TreatmentContrasts) or c.base is not UNSET:
        raise _Unsupported
    if list(contrasts.levels) != list(levels):
        raise _Unsupported
    return list(levels)


def _numeric(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _codes(values, levels: list) -> np.ndarray:
    if isinstance(values, pd.Categorical) and values.categories.tolist() == levels:
        return values.codes
    return pd.Categorical(values, categories=levels).codes
