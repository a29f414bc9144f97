"""Catalogue of the bundled example data sets (names, files, sizes, descriptions)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatasetInfo", "CATALOG"]


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of one bundled data set.

    Attributes
    ----------
    name : str
        Public (lower-case) name accepted by :func:`hlm.datasets.load`.
    key : str
        Original name: stem of the ``.csv.gz`` file and key in ``levels.json``.
    rows : int
        Number of rows.
    source : str
        Where the data come from.
    description : str
        One-line description.
    """

    name: str
    key: str
    rows: int
    source: str
    description: str

    @property
    def filename(self) -> str:
        """Name of the gzipped CSV file in the ``data`` folder."""
        return f"{self.key}.csv.gz"


_ENTRIES = (
    DatasetInfo(
        "hsb",
        "hsb",
        7185,
        "nlme::MathAchieve + nlme::MathAchSchool",
        "High School and Beyond: math achievement of 7185 students in 160 schools, "
        "with school-level covariates and school-centred SES (cses).",
    ),
    DatasetInfo(
        "sleepstudy",
        "sleepstudy",
        180,
        "lme4",
        "Reaction times of 18 subjects over 10 days of sleep deprivation.",
    ),
    DatasetInfo(
        "dyestuff",
        "Dyestuff",
        30,
        "lme4",
        "Yield of dyestuff from 5 samples of each of 6 batches of an intermediate product.",
    ),
    DatasetInfo(
        "dyestuff2",
        "Dyestuff2",
        30,
        "lme4",
        "Simulated data like Dyestuff but with no batch effect (singular fit).",
    ),
    DatasetInfo(
        "penicillin",
        "Penicillin",
        144,
        "lme4",
        "Penicillin potency: inhibition diameter for 6 samples on 24 plates (crossed).",
    ),
    DatasetInfo(
        "pastes",
        "Pastes",
        60,
        "lme4",
        "Strength of paste: 3 casks nested in each of 10 batches, 2 assays each.",
    ),
    DatasetInfo(
        "insteval",
        "InstEval",
        73421,
        "lme4",
        "ETH Zurich lecture evaluations: 2972 students rating 1128 lecturers (crossed).",
    ),
)

CATALOG: dict[str, DatasetInfo] = {entry.name: entry for entry in _ENTRIES}
