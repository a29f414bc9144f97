"""Model specifications: lme4 formulas (and, later, level equations)."""

from hlm.spec.formula import ModelSpec, RandomTerm, parse_formula

__all__ = ["ModelSpec", "RandomTerm", "parse_formula"]
