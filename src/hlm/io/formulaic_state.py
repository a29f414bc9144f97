"""formulaic's coding state (categories, contrasts, stateful transforms) as JSON data.

A fitted model's fixed-effects design is a formulaic ``ModelSpec`` fixed on the data: the
levels and contrasts of each categorical factor (``encoder_state``) and the statistics of
stateful transforms such as ``center(x)`` or ``poly(x, 2)`` (``transform_state``).  With
both, a new ``ModelSpec`` codes new data exactly as the fit did.

The state holds numbers, strings, lists, dicts with non-string keys, NumPy scalars and
arrays, and a few formulaic dataclasses and enums (``ContrastsState``,
``TreatmentContrasts``, ``Kind``, the ``UNSET`` sentinel).  They are written as tagged JSON;
reading rebuilds only dataclasses and enums defined in formulaic's own modules, so a file
cannot make the reader construct anything else (no pickle).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import math

import numpy as np

_ALLOWED = "formulaic."


class StateError(TypeError):
    """A value in a formulaic state that this codec does not know how to store."""


def encode(obj):
    """JSON data for ``obj`` (see the module docstring); :class:`StateError` otherwise."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return {"__enum__": _qualname(obj), "value": encode(obj.value)}
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else {"__float__": repr(x)}
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufU":
            raise StateError(f"cannot store an array of dtype {obj.dtype}")
        return {"__ndarray__": encode(obj.tolist()), "dtype": obj.dtype.str}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v) for v in obj]}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if isinstance(obj, dict):
        return {"__dict__": [[encode(k), encode(v)] for k, v in obj.items()]}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return {"__dataclass__": _qualname(obj), "fields": fields}
    raise StateError(f"cannot store a {type(obj).__module__}.{type(obj).__qualname__}")


def decode(data):
    """The value that :func:`encode` wrote."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__tuple__" in data:
        return tuple(decode(v) for v in data["__tuple__"])
    if "__dict__" in data:
        return {_key(decode(k)): decode(v) for k, v in data["__dict__"]}
    if "__float__" in data:
        return float(data["__float__"])
    if "__ndarray__" in data:
        return np.array(decode(data["__ndarray__"]), dtype=np.dtype(data["dtype"]))
    if "__enum__" in data:
        cls = _lookup(data["__enum__"])
        if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
            raise StateError(f"{data['__enum__']} is not an enum")
        return cls(decode(data["value"]))
    if "__dataclass__" in data:
        cls = _lookup(data["__dataclass__"])
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise StateError(f"{data['__dataclass__']} is not a dataclass")
        return cls(**{k: decode(v) for k, v in data["fields"].items()})
    raise StateError(f"unknown tagged value {sorted(data)}")


def _key(k):
    return tuple(k) if isinstance(k, list) else k


def _qualname(obj) -> str:
    cls = type(obj)
    if not cls.__module__.startswith(_ALLOWED):
        raise StateError(f"cannot store a {cls.__module__}.{cls.__qualname__}")
    return f"{cls.__module__}:{cls.__qualname__}"


def _lookup(name: str):
    module, _, qual = name.partition(":")
    if not module.startswith(_ALLOWED):
        raise StateError(f"refusing to build {name}: only formulaic's own types are read")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def spec_to_json(spec) -> dict:
    """A formulaic ``ModelSpec`` as JSON data: formula text, options and states."""
    terms = [str(t) for t in spec.formula]
    text = str(spec.formula)
    if "1" not in terms:
        # the text of a formula without an intercept term (a response, or "0 + x") would
        # be read back with formulaic's implicit intercept: say it has none
        text = "0 + " + text
    return {
        "formula": text,
        "ensure_full_rank": bool(spec.ensure_full_rank),
        "transform_state": encode(dict(spec.transform_state)),
        "encoder_state": encode(dict(spec.encoder_state)),
    }


def spec_from_json(data: dict):
    """The formulaic ``ModelSpec`` that :func:`spec_to_json` wrote."""
    from formulaic import ModelSpec

    return ModelSpec(
        formula=data["formula"],
        ensure_full_rank=data["ensure_full_rank"],
        na_action="ignore",
        transform_state=decode(data["transform_state"]),
        encoder_state=decode(data["encoder_state"]),
    )
