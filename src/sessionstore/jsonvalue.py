"""What counts as a JSON value here, and how it is serialised.

A JSON value is None, bool, int (signed 64-bit, what every backend stores
exactly), finite float, str, list/tuple of JSON values, or dict with str keys
and JSON values. NaN and infinities are not JSON. orjson would quietly turn
them into null, so values are walked before they are serialised.

Strings (values and object keys) must be valid Unicode without U+0000: a
lone surrogate cannot be encoded as UTF-8, and PostgreSQL's JSONB cannot
hold U+0000, so every backend refuses both (one set of rules everywhere).

Containers (lists and dicts) nest at most MAX_DEPTH levels: ``[[1]]`` is two.
The tightest store is MariaDB, whose JSON columns are checked by JSON_VALID,
which refuses a document of 32 or more nested containers (MySQL 8 allows
100, PostgreSQL's JSONB and orjson hundreds or more). A value may be stored
one level down, inside its state document or delta ({"key": value}), so a
value gets 30 levels and every document we write stays within MariaDB's 31.

Floats are written so that every backend reads them back as floats, see dumps().
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import orjson

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
MAX_DEPTH = 30
"""Most nested containers in one value (content, metadata, a state value)."""


class NotJSONError(ValueError):
    """Internal: says where in a value the non-JSON part is; callers re-raise a typed error."""


def check_json(value: Any) -> None:
    """Raise NotJSONError naming the path of the first part of `value` that is not JSON.

    The walk that finds a problem builds no paths (a string per node, on every
    append); only a value that fails is walked again to say where.
    """
    if not _is_json(value, 0):
        _explain(value, "$", 0)
        raise NotJSONError("$: not a JSON value")  # (unreachable: _explain raises)


def _is_json(value: Any, depth: int) -> bool:
    """Is `value` a JSON value (at `depth` containers down)? The same rules as `_explain`."""
    if value is None or value is True or value is False:
        return True
    kind = type(value)
    if kind is str:
        return _good_str(value)
    if kind is int:
        return bool(INT_MIN <= value <= INT_MAX)
    if kind is float:
        return math.isfinite(value)
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _good_str(key) or not _is_json(item, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:
            if not _is_json(item, depth + 1):
                return False
        return True
    return False


def _good_str(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _explain(value: Any, path: str, depth: int) -> None:
    """Raise NotJSONError naming the path of the first part of `value` that is not JSON."""
    if value is None or value is True or value is False:
        return
    kind = type(value)
    if kind is str:
        _check_str(value, path)
        return
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise NotJSONError(f"{path}: integer {value} is outside the signed 64-bit range")
        return
    if kind is float:
        if not math.isfinite(value):
            raise NotJSONError(f"{path}: {value!r} is not a JSON number")
        return
    if depth >= MAX_DEPTH:
        raise NotJSONError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise NotJSONError(f"{path}: object key {key!r} is not a str")
            _check_str(key, f"{path} (an object key)")
            _explain(item, f"{path}.{key}", depth + 1)
        return
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            _explain(item, f"{path}[{index}]", depth + 1)
        return
    raise NotJSONError(f"{path}: {kind.__name__} is not a JSON value")


def _check_str(text: str, path: str) -> None:
    if "\x00" in text:
        raise NotJSONError(f"{path}: string contains U+0000, which PostgreSQL cannot store")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = ord(text[exc.start])
            raise NotJSONError(f"{path}: string contains the lone surrogate U+{bad:04X}") from None


_PLUS = ord("+")  # an int: `in` on bytes is then a memchr, several times faster than a bytes needle


def dumps(value: Any) -> bytes:
    """Serialise an already checked JSON value, floats in a form every backend keeps as floats.

    orjson writes a float of 1e16 or more (in magnitude) with an exponent
    and no fraction, "1e+16"; PostgreSQL's JSONB keeps numbers as NUMERIC,
    which prints that back as 10000000000000000, an int to any reader. So
    such floats are written out positionally with a ".0" ("10000000000000000.0"),
    which NUMERIC keeps, on every backend alike (one stored form, one size
    for max_event_bytes). Smaller floats already carry a fraction or a
    negative exponent, which NUMERIC prints with a fraction. The value is
    only walked again when the bytes hold "e+", which is rare; looking for
    a "+" byte first keeps the usual case to one memchr.
    """
    raw = orjson.dumps(value)
    if _PLUS in raw and b"e+" in raw:
        raw = orjson.dumps(_with_positional_floats(value))
    return raw


def dumps_str(value: Any) -> str:
    """Serialise to str: the form SQLAlchemy's JSON types and our own SQL hand to drivers."""
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (a round trip through orjson is faster than copy.deepcopy)."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    return orjson.loads(orjson.dumps(value))


def _with_positional_floats(value: Any) -> Any:
    """A copy of `value` whose floats written with a positive exponent are orjson Fragments
    holding their positional form (a string that merely contains "e+" is left as it is)."""
    kind = type(value)
    if kind is float:
        text = repr(value)  # the shortest form that reads back as this float, e.g. "1.5e+16"
        if "e+" not in text:
            return value
        return orjson.Fragment(format(Decimal(text), "f") + ".0")  # "15000000000000000.0"
    if kind is dict:
        return {k: _with_positional_floats(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_with_positional_floats(v) for v in value]
    return value
