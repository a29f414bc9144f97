"""The text form of ``hlm.Levels`` (docs/levels.md): reading, writing, round trips, errors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hlm
from hlm import FormulaError

MODEL_D = hlm.Levels(
    "MathAch ~ cses",
    {"(Intercept)": "~ MEANSES + Sector", "cses": "~ MEANSES + Sector"},
    group="School",
    random=["(Intercept)", "cses"],
)


def test_writes_every_equation():
    assert MODEL_D.to_text() == (
        "level1: MathAch ~ cses\n"
        "level2: (Intercept) ~ MEANSES + Sector\n"
        "level2: cses ~ MEANSES + Sector\n"
        "group: School\n"
        "random: (Intercept), cses\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "level1: MathAch ~ cses; level2: (Intercept) ~ MEANSES + Sector, cses ~ MEANSES + "
        "Sector; group: School; random: (Intercept), cses",
        """
        # model (d) of Raudenbush & Bryk, ch. 4
        level1: MathAch ~ cses          # level 1
        level2: (Intercept) ~ MEANSES + Sector,
                cses ~ MEANSES + Sector # continued on a second line
        group: School
        random: cses, (Intercept)
        """,
    ],
)
def test_reads_the_documented_forms(text):
    assert hlm.Levels.from_text(text) == MODEL_D


def test_defaults_empty_random_quotes_and_brackets():
    spec = hlm.Levels.from_text("level1: y ~ x\ngroup: g")
    assert spec == hlm.Levels("y ~ x", group="g")
    assert hlm.Levels.from_text("level1: y ~ x\ngroup: g\nrandom:").random == ()
    # ';', ',' and '#' inside brackets or quotes belong to the formula
    odd = hlm.Levels(
        "y ~ C(k, Treatment('a;b#c')) + x", {"x": "~ C(w, Treatment('p,q'))"}, group="my group"
    )
    assert "group: `my group`" in odd.to_text()
    assert hlm.Levels.from_text(odd.to_text()) == odd


def test_three_levels_and_centring_round_trip():
    spec = hlm.Levels(
        "y ~ x",
        {"(Intercept)": "~ X + x_mean"},
        group="child",
        random=["(Intercept)", "x"],
        group3="school",
        level3={("(Intercept)", "X"): "~ W", ("x", "(Intercept)"): "~ W"},
        random3=[("(Intercept)", "(Intercept)"), ("(Intercept)", "X")],
        center={"x": ["group", "mean"], "W": "grand"},
    )
    text = spec.to_text()
    assert "level3: [(Intercept), X] ~ W\n" in text
    assert "random3: [(Intercept), (Intercept)], [(Intercept), X]\n" in text
    assert "center: x = group + mean, W = grand\n" in text
    back = hlm.Levels.from_text(text)
    assert back == spec and back.mixed_formula() == spec.mixed_formula()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("group: g", "no 'level1:'"),
        ("level1: y ~ x", "no 'group:'"),
        ("level1: y ~ x\nlevel1: y ~ z\ngroup: g", "line 2: 'level1:' may appear only once"),
        ("y ~ x\ngroup: g", "line 1: expected 'keyword: value'"),
        ("level1: y ~ x\ngroup: g\nlevel2: x", "expected 'coefficient ~ right-hand side'"),
        ("level1: y ~ x\ngroup: g h", "expected one column name"),
        ("level1: y ~ x\ngroup: g\ngroup3: s\nrandom3: (Intercept)", "\\[coefficient, term\\]"),
        ("level1: y ~ x\ngroup: g\ncenter: x", "variable = kind"),
        ("level1: y ~ x\ngroup: g\nrandom: x,", "empty item"),
        ("level1: y ~ x\ngroup: g\nlevel2: z ~ w", "'z' is not a level-1 coefficient"),
    ],
)
def test_text_errors(text, message):
    with pytest.raises(FormulaError, match=message):
        hlm.Levels.from_text(text)


# --- random specs round-trip -------------------------------------------------------------

LEVEL1_TERMS = ["x", "z", "x:z", "np.log(v)", "C(k)"]
LEVEL2_TERMS = ["w", "m", "w:m", "C(s)"]
LEVEL3_TERMS = ["a", "b"]


@st.composite
def specs(draw):
    terms = draw(st.lists(st.sampled_from(LEVEL1_TERMS), min_size=0, max_size=3, unique=True))
    intercept = draw(st.booleans()) or not terms
    level1 = "y ~ " + ("" if intercept else "0 + ") + (" + ".join(terms) or "1")
    coefs = (["(Intercept)"] if intercept else []) + terms
    level2 = {}
    for c in coefs:
        w = draw(st.lists(st.sampled_from(LEVEL2_TERMS), max_size=2, unique=True))
        if w:
            level2[c] = "~ " + " + ".join(w)
    random = draw(st.lists(st.sampled_from(coefs), unique=True))
    kwargs = {"group": draw(st.sampled_from(["g", "school id"])), "random": random}
    if draw(st.booleans()):
        pairs = [(c, "(Intercept)") for c in coefs]
        kwargs["group3"] = "h"
        kwargs["level3"] = {
            p: "~ " + draw(st.sampled_from(LEVEL3_TERMS)) for p in pairs if draw(st.booleans())
        }
        kwargs["random3"] = draw(st.lists(st.sampled_from(pairs), unique=True))
    if "x" in terms and draw(st.booleans()):
        kwargs["center"] = {"x": draw(st.sampled_from(["group", "grand"]))}
    return hlm.Levels(level1, level2, **kwargs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_specs_round_trip(spec):
    text = spec.to_text()
    back = hlm.Levels.from_text(text)
    assert back == spec
    assert back.to_text() == text
    assert back.mixed_formula() == spec.mixed_formula()
    assert back.equations() == spec.equations()


def test_command_line_reads_the_text_form(tmp_path, capsys):
    from hlm.cli import main

    csv = tmp_path / "sleep.csv"
    hlm.datasets.load("sleepstudy").to_csv(csv, index=False)
    spec = tmp_path / "spec.txt"
    spec.write_text("level1: Reaction ~ Days\ngroup: Subject\nrandom: (Intercept), Days\n")
    assert main(["fit", str(csv), "--levels", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "beta_1j = gamma_10 + u_1j" in out
    assert "Formula: Reaction ~ Days + (Days | Subject)" in out
    assert (
        main(["fit", str(csv), "--levels", "level1: Reaction ~ Days; group: Subject; random:"]) == 0
    )
    assert "least squares" in capsys.readouterr().out
    assert main(["fit", str(csv)]) == 2  # neither a formula nor --levels
