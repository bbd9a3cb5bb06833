"""What a bound signal's value may be, and the check every decoded value passes before it is stored.

A value of the wrong type must never reach a rule: ``"NaN"`` on a temperature
read as a float NaN, or ``null`` read as "no longer above the limit", would
clear an active alarm on a number nobody sent. So each binding has a *kind*,
worked out once from what the layout says of it (:func:`value_kind`), and a
decoded value that does not fit is a counted decode error with its reason,
exactly like malformed JSON. The stored value is then always what the kind
promises: a finite ``int``/``float``, a ``bool``, a ``str``, a list of finite
numbers (joint angles), or, for a binding the layout says nothing about, a
scalar or a flat list of numbers (never a nested structure).

Numbers written as text (the ``number`` encoding, or a gateway that quotes
every JSON value) are read with a strict ASCII decimal grammar: ``1_000``,
non-ASCII digits, ``NaN``, ``inf`` and hexadecimal, all of which Python's
``float()`` accepts, are refused.
"""

from __future__ import annotations

import math
import re
from typing import Any

NUMBER = "number"  # a finite int or float
BOOLEAN = "boolean"  # a bool (0 and 1 are read as False and True)
TEXT = "text"  # a string, or a number or bool compared as text
JOINTS = "joints"  # a non-empty list of finite numbers
SCALAR = "scalar"  # anything flat: a scalar or a list of finite numbers
MAX_LIST = 4096  # elements of a list value (joints, vectors); telemetry lists are short
MAX_TEXT = 4096  # characters of a text value shown to the operator
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


class WrongValueError(ValueError):
    """A decoded value that does not fit its binding's kind (the message says what was expected)."""


def value_kind(signal: str, encoding: str, unit: str | None, rules: tuple[dict[str, Any], ...]) -> str:
    """The kind of value a binding promises, from its signal name, encoding, unit and rules."""
    if signal == "joints":
        return JOINTS
    if encoding == "number" or unit:
        return NUMBER
    equals = [rule["equals"] for rule in rules if "equals" in rule and "bit" not in rule]
    if any("above" in rule or "below" in rule or "bit" in rule for rule in rules):
        return NUMBER
    if equals and all(isinstance(e, bool) for e in equals):
        return BOOLEAN
    if equals and all(isinstance(e, int | float) and not isinstance(e, bool) for e in equals):
        return NUMBER
    if equals:
        return TEXT
    return SCALAR


def parse_decimal(text: str) -> float:
    """A number written as text, strict ASCII decimal; raises :class:`WrongValueError` with the reason."""
    stripped = text.strip()
    if not _DECIMAL.fullmatch(stripped):
        raise WrongValueError(f"expected a number, got text {_show(stripped)}")
    number = float(stripped)
    if not math.isfinite(number):
        raise WrongValueError(f"number {_show(stripped)} is out of range")
    return number


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"text {_show(value)}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return getattr(value, "description", None) or type(value).__name__


def _finite(value: Any) -> bool:
    """An int or a finite float, not a bool."""
    if type(value) is float:
        return math.isfinite(value)
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number_list(value: Any, what: str) -> list[float]:
    if not isinstance(value, list | tuple) or not value:
        raise WrongValueError(f"expected {what}, got {_describe(value)}")
    if len(value) > MAX_LIST:
        raise WrongValueError(f"a list of {len(value):,} values is over the {MAX_LIST:,} limit")
    for i, item in enumerate(value):
        if not _finite(item):
            raise WrongValueError(f"expected {what}, element {i} is {_describe(item)}")
    return [float(item) for item in value]


def check_value(value: Any, kind: str) -> Any:
    """``value`` as its kind stores it, or :class:`WrongValueError` saying why it does not fit."""
    if type(value) is float and kind != BOOLEAN and kind != JOINTS and -math.inf < value < math.inf:
        return value  # the hot path: a finite float fits every kind but these two (NaN fails the comparison)
    if kind == NUMBER:
        if _finite(value):
            return value
        if isinstance(value, str):
            return parse_decimal(value)
        raise WrongValueError(f"expected a number, got {_describe(value)}")
    if kind == JOINTS:
        return _number_list(value, "a list of joint values")
    if kind == BOOLEAN:
        if isinstance(value, bool):
            return value
        if _finite(value) and value in (0, 1):
            return bool(value)
        raise WrongValueError(f"expected true or false, got {_describe(value)}")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise WrongValueError(f"a text of {len(value):,} characters is over the {MAX_TEXT:,} limit")
        return value
    if isinstance(value, bool) or _finite(value):
        return value
    if kind == SCALAR and isinstance(value, list | tuple):
        return _number_list(value, "a value or a flat list of numbers")
    raise WrongValueError(f"expected a value, got {_describe(value)}" if kind == SCALAR
                      else f"expected text, got {_describe(value)}")
