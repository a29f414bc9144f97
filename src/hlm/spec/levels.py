"""``hlm.Levels``: a hierarchical linear model written as level equations.

Level 1 is a regression within groups, ``y_ij = sum_q beta_qj a_qij + r_ij``; level 2 explains
each level-1 coefficient by group-level predictors, ``beta_qj = sum_s gamma_qs W_sj + u_qj``,
with a random effect ``u_qj`` only for the coefficients listed in ``random``. Substituting
level 2 into level 1 gives one mixed model, written here as an lme4 formula
(:meth:`Levels.mixed_formula`), which the engines fit. A third level is one more substitution:
``beta_pqk = sum_s gamma_pqs W_sk + u_pqk`` for the level-2 coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hlm.errors import FormulaError
from hlm.spec.level_terms import (
    INTERCEPT,
    LevelTerm,
    fixed_rhs,
    parse_key,
    parse_rhs,
    quote_name,
    random_lhs,
    split_formula,
    strip_tilde,
)

#: centring kinds accepted by ``center=``; the first three need only two levels
CENTER_KINDS = ("group", "grand", "mean", "group3", "mean3")
_CENTRING = ("group", "grand", "group3")  # kinds that replace the variable in the equations


@dataclass
class Resolved:
    """The spec after centring substitutions: what the mixed formula is built from.

    ``l2[q]`` are the level-2 terms of level-1 coefficient ``q`` (an index into ``l1``);
    ``l3[(q, s)]`` the level-3 terms of level-2 coefficient ``(q, s)``; ``random`` the
    indices ``q`` with a level-2 random effect; ``random3`` the pairs with a level-3 one.
    ``products`` lists every fixed-effect term with its index tuple, in HLM order.
    """

    response: str
    l1: list[LevelTerm]
    l2: list[list[LevelTerm]]
    l3: dict = field(default_factory=dict)
    random: list[int] = field(default_factory=list)
    random3: list[tuple[int, int]] = field(default_factory=list)
    three: bool = False
    products: list = field(default_factory=list)


class Levels:
    """A two- or three-level hierarchical linear model as level equations.

    Parameters
    ----------
    level1 : str
        The level-1 model, ``"y ~ x1 + x2"`` (intercept implied unless ``0 +``).
    level2 : dict, optional
        Level-1 coefficient name (``"(Intercept)"``, ``"x1"``, ...) -> level-2 right-hand side
        (``"~ w1 + w2"``; intercept implied). A coefficient not named gets ``"~ 1"``.
    group : str
        The level-2 grouping column.
    random : list of str, optional
        Level-1 coefficients with a level-2 random effect. Default: the intercept only (as
        HLM 8); ``[]`` gives a model without random effects (fitted by OLS).
    level3 : dict, optional
        ``(level-1 coefficient, level-2 term)`` -> level-3 right-hand side, e.g.
        ``{("(Intercept)", "(Intercept)"): "~ W"}``. Unnamed pairs get ``"~ 1"``.
    group3 : str, optional
        The level-3 grouping column; ``group`` is nested in it (level-2 ids may repeat
        across level-3 units). Giving it makes the model three-level.
    random3 : list of (str, str), optional
        Level-2 coefficients with a level-3 random effect. Default: the intercepts of the
        level-2 equations of the coefficients in ``random``.
    center : dict, optional
        Variable -> kind or list of kinds: ``"group"`` (group-mean centring; the equations
        then use ``<x>_cwc``), ``"grand"`` (``<x>_cgm``), ``"mean"`` (adds the group mean
        ``<x>_mean`` for use as a level-2 predictor); with three levels also ``"group3"``
        and ``"mean3"`` (within level-3 units). See :mod:`hlm.centering`.

    Examples
    --------
    The intercepts- and slopes-as-outcomes model of Raudenbush & Bryk (2002, ch. 4):

    >>> import hlm
    >>> spec = hlm.Levels(
    ...     "MathAch ~ cses",
    ...     {"(Intercept)": "~ MEANSES + Sector", "cses": "~ MEANSES + Sector"},
    ...     group="School",
    ...     random=["(Intercept)", "cses"],
    ... )
    >>> spec.mixed_formula()
    'MathAch ~ MEANSES + Sector + cses + MEANSES:cses + Sector:cses + (cses | School)'
    """

    def __init__(
        self,
        level1,
        level2=None,
        *,
        group,
        random=None,
        level3=None,
        group3=None,
        random3=None,
        center=None,
    ):
        self.response, rhs = split_formula(level1, "the level-1 formula")
        self.level1 = level1.strip()
        self._t1 = parse_rhs(rhs, "the level-1 formula")
        if not self._t1:
            raise FormulaError(f"the level-1 formula {level1!r} has no coefficients")
        self.group = _group_name(group, "group")
        self.group3 = None if group3 is None else _group_name(group3, "group3")
        self.three = self.group3 is not None
        if not self.three and (level3 or random3):
            raise FormulaError("level3= and random3= need the level-3 grouping column group3=")
        if self.three and self.group3 == self.group:
            raise FormulaError(f"group and group3 are both {group!r}; they must differ")
        self._t2: dict[str, list[LevelTerm]] = {}
        self.level2 = self._read_level2(level2 or {})
        self.random = self._read_random(random)
        self._t3: dict[tuple[str, str], list[LevelTerm]] = {}
        self.level3 = self._read_level3(level3 or {}) if self.three else {}
        self.random3 = self._read_random3(random3) if self.three else ()
        self.center = self._read_center(center or {})
        self._columns: dict | None = None  # fixed-effect column names, set by prepare()
        self._resolve()  # refuses centring that does not fit the equations, now

    # ------------------------------------------------------------------ reading
    def _coef(self, key, what: str) -> str:
        term = parse_key(key, what)
        for t in self._t1:
            if t.key == term.key:
                return t.name
        have = ", ".join(repr(t.name) for t in self._t1)
        raise FormulaError(
            f"{what} {key!r} is not a level-1 coefficient; the level-1 formula "
            f"{self.level1!r} has {have}"
        )

    def _read_level2(self, level2) -> dict[str, str]:
        if not isinstance(level2, dict):
            raise FormulaError("level2 must be a dict: coefficient name -> '~ right-hand side'")
        given: dict[str, str] = {}
        for key, value in level2.items():
            name = self._coef(key, "the level-2 equation for")
            if name in given:
                raise FormulaError(f"two level-2 equations for the coefficient {name!r}")
            given[name] = strip_tilde(value, f"the level-2 equation of {name!r}")
        out = {}
        for t in self._t1:
            rhs = given.get(t.name, "1")
            self._t2[t.name] = parse_rhs(rhs, f"the level-2 equation of {t.name!r}")
            out[t.name] = rhs
        return out

    def _read_random(self, random) -> tuple[str, ...]:
        if random is None:
            if not any(t.is_intercept for t in self._t1):
                raise FormulaError(
                    "the level-1 formula has no intercept, so the default random intercept "
                    "does not apply; say which coefficients are random: random=['x'] (or [])"
                )
            return (INTERCEPT,)
        if isinstance(random, str):
            random = [random]
        chosen = {self._coef(k, "the random coefficient") for k in random}
        return tuple(t.name for t in self._t1 if t.name in chosen)

    def _pair(self, pair, what: str) -> tuple[str, str]:
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise FormulaError(
                f"{what} {pair!r} must be a pair (level-1 coefficient, level-2 term), e.g. "
                "('(Intercept)', '(Intercept)')"
            )
        q = self._coef(pair[0], what)
        term = parse_key(pair[1], what)
        for t in self._t2[q]:
            if t.key == term.key:
                return q, t.name
        have = ", ".join(repr(t.name) for t in self._t2[q])
        raise FormulaError(
            f"{what} {tuple(pair)!r}: the level-2 equation of {q!r} (~ {self.level2[q]}) has "
            f"no term {pair[1]!r}; its terms are {have}"
        )

    def _read_level3(self, level3) -> dict[tuple[str, str], str]:
        if not isinstance(level3, dict):
            raise FormulaError("level3 must be a dict: (coefficient, term) -> '~ rhs'")
        given = {}
        for pair, value in level3.items():
            key = self._pair(pair, "the level-3 equation for")
            if key in given:
                raise FormulaError(f"two level-3 equations for {key!r}")
            given[key] = strip_tilde(value, f"the level-3 equation of {key!r}")
        out = {}
        for q in self.level2:
            for s in self._t2[q]:
                rhs = given.get((q, s.name), "1")
                self._t3[(q, s.name)] = parse_rhs(rhs, f"the level-3 equation of {(q, s.name)}")
                out[(q, s.name)] = rhs
        return out

    def _read_random3(self, random3) -> tuple[tuple[str, str], ...]:
        if random3 is None:
            return tuple(
                (q, INTERCEPT) for q in self.random if any(t.is_intercept for t in self._t2[q])
            )
        chosen = {self._pair(p, "the level-3 random coefficient") for p in random3}
        return tuple(k for k in self.level3 if k in chosen)

    def _read_center(self, center) -> dict[str, tuple[str, ...]]:
        if not isinstance(center, dict):
            raise FormulaError("center must be a dict: variable -> 'group' | 'grand' | 'mean'")
        out = {}
        for var, kinds in center.items():
            kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
            bad = [k for k in kinds if k not in CENTER_KINDS]
            if bad or not kinds:
                raise FormulaError(
                    f"center={{{var!r}: {kinds!r}}}: kinds are {', '.join(CENTER_KINDS)}"
                )
            if not self.three and any(k in ("group3", "mean3") for k in kinds):
                raise FormulaError(f"center kind 'group3'/'mean3' for {var!r} needs group3=")
            if sum(k in _CENTRING for k in kinds) > 1:
                raise FormulaError(
                    f"center={{{var!r}: {kinds!r}}} asks for two centrings of the same "
                    "variable; choose one of 'group', 'grand', 'group3'"
                )
            out[str(var)] = tuple(k for k in CENTER_KINDS if k in kinds)
        return out

    # ------------------------------------------------------------------ the mixed model
    def _resolve(self) -> Resolved:
        from hlm.spec.levels_data import substitution_maps

        maps = substitution_maps(self)
        t1 = [t.substitute(maps[1]) for t in self._t1]
        names = list(self.level2)
        l2 = [[s.substitute(maps[2]) for s in self._t2[q]] for q in names]
        res = Resolved(self.response, t1, l2, three=self.three)
        res.random = [names.index(q) for q in self.random]
        if self.three:
            for qi, q in enumerate(names):
                for si, s in enumerate(self._t2[q]):
                    res.l3[(qi, si)] = [t.substitute(maps[3]) for t in self._t3[(q, s.name)]]
            res.random3 = [
                (names.index(q), [s.name for s in self._t2[q]].index(s)) for q, s in self.random3
            ]
        seen: dict[frozenset, tuple] = {}
        for qi, q in enumerate(t1):
            for si, s in enumerate(l2[qi]):
                for ti, t in enumerate(res.l3.get((qi, si), [None])):
                    idx = (qi, si) if t is None else (qi, si, ti)
                    term = s.times(q) if t is None else t.times(s).times(q)
                    if len(set(term.factors)) < len(term.factors) or term.key in seen:
                        other = seen.get(term.key, idx)
                        raise FormulaError(
                            f"the fixed effect {term.name!r} arises twice in the mixed model "
                            f"(coefficients {other} and {idx} in HLM numbering): a variable "
                            "appears at two levels; remove one"
                        )
                    seen[term.key] = idx
                    res.products.append((idx, term))
        return res

    def mixed_formula(self) -> str:
        """The equivalent lme4 formula (centred variables under their derived names).

        Three-level models use ``(... | group3) + (... | group:group3)``, the expansion of
        lme4's ``(... | group3/group)``, so the groups are named ``group3`` and
        ``group:group3``.
        """
        res = self._resolve()
        out = f"{res.response} ~ {fixed_rhs([term for _, term in res.products])}"
        if self.three and res.random3:
            cols = [res.l2[q][s].times(res.l1[q]) for q, s in res.random3]
            out += f" + ({random_lhs(cols)} | {quote_name(self.group3)})"
        if res.random:
            cols = [res.l1[q] for q in res.random]
            grp = quote_name(self.group)
            if self.three:
                grp = f"{grp}:{quote_name(self.group3)}"
            out += f" + ({random_lhs(cols)} | {grp})"
        return out

    def prepare(self, data):
        """Check the spec against ``data`` and return ``(mixed_formula, data)``.

        Centred columns are derived on a copy of the data (``data`` itself is not changed).
        Errors (:class:`hlm.DataError`) name level-2 predictors that vary within groups and
        random coefficients whose variable is constant within every group. Remembers the
        fixed-effect column names, which :meth:`gamma_map` and :meth:`equations` then use.
        """
        from hlm.spec.levels_data import prepare_data

        formula = self.mixed_formula()
        derived, columns = prepare_data(self, self._resolve(), data)
        self._columns = columns
        return formula, derived

    # ------------------------------------------------------------------ equations
    def gammas(self) -> list:
        """The fixed effects as HLM gammas (list of :class:`hlm.spec.equations.Gamma`)."""
        return self._gamma_table().gammas

    def _gamma_table(self):
        from hlm.spec.equations import gamma_table

        return gamma_table(self._resolve(), self._columns)

    def gamma_map(self) -> dict[str, str]:
        """Gamma name (``"gamma_01"``; ``"gamma_010"`` with three levels) -> fixed-effect column.

        Column names are formulaic's, as in ``result.fixef`` (``"(Intercept)"``,
        ``"Sector[T.Catholic]:cses"``). Before :meth:`prepare` has seen data, a categorical
        predictor shows as one column named after its term (``"Sector"``).
        """
        return {g.name: g.column for g in self.gammas()}

    def equations(self, latex: bool = False) -> str:
        """The level-1, level-2 (and level-3) equations and the combined mixed equation.

        Parameters
        ----------
        latex : bool
            Plain text (default) or a LaTeX ``aligned`` block.
        """
        from hlm.spec.equations import render

        return render(self, self._resolve(), self._gamma_table(), latex=latex)

    # ------------------------------------------------------------------ text form
    def to_text(self) -> str:
        """The spec in the text form of docs/levels.md (``Levels.from_text`` reads it)."""
        from hlm.spec.levels_text import to_text

        return to_text(self)

    @classmethod
    def from_text(cls, text: str) -> Levels:
        """Read a spec written in the text form of docs/levels.md."""
        from hlm.spec.levels_text import from_text

        return from_text(text)

    # ------------------------------------------------------------------ identity
    def _key(self) -> tuple:
        return (
            self.level1,
            tuple(self.level2.items()),
            self.group,
            self.random,
            tuple(self.level3.items()),
            self.group3,
            self.random3,
            tuple(sorted(self.center.items())),
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, Levels) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        level2 = {k: f"~ {v}" for k, v in self.level2.items()}
        parts = [repr(self.level1), repr(level2), f"group={self.group!r}"]
        parts.append(f"random={list(self.random)!r}")
        if self.three:
            parts.append(f"level3={ {k: f'~ {v}' for k, v in self.level3.items()}!r}")
            parts.append(f"group3={self.group3!r}")
            parts.append(f"random3={list(self.random3)!r}")
        if self.center:
            parts.append(f"center={self.center!r}")
        return f"Levels({', '.join(parts)})"

    def __str__(self) -> str:
        return self.equations()


def _group_name(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FormulaError(f"{what} must be the name of a grouping column, got {value!r}")
    return value.strip()
