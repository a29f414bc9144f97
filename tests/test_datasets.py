"""Tests of the bundled example data sets (``hlm.datasets``)."""

import pandas as pd
import pytest

from hlm import datasets

ROWS = {
    "hsb": 7185,
    "sleepstudy": 180,
    "dyestuff": 30,
    "dyestuff2": 30,
    "penicillin": 144,
    "pastes": 60,
    "insteval": 73421,
}

COLUMNS = {
    "hsb": [
        "School",
        "Minority",
        "Sex",
        "SES",
        "MathAch",
        "MEANSES",
        "Size",
        "Sector",
        "PRACAD",
        "DISCLIM",
        "HIMINTY",
        "cses",
    ],
    "sleepstudy": ["Reaction", "Days", "Subject"],
    "dyestuff": ["Batch", "Yield"],
    "dyestuff2": ["Batch", "Yield"],
    "penicillin": ["diameter", "plate", "sample"],
    "pastes": ["strength", "batch", "cask", "sample"],
    "insteval": ["s", "d", "studage", "lectage", "service", "dept", "y"],
}

# number of levels of each factor column (README of the source data)
FACTORS = {
    "hsb": {"School": 160, "Minority": 2, "Sex": 2, "Sector": 2, "HIMINTY": 2},
    "sleepstudy": {"Subject": 18},
    "dyestuff": {"Batch": 6},
    "dyestuff2": {"Batch": 6},
    "penicillin": {"plate": 24, "sample": 6},
    "pastes": {"batch": 10, "cask": 3, "sample": 30},
    "insteval": {"s": 2972, "d": 1128, "studage": 4, "lectage": 6, "service": 2, "dept": 14},
}


def test_list_names():
    assert datasets.list() == list(ROWS)


def test_describe():
    table = datasets.describe()
    assert list(table.columns) == ["name", "rows", "source", "description"]
    assert dict(zip(table["name"], table["rows"], strict=True)) == ROWS


@pytest.mark.parametrize("name", list(ROWS))
def test_load_shape_and_columns(name):
    frame = datasets.load(name)
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == (ROWS[name], len(COLUMNS[name]))
    assert list(frame.columns) == COLUMNS[name]


@pytest.mark.parametrize("name", list(ROWS))
def test_column_types(name):
    frame = datasets.load(name)
    for col in frame.columns:
        if col in FACTORS[name]:
            assert isinstance(frame[col].dtype, pd.CategoricalDtype), col
            assert len(frame[col].cat.categories) == FACTORS[name][col], col
            assert frame[col].notna().all(), col
        else:
            assert frame[col].dtype == "float64", col


@pytest.mark.parametrize("name", ["HSB", "SleepStudy", "Dyestuff", "InstEval"])
def test_names_are_case_insensitive(name):
    assert len(datasets.load(name)) == ROWS[name.lower()]


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="sleepstudy") as info:
        datasets.load("nosuchdata")
    assert "nosuchdata" in str(info.value)
    assert "insteval" in str(info.value)


def test_load_returns_independent_copies():
    first = datasets.load("dyestuff")
    first.loc[0, "Yield"] = -1.0
    assert datasets.load("dyestuff").loc[0, "Yield"] == 1545.0


def test_sleepstudy_subject_is_label():
    subject = datasets.load("sleepstudy")["Subject"]
    assert subject.cat.categories[0] == "308"
    assert list(subject.cat.categories[:3]) == ["308", "309", "310"]
    assert subject.iloc[0] == "308"
    assert not subject.cat.ordered


def test_hsb_levels():
    hsb = datasets.load("hsb")
    assert list(hsb["Sector"].cat.categories) == ["Public", "Catholic"]
    assert list(hsb["Sex"].cat.categories) == ["Male", "Female"]
    assert list(hsb["Minority"].cat.categories) == ["No", "Yes"]
    assert hsb["School"].cat.categories[0] == "1224"
    assert hsb["School"].iloc[0] == "1224"
    assert hsb["cses"].iloc[0] == pytest.approx(-1.0936170212766)


def test_hsb_cses_is_school_centred():
    hsb = datasets.load("hsb")
    means = hsb.groupby("School", observed=True)["cses"].mean()
    assert means.abs().max() < 1e-10


def test_insteval_levels():
    ie = datasets.load("insteval")
    assert len(ie["s"].cat.categories) == 2972
    assert list(ie["s"].cat.categories[:3]) == ["1", "2", "3"]
    assert list(ie["d"].cat.categories[:5]) == ["1", "6", "7", "8", "12"]
    assert list(ie["dept"].cat.categories[:3]) == ["15", "5", "10"]
    assert list(ie["service"].cat.categories) == ["0", "1"]
    assert ie["studage"].cat.ordered
    assert list(ie["studage"].cat.categories) == ["2", "4", "6", "8"]
    assert ie["lectage"].cat.ordered
    assert not ie["s"].cat.ordered
    assert set(ie["y"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_pastes_levels():
    pastes = datasets.load("pastes")
    assert list(pastes["cask"].cat.categories) == ["a", "b", "c"]
    assert pastes["sample"].cat.categories[0] == "A:a"
    expected = pastes["batch"].astype(str) + ":" + pastes["cask"].astype(str)
    assert (pastes["sample"].astype(str) == expected).all()


def test_penicillin_is_fully_crossed():
    pen = datasets.load("penicillin")
    counts = pd.crosstab(pen["plate"], pen["sample"])
    assert (counts.to_numpy() == 1).all()
