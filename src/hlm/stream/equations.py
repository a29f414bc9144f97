"""Level-equation specs (``hlm.Levels``) on streamed data: centring and checks by passes.

In memory, :func:`hlm.spec.levels_data.prepare_data` derives centred columns from group
means over the complete rows and checks that level-2 (level-3) predictors are constant
within groups and that random coefficients vary.  On streamed data the same quantities are
sums and extremes per group, so one pass over the raw columns gathers them:

* per group and centred variable, the sum and count of the complete rows (group means,
  means of group means) and the grand sum and count (grand-mean centring);
* per group and checked variable, the minimum and maximum (text: the first value and
  whether another one appeared), and the largest absolute value (the tolerance).

The centred columns are then added to every batch by :class:`Centring`, a picklable map
from a row's group to its means, before the model sees the batch.  A check on a derived
column (``x_mean`` as a level-3 predictor, say) needs the means first, so it takes a
second pass over the centred batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hlm.centering import derived_name
from hlm.errors import DataError
from hlm.stream.group_stats import Centring, GroupStats, KeyCoder, batch_stats, merge_stats
from hlm.stream.levels import LevelTables

#: groups listed in an error message before "..."
_SHOW = 8


# ---------------------------------------------------------------------- the spec's passes
def _complete(raw: pd.DataFrame, columns) -> np.ndarray:
    ok = np.ones(len(raw), dtype=bool)
    for c in columns:
        ok &= raw[c].notna().to_numpy()
    return ok


@dataclass
class _Pass:
    """One statistics pass (picklable for Dask): ``fn(raw) -> GroupStats``."""

    keys: list
    complete: list
    means: list
    spreads: list
    transform: object = None

    def __call__(self, raw: pd.DataFrame) -> GroupStats:
        ok = _complete(raw, self.complete)
        data = raw if self.transform is None else self.transform(raw)
        return batch_stats(data, self.keys, self.means, self.spreads, ok)


def prepare_streamed(spec, columns, mapreduce):
    """A level-equation spec's formula and centring for streamed data.

    Parameters
    ----------
    spec : hlm.Levels
    columns : list of str
        The data's columns.
    mapreduce : callable
        ``mapreduce(read_columns, fn, combine)`` folds ``fn`` over all raw batches.

    Returns
    -------
    formula : str
        The mixed formula.
    transform : Centring or None
        Adds the centred columns to a raw batch.
    extra : list of str
        Raw columns the transform reads besides the model's.
    """
    from hlm.frame import check_columns
    from hlm.spec.levels_data import _names, _response_variables, term_variables

    res = spec._resolve()
    have = set(columns)
    groups = [spec.group] + ([spec.group3] if spec.three else [])
    derived = {derived_name(v, k) for v, ks in spec.center.items() for k in ks}
    raw: set[str] = _response_variables(spec.response, have)
    for t in [*spec._t1, *(t for ts in spec._t2.values() for t in ts)]:
        raw |= set(term_variables(t, have))
    for ts in spec._t3.values():
        for t in ts:
            raw |= set(term_variables(t, have))
    raw = (raw - derived) | set(spec.center)
    named = groups + sorted(raw - set(groups))
    check_columns(named, {c: () for c in columns}, "the level equations")
    clash = sorted(derived & have)
    if clash:
        raise DataError(
            f"center= derives column(s) {clash}, but the data already have them; rename "
            "those columns or centre by hand (hlm.center) instead of center="
        )
    keys = [[spec.group3, spec.group], [spec.group3]] if spec.three else [[spec.group]]
    complete = sorted(raw | set(groups))
    level1 = _names(spec._t1)
    level2 = _names([t for ts in spec._t2.values() for t in ts])
    rules, means = [], []
    for var, kinds in spec.center.items():
        for kind in kinds:
            k = {"group": 0, "mean": 0, "group3": 1, "mean3": 1}.get(kind)
            if kind == "grand":
                k = -1 if var in level1 else (0 if var in level2 else 1)
            rules.append((derived_name(var, kind), var, kind, k))
            means.append((k, var))
    means = list(dict.fromkeys(means))
    checks = _checks(spec, res, have | derived, term_variables)
    first = [(k, v) for k, v, *_ in checks if v not in derived]
    later = [(k, v) for k, v, *_ in checks if v in derived]
    stats = None
    transform = None
    if means or first:
        stats = mapreduce(complete, _Pass(keys, complete, means, list(dict.fromkeys(first))),
                          merge_stats)
    if rules:
        transform = _centring(stats, keys, complete, rules)
    if later:
        more = mapreduce(
            complete, _Pass(keys, complete, [], list(dict.fromkeys(later)), transform), merge_stats
        )
        stats = more if stats is None else _with_spreads(stats, more)
    if checks:
        _run_checks(spec, checks, stats, keys)
    extra = sorted(set(complete))
    return spec.mixed_formula(), transform, extra


def _with_spreads(stats: GroupStats, more: GroupStats) -> GroupStats:
    """``stats`` plus the spreads of a second pass (same rows, so the same groups)."""
    merged = GroupStats(stats.keys, levels=stats.levels.copy())
    merged.sums, merged.counts = stats.sums, stats.counts
    merged.low, merged.high = dict(stats.low), dict(stats.high)
    merged.first, merged.varies = dict(stats.first), dict(stats.varies)
    merged.absmax, merged.grand = dict(stats.absmax), stats.grand
    only = GroupStats(more.keys, levels=more.levels)
    only.low, only.high, only.first, only.varies = more.low, more.high, more.first, more.varies
    only.absmax = more.absmax
    return merge_stats(merged, only)


def _centring(stats: GroupStats, keys, complete, rules) -> Centring:
    means, grand = {}, {}
    for _name, var, kind, k in rules:
        if k >= 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = stats.sums[(k, var)] / stats.counts[(k, var)]
            means[(k, var)] = mean[: stats.levels.sizes[k]]
        if kind == "grand":
            if k < 0:
                s, c = stats.grand[var]
                grand[var] = s / c if c else np.nan
            else:
                g = means[(k, var)]
                # HLM centres a level-2 (level-3) variable at the mean of its group means
                grand[var] = float(np.nanmean(g)) if np.isfinite(g).any() else np.nan
    return Centring(
        complete=list(complete),
        derived=[r[0] for r in rules],
        rules=list(rules),
        keys=keys,
        coder=KeyCoder(stats.levels),
        means=means,
        grand=grand,
    )


def _checks(spec, res, have, term_variables):
    """``(key set, variable, kind, what, unit, option)`` of every check on the data."""
    unit2 = f"{spec.group}:{spec.group3}" if spec.three else spec.group
    names = list(spec.level2)
    out = []
    for qi, terms in enumerate(res.l2):
        for s in terms:
            for var in term_variables(s, have):
                what = f"the level-2 equation of {names[qi]!r}"
                out.append((0, var, "constant", what, unit2, None))
    if spec.three:
        for (qi, si), terms in res.l3.items():
            what = f"the level-3 equation of ({names[qi]!r}, {res.l2[qi][si].name!r})"
            for t in terms:
                for var in term_variables(t, have):
                    out.append((1, var, "constant", what, spec.group3, None))
        for qi, si in res.random3:
            term = res.l2[qi][si].times(res.l1[qi])
            if not term.is_intercept:
                vs = term_variables(term, have)
                for var in vs:
                    out.append((1, var, "varies", term.name, spec.group3, ("random3", tuple(vs))))
    for qi in res.random:
        term = res.l1[qi]
        if not term.is_intercept:
            vs = term_variables(term, have)
            for var in vs:
                out.append((0, var, "varies", term.name, unit2, ("random", tuple(vs))))
    return out


def _varying(stats: GroupStats, k: int, var: str):
    """``(labels of groups where var varies, number of groups)`` over complete rows."""
    size = stats.levels.sizes[k]
    if (k, var) in stats.low:
        lo, hi = stats.low[(k, var)][:size], stats.high[(k, var)][:size]
        tol = 1e-9 * max(stats.absmax.get(var, 0.0), np.finfo(float).tiny)
        bad = np.flatnonzero(hi - lo > tol)
        n = int(np.isfinite(lo).sum())
    else:
        varies = stats.varies[(k, var)][:size]
        bad = np.flatnonzero(varies)
        n = int(sum(x is not None for x in stats.first[(k, var)][:size]))
    return [_label(stats.levels, k, i) for i in bad], n


def _label(tables: LevelTables, k: int, i: int) -> str:
    cols = tables.term_factors[k]
    if len(cols) == 1:
        return str(tables.factors[cols[0]].values[i])
    parts = tables.terms[k].parts[i]
    values = [str(tables.factors[c].values[p]) for c, p in zip(cols, parts, strict=True)]
    return ":".join(reversed(values))  # (group3, group) is the unit group:group3


def _show(labels: list[str]) -> str:
    shown = ", ".join(labels[:_SHOW])
    return shown + (", ..." if len(labels) > _SHOW else "")


def _run_checks(spec, checks, stats, keys) -> None:
    done = set()
    for k, var, kind, what, unit, extra in checks:
        if kind == "constant":
            bad, n = _varying(stats, k, var)
            if bad:
                raise DataError(
                    f"{var!r} in {what} varies within {len(bad)} of {n} groups of {unit} "
                    f"({_show(bad)}); a predictor at this level must be constant within each "
                    f"group: use its group mean (hlm.group_mean, or center={{{var!r}: 'mean'}}) "
                    "or move it to level 1"
                )
            continue
        option, variables = extra
        if (what, option) in done:
            continue
        done.add((what, option))
        if all(not _varying(stats, k, v)[0] for v in variables):
            raise DataError(
                f"the coefficient of {what!r} is random ({option}=) but "
                f"{', '.join(repr(v) for v in variables)} is constant within every group of "
                f"{unit}, so its variance across groups cannot be estimated; remove it from "
                f"{option}= (it may be a predictor of a higher level instead)"
            )


def name_gammas(spec, design) -> None:
    """Give a level-equation spec its fixed-effect column names from the fitted design."""
    from hlm.spec.level_terms import INTERCEPT, term_of

    out = {}
    for st in design._rhs_spec.structure:
        cols = [INTERCEPT if c == "Intercept" else str(c) for c in st.columns]
        out[term_of(st.term).key] = cols
    spec._columns = out
