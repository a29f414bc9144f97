"""HLM notation for a level-equation spec: gammas, and the equations as text or LaTeX.

Two levels (Raudenbush & Bryk 2002, ch. 2-4)::

    Y_ij    = beta_0j + beta_1j*X_ij + r_ij
    beta_qj = gamma_q0 + gamma_q1*W_j + u_qj

Three levels (ch. 8)::

    Y_ijk    = pi_0jk + pi_1jk*a_ijk + e_ijk
    pi_pjk   = beta_p0k + beta_p1k*X_jk + r_pjk
    beta_pqk = gamma_pq0 + gamma_pq1*W_k + u_pqk

Indices count columns, not terms: a categorical predictor with two dummy columns has two
gammas. Index 0 is the intercept of its equation; the other columns are numbered from 1 in
the order of the fixed-effect design. Indices are written together (``gamma_01``) unless
one of them exceeds 9, then separated by commas (``gamma_1,10``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hlm.spec.level_terms import split_column_name


@dataclass(frozen=True)
class Gamma:
    """One fixed effect in HLM notation.

    Attributes
    ----------
    name : str
        ``"gamma_01"`` (``"gamma_010"`` with three levels).
    index : tuple of int
        ``(q, s)`` or ``(p, q, s)``.
    column : str
        The fixed-effect column it multiplies, as in ``result.fixef``.
    variables : tuple of (str or None)
        The variable at each level, level 1 first; None for an intercept.
    """

    name: str
    index: tuple[int, ...]
    column: str
    variables: tuple


@dataclass
class GammaTable:
    """Gammas plus the labels of the level-1 (and level-2) coefficients they belong to.

    ``coefs``: ``(qi, label, index)`` per level-1 coefficient column; ``coefs2``:
    ``(qi, si, q_label, s_label, (q_index, s_index))`` per level-2 coefficient (three levels).
    """

    gammas: list[Gamma] = field(default_factory=list)
    coefs: list = field(default_factory=list)
    coefs2: list = field(default_factory=list)
    sep: str = ""


def _split(col: str, sizes: list[int], default: list):
    parts = split_column_name(col) if sum(sizes) else []
    if len(parts) != sum(sizes):
        return default  # a name we cannot split: fall back to the terms' names
    out, k = [], 0
    for n in sizes:
        out.append(":".join(parts[k : k + n]) if n else None)
        k += n
    return out


def gamma_table(res, columns: dict | None) -> GammaTable:
    """Number the fixed effects of a resolved spec in HLM notation.

    ``columns`` maps a fixed term's key to its column names (from the data); without it
    every term is one column named after the term.
    """
    q_index: dict = {}  # (qi, q label) -> q
    s_index: dict = {}  # ((qi, q label), si, s label) -> s
    t_index: dict = {}  # (s key, ti, t label) -> t
    raw = []
    for idx, term in res.products:
        qi, si = idx[0], idx[1]
        q, s = res.l1[qi], res.l2[qi][si]
        t = res.l3[(qi, si)][idx[2]] if len(idx) == 3 else None
        sizes = [len(t.factors) if t else 0, len(s.factors), len(q.factors)]
        default = [t.name if t and t.factors else None, _label(s), _label(q)]
        for col in (columns or {}).get(term.key) or [term.name]:
            # the product was written level-3 factors first, level-1 factors last
            tn, sn, qn = _split(col, sizes, default)
            qkey = (qi, qn)
            nums = (_number(q_index, (), qkey, qn is None),)
            skey = (qkey, si, sn)
            nums += (_number(s_index, qkey, skey, sn is None),)
            if t is not None:
                nums += (_number(t_index, skey, (skey, idx[2], tn), tn is None),)
            raw.append((nums, col, (qn, sn, tn)[: len(idx)]))
    for qi, q in enumerate(res.l1):  # coefficients with no fixed part (random only)
        if not any(k[0] == qi for k in q_index):
            _number(q_index, (), (qi, _label(q)), q.is_intercept)
    for qi, si in res.random3:
        for qkey in [k for k in q_index if k[0] == qi]:
            if not any(k[0] == qkey and k[1] == si for k in s_index):
                s = res.l2[qi][si]
                _number(s_index, qkey, (qkey, si, _label(s)), s.is_intercept)
    table = GammaTable()
    every = [n for nums, _, _ in raw for n in nums] + list(q_index.values())
    table.sep = "," if every and max(every) > 9 else ""
    for nums, col, variables in sorted(raw, key=lambda r: r[0]):
        name = "gamma_" + table.sep.join(str(n) for n in nums)
        table.gammas.append(Gamma(name, nums, col, variables))
    table.coefs = sorted(((k[0], k[1], v) for k, v in q_index.items()), key=lambda c: c[2])
    for (qkey, si, sn), snum in s_index.items():
        table.coefs2.append((qkey[0], si, qkey[1], sn, (q_index[qkey], snum)))
    table.coefs2.sort(key=lambda c: c[4])
    return table


def _label(term) -> str | None:
    return None if term.is_intercept else term.name


def _number(store: dict, parent, key, is_const: bool) -> int:
    """Index of ``key`` among its siblings under ``parent``: 0 for a constant, else next."""
    if key not in store:
        siblings = [v for k, v in store.items() if (k[0] if parent != () else ()) == parent]
        store[key] = 0 if is_const else max([0, *siblings]) + 1
    return store[key]


# ---------------------------------------------------------------------- rendering
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "#": r"\#",
    "%": r"\%",
    "&": r"\&",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "^": r"\^{}",
    "~": r"\~{}",
}


class _Style:
    """Symbols, variables and products in plain text or LaTeX."""

    def __init__(self, latex: bool, sep: str):
        self.latex = latex
        self.sep = sep

    def sym(self, base: str, nums, sub: str = "") -> str:
        idx = self.sep.join(str(n) for n in nums)
        tail = f"{self.sep}{sub}" if (sub and self.sep and idx) else sub
        if self.latex:
            greek = "\\" if base in ("beta", "gamma", "pi") else ""
            return f"{greek}{base}_{{{idx}{tail}}}"
        return f"{base}_{idx}{tail}"

    def var(self, name: str, sub: str) -> str:
        if self.latex:
            text = "".join(_LATEX_SPECIAL.get(c, c) for c in name)
            return f"\\text{{{text}}}_{{{sub}}}"
        return f"{name}_{sub}"

    def times(self, *parts) -> str:
        return (r"\," if self.latex else "*").join(p for p in parts if p)


def render(spec, res, table: GammaTable, latex: bool = False) -> str:
    """The level equations, the mixed equation and the gamma -> column list."""
    st = _Style(latex, table.sep)
    three = res.three
    sub1, sub2, sub3 = ("ijk", "jk", "k") if three else ("ij", "j", "")
    coef1 = "pi" if three else "beta"
    rand1 = "r" if three else "u"
    resid = "e" if three else "r"
    y = st.var(res.response, sub1)
    random_q = [c for c in table.coefs if c[0] in res.random]
    sections: list[tuple[str, list[str]]] = []

    # level 1
    rhs = [st.times(st.sym(coef1, [n], sub2), _v(st, label, sub1)) for _, label, n in table.coefs]
    sections.append(("Level-1 model", [f"{y} = {' + '.join(rhs + [st.sym(resid, [], sub1)])}"]))

    # level 2 (and 3): one equation per coefficient
    level2 = []
    for qi, qlabel, qn in table.coefs:
        lhs = st.sym(coef1, [qn], sub2)
        if three:
            terms = [
                st.times(st.sym("beta", c[4], sub3), _v(st, c[3], sub2))
                for c in table.coefs2
                if c[0] == qi and c[2] == qlabel
            ]
        else:
            terms = [
                st.times(st.sym("gamma", g.index), _v(st, g.variables[1], sub2))
                for g in table.gammas
                if g.index[0] == qn
            ]
        if qi in res.random:
            terms.append(st.sym(rand1, [qn], sub2))
        level2.append(f"{lhs} = {' + '.join(terms) or '0'}")
    sections.append((f"Level-2 model ({_unit2(spec)})", level2))
    if three:
        level3 = []
        for qi, si, _ql, _sl, nums in table.coefs2:
            terms = [
                st.times(st.sym("gamma", g.index), _v(st, g.variables[2], sub3))
                for g in table.gammas
                if g.index[:2] == nums
            ]
            if (qi, si) in res.random3:
                terms.append(st.sym("u", nums, sub3))
            level3.append(f"{st.sym('beta', nums, sub3)} = {' + '.join(terms) or '0'}")
        sections.append((f"Level-3 model ({spec.group3})", level3))

    # mixed: fixed part grouped by level-1 coefficient, then the random part
    subs = (sub1, sub2, sub3)
    rows = []  # one row of terms per level-1 coefficient, then the random part
    for _, _, qn in table.coefs:
        row = [
            st.times(st.sym("gamma", g.index), *_product(st, g.variables, subs))
            for g in table.gammas
            if g.index[0] == qn
        ]
        if row:
            rows.append(row)
    rand = []
    if three:
        for qi, si, ql, sl, nums in table.coefs2:
            if (qi, si) in res.random3:
                rand.append(st.times(st.sym("u", nums, sub3), *_product(st, (ql, sl), subs)))
    for _, qlabel, qn in random_q:
        rand.append(st.times(st.sym(rand1, [qn], sub2), _v(st, qlabel, sub1)))
    rows.append(rand + [st.sym(resid, [], sub1)])
    pad = r"\quad " if latex else " " * (len(y) + 1)
    lines = [" + ".join(chunk) for row in rows for chunk in _wrap(row, latex, len(pad))]
    mixed = [f"{y} = {lines[0]}", *[f"{pad}+ {ln}" for ln in lines[1:]]]
    sections.append(("Mixed model", mixed))

    arrow = r"\to" if latex else "->"
    sections.append(
        (
            "Fixed effects",
            [f"{st.sym('gamma', g.index)} {arrow} {_col(st, g)}" for g in table.gammas],
        )
    )
    notes = _centring_notes(spec)
    if notes:
        sections.append(
            ("Centring", [r"\text{" + _tex(n) + "}" for n in notes] if latex else notes)
        )
    return _latex_block(sections) if latex else _plain_block(sections)


def _wrap(terms: list[str], latex: bool, indent: int, width: int = 92) -> list[list[str]]:
    """Split a long sum into lines of plain text that fit ``width`` (LaTeX: no split)."""
    if latex:
        return [terms]
    chunks: list[list[str]] = [[]]
    used = indent + 6
    for term in terms:
        if chunks[-1] and used + len(term) + 3 > width:
            chunks.append([])
            used = indent + 6
        chunks[-1].append(term)
        used += len(term) + 3
    return chunks


def _v(st: _Style, label, sub: str) -> str:
    return st.var(label, sub) if label is not None else ""


def _product(st: _Style, variables, subs) -> list[str]:
    # highest level first, as the columns are named (MEANSES_j*cses_ij)
    return [_v(st, v, subs[k]) for k, v in reversed(list(enumerate(variables)))]


def _col(st: _Style, g: Gamma) -> str:
    if st.latex:
        return r"\text{" + _tex(g.column) + "}"
    return g.column


def _tex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def _unit2(spec) -> str:
    return f"{spec.group} in {spec.group3}" if spec.three else spec.group


def _centring_notes(spec) -> list[str]:
    from hlm.centering import derived_name

    unit2, unit3 = _unit2(spec), spec.group3
    words = {
        "group": "{v} minus the mean of {v} in its " + unit2,
        "grand": "{v} minus the grand mean of {v}",
        "mean": "the mean of {v} in each " + unit2,
        "group3": "{v} minus the mean of {v} in its " + str(unit3),
        "mean3": "the mean of {v} in each " + str(unit3),
    }
    return [
        f"{derived_name(var, kind)} = " + words[kind].format(v=var)
        for var, kinds in spec.center.items()
        for kind in kinds
    ]


def _plain_block(sections) -> str:
    out = []
    for title, lines in sections:
        out.append(title)
        out.extend(f"    {ln}" for ln in lines)
        out.append("")
    return "\n".join(out).rstrip("\n")


def _latex_block(sections) -> str:
    rows = []
    for title, lines in sections:
        for k, ln in enumerate(lines):
            head = r"\text{" + _tex(title) + ":}" if k == 0 else ""
            rows.append(f"&{head} && {ln}")
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
