"""LinearMixedModel: a parsed model, its designs and its cross-products, ready to fit.

The stages are public, as in lme4's modular interface: ``from_formula`` builds the model
(one pass over the data), ``objective(theta)`` evaluates the profiled criterion from the
cross-products alone, ``fit()`` optimises and returns a :class:`MixedModelResult`.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from hlm.columns import take_rows
from hlm.design.covariance import CovarianceStructure
from hlm.design.crossprod import (
    CrossProducts,
    accumulate,
    hidden_intercept_basis,
    shift_and_scale,
)
from hlm.design.fixed import FixedDesign, required_variables
from hlm.design.random import RandomBlock, build_block, required_columns
from hlm.design.rank import aliased_random_columns, check_response, independent_columns
from hlm.errors import (
    DataError,
    IdentifiabilityError,
    RankDeficiencyWarning,
    warn,
)
from hlm.frame import check_columns, level_complete_sample, prepare_frame
from hlm.linalg.blocked import BlockedCholesky
from hlm.spec.formula import ModelSpec, parse_formula

#: rows per chunk when forming cross-products (bounds the memory of the design matrices)
CHUNK_ROWS = 500_000
_WEIGHTS = "(weights)"
_OFFSET = "(offset)"


def lme4_term_order(levels: list[int]) -> list[int]:
    """The order in which lme4's ``mkReTrms`` keeps random-effects terms.

    Terms are put in decreasing order of their number of levels when they are not already
    in that order (``rev(order(nl))``, so ties end up reversed); otherwise left alone.
    """
    nl = np.asarray(levels)
    if len(nl) > 1 and np.any(np.diff(nl) > 0):
        return list(np.argsort(nl, kind="stable")[::-1])
    return list(range(len(nl)))


class LinearMixedModel:
    """A linear mixed model ``y = X beta + Z b + eps`` built from a formula and data.

    Build it with :meth:`from_formula`.  Attributes of interest: ``spec`` (the parsed
    formula), ``fixed_names`` (columns of X kept), ``blocks`` (random-effects terms in theta
    order), ``A`` (the cross-products), ``cov`` (theta <-> lambda), ``n``, ``method``.
    """

    def __init__(self, spec, frame, design, blocks, A, keep, dropped, method, weights_info):
        self.spec: ModelSpec = spec
        self.frame = frame
        self.design: FixedDesign = design
        self.blocks: list[RandomBlock] = blocks
        self.A: CrossProducts = A
        self.keep = keep
        self.dropped_columns = dropped
        self.fixed_names = [design.names[i] for i in keep]
        self.method = method
        self.weights_info = weights_info
        self.cov = CovarianceStructure([b.S for b in blocks])
        self.chol = BlockedCholesky(A, self.cov)
        self.n = A.n
        self.p = len(keep)
        self.evaluations = 0
        #: what the user passed as the model (a formula string or a spec object)
        self.source = spec.formula
        #: the offset per row used in the fit (None without one)
        self.offset = None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_formula(
        cls,
        formula,
        data,
        *,
        method: str = "REML",
        weights=None,
        offset=None,
        missing: str = "drop",
        chunk_rows: int = CHUNK_ROWS,
    ) -> LinearMixedModel:
        """Build the model: parse, clean the data, code the designs, form the cross-products.

        Parameters
        ----------
        formula : str or spec object
            An lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``, or an object with
            a ``prepare(data) -> (formula, data)`` method such as a level-equation spec.
        data : pandas.DataFrame, polars.DataFrame, pyarrow.Table or dict of arrays
        method : {"REML", "ML"}
            Case-insensitive.
        weights : str or array-like, optional
            Prior weights (a column name or an array aligned with the rows of ``data``): the
            residual variance of row i is ``sigma^2 / w_i``, as in lme4.
        offset : str or array-like, optional
            A known part of the linear predictor (a column name or an array aligned with the
            rows of ``data``), e.g. a coefficient fixed at a known value times its variable;
            it is subtracted from the response before fitting and added to fitted values.
        missing : {"drop", "raise"}
            Rows with a missing value in a used column are dropped and counted, or refused.
        chunk_rows : int
            Rows per chunk when forming the cross-products.
        """
        method = _check_method(method)
        from hlm.stream.sources import is_streamed

        if is_streamed(data):  # files or a Dask dataframe: read in batches, never all at once
            from hlm.stream.build import build_streamed_model

            return build_streamed_model(
                formula, data, method=method, weights=weights, offset=offset, missing=missing
            )
        source = formula
        if hasattr(formula, "prepare"):
            # a model spec object (e.g. hlm.Levels) turns itself into a formula, and may
            # derive columns (centred variables, group means) on a copy of the data
            formula, data = formula.prepare(data)
        spec = model_spec(formula)
        columns, groups_only = model_columns(spec, _column_names(data))
        check_columns(columns, data)  # every missing formula column named at once
        # the offset's column must survive the selection that attaching the weights makes
        later = [offset] if isinstance(offset, str) else []
        data, columns = _attach_column(data, weights, _WEIGHTS, columns, "weights", later)
        data, columns = _attach_column(data, offset, _OFFSET, columns, "offset")
        frame = prepare_frame(data, columns, missing=missing, labels_only=groups_only)
        df = frame.columns  # the clean columns as arrays: no pandas lookups while building
        w = _check_weights(_floats(df[_WEIGHTS])) if weights is not None else None
        off = _floats(df[_OFFSET]) if offset is not None else None
        cache: dict = {}
        sample = level_complete_sample(df, chunk_rows)
        blocks = [build_block(t, df, cache, sample) for t in spec.random]
        order = lme4_term_order([b.J for b in blocks])
        blocks = [blocks[i] for i in order]
        check_identifiable(blocks, len(df))
        design, A = _cross_products(spec, df, blocks, w, off, chunk_rows, sample)
        model = cls.from_parts(spec, frame, design, blocks, A, method, weighted=w is not None)
        model.source = source
        model.offset = off
        return model

    @classmethod
    def from_parts(cls, spec, frame, design, blocks, A, method, *, weighted: bool):
        """The model from its built stages: drop aliased X columns (with a warning), wrap up.

        Parameters
        ----------
        spec : ModelSpec
        frame : Frame or frame-like
            Needs ``n_dropped`` and ``dropped_by`` (and ``data`` for per-row outputs).
        design : FixedDesign
        blocks : list of RandomBlock
            In theta (lme4) order, matching the terms of ``A``.
        A : CrossProducts
            Cross-products of all rows (merged over chunks, batches or partitions).
        method : {"REML", "ML"}
        weighted : bool
            True when ``A`` was accumulated with prior weights.
        """
        keep, dropped = independent_columns(A.model_G()[:-1, :-1], design.names)
        if dropped:
            warn(
                "fixed-effect column(s) "
                + ", ".join(repr(d) for d in dropped)
                + " are linear combinations of earlier columns and were dropped "
                "(rank-deficient X)",
                RankDeficiencyWarning,
            )
            A = A.select(keep)
        check_response(A.model_G(), [design.names[i] for i in keep], spec.response)
        aliased_random_columns(A, blocks, len(keep))
        wi = {"sum_log_w": A.sum_log_w} if weighted else None
        return cls(spec, frame, design, blocks, A, keep, dropped, _check_method(method), wi)

    # ------------------------------------------------------------------ criterion
    @property
    def reml(self) -> bool:
        """True for the REML criterion."""
        return self.method == "REML"

    def _scale_y(self) -> float:
        return float(self.A.out_scale[-1])

    def _logdet_scale_X(self) -> float:
        return 2.0 * float(np.log(self.A.out_scale[:-1]).sum())

    def objective(self, theta) -> float:
        """The profiled criterion at ``theta``: REML criterion or ML deviance (-2 log L).

        Parameters
        ----------
        theta : array-like
            Relative covariance parameters in lme4's order (see ``theta_names``).
        """
        theta = np.asarray(theta, dtype=float).reshape(-1)
        if theta.size != self.cov.ntheta:
            raise ValueError(f"theta must have {self.cov.ntheta} elements, got {theta.size}")
        self.evaluations += 1
        self._chol_theta = theta.copy()  # the theta the factor currently holds
        if not self.chol.update(theta):
            return np.inf
        return self._criterion_from_chol()

    def _criterion_from_chol(self) -> float:
        c = self.chol
        pwrss = c.pwrss() * self._scale_y() ** 2
        d = self.n - self.p if self.reml else self.n
        dev = c.logdet_Z + d * (1.0 + np.log(2.0 * np.pi * pwrss / d))
        if self.reml:
            dev += c.logdet_X() + self._logdet_scale_X()
        return float(dev - self.A.sum_log_w)

    @property
    def has_gradient(self) -> bool:
        """True when :meth:`objective_and_gradient` is available for this model.

        The analytic gradient covers one random-effects term (any number of columns) and any
        number of scalar terms, crossed or nested; other combinations use BOBYQA.
        """
        return len(self.blocks) == 1 or all(b.S == 1 for b in self.blocks)

    @property
    def prefers_gradient(self) -> bool:
        """True when the gradient path is expected to be faster than BOBYQA.

        The gradient costs two to three criterion evaluations and saves about three quarters
        of them when evaluations are dear: scalar terms with a large dense block (crossed
        factors) or many groups, and one-term models when the compiled group loops (numba)
        are available.  Otherwise (small models in plain NumPy, where Python overhead
        dominates both, and several terms with several columns) lme4's BOBYQA is used.
        """
        from hlm.compiled import group_kernels

        if len(self.blocks) == 1 and group_kernels() is not None:
            return True  # compiled group loops make the one-term gradient cheap
        if not all(b.S == 1 for b in self.blocks):
            return False
        return sum(b.J for b in self.blocks[1:]) >= 100 or self.blocks[0].J >= 5000

    def objective_and_gradient(self, theta) -> tuple[float, np.ndarray]:
        """The profiled criterion at ``theta`` and its gradient (see :attr:`has_gradient`).

        Costs about as much as two or three criterion evaluations, and nothing that grows
        with the number of rows.
        """
        from hlm.linalg.gradient import profiled_gradient
        from hlm.linalg.gradient_scalar import scalar_terms_gradient

        theta = np.asarray(theta, dtype=float).reshape(-1)
        # the convergence checks ask again for the optimizer's best point, one of the last
        # few evaluated: remember them
        memo = self.__dict__.setdefault("_gradient_memo", {})
        key = theta.tobytes()
        if key in memo:
            f, g = memo[key]
            return f, g.copy()
        f = self.objective(theta)
        if not np.isfinite(f):
            return f, np.zeros_like(theta)
        if all(b.S == 1 for b in self.blocks):
            g = scalar_terms_gradient(self.chol, self.reml, self.n)
        elif len(self.blocks) == 1:
            g = profiled_gradient(self.chol, self.reml, self.n)
        else:
            raise NotImplementedError("no analytic gradient for this random-effects structure")
        memo[key] = (f, g.copy())
        while len(memo) > 4:  # dicts keep insertion order: drop the oldest
            del memo[next(iter(memo))]
        return f, g

    @property
    def theta_names(self) -> list[str]:
        """lme4's names of the theta elements (``"Subject.Days.(Intercept)"``)."""
        names = []
        for b in self.blocks:
            for r, c in zip(*_lower_pairs(b.S), strict=True):
                if r == c:
                    names.append(f"{b.group}.{b.columns[r]}")
                else:
                    names.append(f"{b.group}.{b.columns[r]}.{b.columns[c]}")
        return names

    def fit(self, **options):
        """Fit by the profiled engine; returns a :class:`hlm.MixedModelResult`."""
        from hlm.engines.driver import fit_profiled

        return fit_profiled(self, **options)


def _lower_pairs(S):
    pairs = [(r, c) for c in range(S) for r in range(c, S)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _check_method(method: str) -> str:
    m = str(method).upper()
    if m not in ("REML", "ML"):
        raise ValueError(f"method must be 'REML' or 'ML', got {method!r}")
    return m


def model_spec(formula) -> ModelSpec:
    """Parse ``formula`` (or take a ModelSpec) and refuse a model without random effects."""
    if isinstance(formula, ModelSpec):
        spec = formula
    elif isinstance(formula, str):
        spec = _parsed(formula)  # a refit of the same formula does not parse it again
    else:
        spec = parse_formula(formula)
    if not spec.random:
        raise IdentifiabilityError(
            f"formula {spec.formula!r} has no random-effects term such as '(1 | group)'; "
            "for a model without random effects use hlm.ols(formula, data)"
        )
    return spec


@functools.lru_cache(maxsize=256)
def _parsed(formula: str) -> ModelSpec:
    return parse_formula(formula)  # a ModelSpec is immutable: the cached one can be shared


def _column_names(data):
    """The column names of ``data`` for membership tests.

    A DataFrame whose column labels are strings answers them from its own hash table; any
    other data lists its names (as text).
    """
    if isinstance(data, pd.DataFrame) and isinstance(data.columns.dtype, pd.StringDtype):
        return data.columns
    from hlm.frame import available_columns

    return available_columns(data)


def model_columns(spec: ModelSpec, available) -> tuple[list[str], list[str]]:
    """The data columns a model reads, and those among them used only as grouping factors.

    Parameters
    ----------
    spec : ModelSpec
    available : iterable of str
        Column names of the data (names hidden in stateful transforms are found here).

    Returns
    -------
    columns : list of str
        Response, predictors and grouping columns, each once, in formula order.
    groups_only : list of str
        Grouping columns that are not also predictors (coded as labels, never as numbers).
    """
    required, candidates, groups_only = _formula_columns(spec)
    have = available if isinstance(available, pd.Index) else set(available)
    named = [c for c in candidates if c in have and c not in required]
    return list(dict.fromkeys([*required, *named])), list(groups_only)


@functools.lru_cache(maxsize=256)
def _formula_columns(spec: ModelSpec) -> tuple[tuple, tuple, tuple]:
    """What :func:`model_columns` needs from the formula alone (cached per spec).

    The columns formulaic and the terms report, every name in the formula text (some are
    columns hidden in stateful transforms), and the grouping-only columns.
    """
    columns = list(required_variables(f"{spec.response} ~ {spec.fixed}", "the fixed part"))
    for term in spec.random:
        columns += required_columns(term)
    required = tuple(dict.fromkeys(columns))
    groups_only = tuple(c for c in spec.group_columns if c not in _predictor_columns(spec))
    return required, tuple(_atoms(spec)), groups_only


def _named_columns(spec: ModelSpec, data, known: list[str]) -> list[str]:
    """Data columns named inside the formula that formulaic does not report.

    formulaic's ``required_variables`` leaves out the arguments of stateful transforms such
    as ``scale(x)``, ``center(x)`` or ``poly(x, 2)``; any name in the formula text that is a
    column of the data is needed too.
    """
    from hlm.frame import available_columns

    return _named_in(spec, set(available_columns(data)), known)


def _named_in(spec: ModelSpec, have: set, known: list[str]) -> list[str]:
    return [c for c in _atoms(spec) if c in have and c not in known]


def _atoms(spec: ModelSpec) -> list[str]:
    """Every name in the formula text, each once, in order."""
    from hlm.spec.tokens import tokenize

    texts = [spec.response, spec.fixed] + [t.lhs for t in spec.random]
    names = [tok.text for text in texts for tok in tokenize(text) if tok.kind == "atom"]
    return list(dict.fromkeys(names))


def _predictor_columns(spec: ModelSpec) -> set[str]:
    cols = set(required_variables(f"{spec.response} ~ {spec.fixed}", "the fixed part"))
    for t in spec.random:
        cols |= set(required_columns(t)) - set(t.factors)
    return cols


def _attach_column(data, value, name, columns, what, keep=()):
    """Add weights or an offset (a column name or an array) as the column ``name``.

    ``keep``: further columns of ``data`` to carry along (a later attachment's column).
    """
    from hlm.frame import check_columns, to_pandas

    if value is None:
        return data, columns
    if isinstance(value, str):
        check_columns([value, *keep], data, what)
        df = to_pandas(data, list(dict.fromkeys(columns + [value, *keep])))
        df = df.assign(**{name: df[value]})
    else:
        check_columns([c for c in columns if c not in (_WEIGHTS, _OFFSET)], data)
        df = to_pandas(data, list(dict.fromkeys(columns + list(keep))))
        v = np.asarray(value, dtype=float).reshape(-1)
        if len(v) != len(df):
            raise DataError(f"{what} have {len(v)} values but the data have {len(df)} rows")
        df = df.assign(**{name: v})
    return df, columns + [name]


def _floats(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _check_weights(w: np.ndarray) -> np.ndarray:
    if not np.isfinite(w).all():
        raise DataError("weights must be finite; found infinite values")
    if (w <= 0).any():
        k = int((w <= 0).sum())
        raise DataError(
            f"weights must be positive; {k} are zero or negative (drop those rows first)"
        )
    return w


def check_identifiable(blocks, n: int) -> None:
    """Refuse terms whose variance cannot be told apart from the residual variance."""
    for b in blocks:
        if b.J < 2:
            raise IdentifiabilityError(
                f"grouping factor {b.group!r} has only one level: its variance cannot be "
                "estimated; drop the term or use data with several groups"
            )
        if b.J >= n:
            raise IdentifiabilityError(
                f"grouping factor {b.group!r} has {b.J} levels for {n} observations: every "
                "group has a single row, so its variance cannot be told apart from the "
                "residual variance; drop the term"
            )
        if b.J * b.S >= n:
            raise IdentifiabilityError(
                f"term {b.term.source!r} has {b.J * b.S} random effects for {n} observations; "
                "the random-effects and residual variances are unidentifiable; simplify the "
                "term (e.g. drop the random slope)"
            )


def _term_columns(block, design, chunk, Xy) -> np.ndarray:
    """A term's Z for a chunk: copied from the raw X when X has the same columns."""
    idx = [design.names.index(c) if c in design.names else -1 for c in block.columns]
    if block.columns == ["(Intercept)"] or min(idx) < 0:
        return block.Z(chunk)
    return Xy[:, idx].copy()


def chunk_columns(design, blocks, chunk, offset=None, *, Xy=None):
    """``[X y]`` and each term's Z for one chunk of rows, ready for :func:`accumulate`.

    The offset (one value per row, or None) is subtracted from y; without an intercept a
    hidden column of ones goes first, so that every other column can be centred.  ``Xy``,
    when given, is the chunk's raw ``[X y]`` already coded.
    """
    if Xy is None:
        Xy = design.Xy(chunk)
    if offset is not None:
        Xy[:, -1] -= offset
    Z = [_term_columns(b, design, chunk, Xy) for b in blocks]
    if not design.has_intercept:  # a hidden ones column lets every column be centred
        Xy = np.column_stack((np.ones(len(Xy)), Xy))
    return Xy, Z


def column_transform(design, Xy, w):
    """Shift and scale of the accumulated columns, chosen on a first chunk's ``Xy``."""
    icol = design.names.index("(Intercept)") if design.has_intercept else 0
    return shift_and_scale(Xy, w, icol)


def chunk_cross_products(Xy, Z, codes, J, shift, scale, w=None) -> CrossProducts:
    """Cross-products of one chunk (``Xy`` is transformed in place)."""
    return accumulate(
        Xy,
        Z,
        codes,
        J,
        shift,
        scale,
        sqrtw=None if w is None else np.sqrt(w),
        sum_log_w=0.0 if w is None else float(np.log(w).sum()),
    )


def _cross_products(spec, df, blocks, w, off, chunk_rows, sample):
    """One pass over the rows in chunks: fix shift and scale on the first, sum the rest.

    ``df`` (a DataFrame or :class:`hlm.columns.Columns`) holds the clean rows.
    """
    n = len(df)
    A = None
    design = None
    if len(sample) > min(n, chunk_rows):  # later chunks show levels the first does not
        design, _ = FixedDesign.from_first_chunk(spec.response, spec.fixed, sample)
    J = [b.J for b in blocks]
    for start in range(0, n, chunk_rows):
        stop = start + chunk_rows
        chunk = df if n <= chunk_rows else take_rows(df, slice(start, stop))
        wc = None if w is None else w[start:stop]
        offc = None if off is None else off[start:stop]
        if design is None:  # fixing the coding on the first chunk also codes it
            design, Xy = FixedDesign.from_first_chunk(spec.response, spec.fixed, chunk)
            Xy, Z = chunk_columns(design, blocks, chunk, offc, Xy=Xy)
        else:
            Xy, Z = chunk_columns(design, blocks, chunk, offc)
        if start == 0:
            shift, scale = column_transform(design, Xy, wc)
        codes = [b.codes[start:stop] for b in blocks]
        part = chunk_cross_products(Xy, Z, codes, J, shift, scale, wc)
        A = part if A is None else A + part
    if not design.has_intercept:
        A.basis = hidden_intercept_basis(A.shift, A.scale)
    return design, A
