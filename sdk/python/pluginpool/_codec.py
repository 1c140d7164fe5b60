"""JSON in and out: items decoded into the type a task's parameter is
annotated with, results encoded as one line of JSON.

Measured on CPython 3.11 (Debian): ``json.loads`` of a small int costs
~1.8 us, almost all of it Python-level wrapping (type checks, a regex for
white space before and after); the C scanner it ends in costs ~0.17 us and
``int(b)`` ~0.06 us. A trivial task's whole per-item budget is about 1 us,
so inputs go through ``int()`` when they are plain integers, else straight
to the C scanner, and results of the common types are formatted directly.
"""

import dataclasses
import inspect
import json
import math
import typing
from json.encoder import encode_basestring as _quote  # the C version, non-ASCII kept

from ._errors import DecodeError


def _reject_constant(name):
    # Python's json reads NaN, Infinity and -Infinity; JSON has none of them.
    raise ValueError("%s is not JSON" % name)


_scan = json.JSONDecoder(parse_constant=_reject_constant).scan_once
_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                            default=lambda o: _default(o))
_WS = b" \t\r\n"


def _default(o):
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (set, frozenset)):
        return list(o)
    raise TypeError("%s is not JSON-serializable" % type(o).__name__)


def parse(raw):
    """Parse one JSON value from bytes, strictly: no NaN, no trailing data,
    valid UTF-8. Raises ValueError with a short reason."""
    try:
        s = raw.decode()
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None
    try:
        v, end = _scan(s, 0)
    except StopIteration:
        # Leading white space (the scanner reads a value, not a document),
        # or no value at all.
        t = s.strip(" \t\r\n")
        if t is s or not t:
            raise ValueError("not valid JSON") from None
        try:
            v, end = _scan(t, 0)
        except StopIteration:
            raise ValueError("not valid JSON") from None
        except json.JSONDecodeError as e:
            raise ValueError(e.msg) from None
        s = t
    except json.JSONDecodeError as e:
        raise ValueError(e.msg) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if end != len(s) and s[end:].strip(" \t\r\n"):
        raise ValueError("extra data after the JSON value")
    return v


def _kind(v):
    """How JSON calls the type of a decoded value, for error messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _short(raw):
    s = raw.decode(errors="replace")
    return s if len(s) <= 64 else s[:61] + "..."


def _fail(raw, want, why):
    return DecodeError("cannot decode input %s as %s: %s" % (_short(raw), want, why))


def _type_name(t):
    if t is type(None):
        return "None"
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def decoder(annotation):
    """Return a function bytes -> value for a parameter annotated with
    ``annotation`` (inspect.Parameter.empty or a type). It raises
    DecodeError for input that is not valid JSON or not of that type."""
    if annotation is bytes:
        return bytes  # the raw JSON text, undecoded
    check = _checker(annotation)
    if check is None:
        want = "JSON"

        def dec_any(raw):
            try:
                return parse(raw)
            except ValueError as e:
                raise _fail(raw, want, e) from None
        return dec_any
    want = _type_name(annotation)

    def dec_slow(raw):
        try:
            v = parse(raw)
        except ValueError as e:
            raise _fail(raw, want, e) from None
        ok, v = check(v)
        if not ok:
            raise _fail(raw, want, "want %s, got a JSON %s" % (want, _kind(v)))
        return v

    if annotation is int:
        def dec_int(raw):
            # A plain integer, the common case: no JSON parse. bytes.isdigit
            # is ASCII only; a leading zero is not JSON ("007").
            if raw.isdigit() and (raw[0] != 48 or len(raw) == 1):
                return int(raw)
            return dec_slow(raw)
        return dec_int
    if annotation is float:
        def dec_float(raw):
            if raw.isdigit() and (raw[0] != 48 or len(raw) == 1):
                return float(int(raw))
            return dec_slow(raw)
        return dec_float
    if annotation is str:
        def dec_str(raw):
            # A string without escapes: slice out its text.
            if raw[:1] == b'"' and raw[-1:] == b'"' and len(raw) > 1 and b"\\" not in raw and raw.count(b'"') == 2:
                s = raw[1:-1].decode(errors="surrogateescape")
                if s.isprintable():
                    return s
            return dec_slow(raw)
        return dec_str
    return dec_slow


def _checker(t):
    """Return check(v) -> (ok, value) for a decoded value against
    annotation t, or None when anything goes."""
    if t is None or t is typing.Any or t is object or t is inspect.Parameter.empty:
        return None
    if t is int:
        return lambda v: (type(v) is int, v)
    if t is float:
        def chk_float(v):
            if type(v) is float:
                return True, v
            if type(v) is int:
                return True, float(v)
            return False, v
        return chk_float
    if t is bool:
        return lambda v: (type(v) is bool, v)
    if t is str:
        return lambda v: (type(v) is str, v)
    if t is type(None):
        return lambda v: (v is None, v)
    if dataclasses.is_dataclass(t):
        def chk_dataclass(v):
            if not isinstance(v, dict):
                return False, v
            try:
                return True, t(**v)
            except TypeError as e:
                raise DecodeError("cannot decode input as %s: %s" % (t.__name__, e)) from None
        return chk_dataclass
    origin = typing.get_origin(t)
    if origin is typing.Union or type(t).__name__ == "UnionType":
        subs = [_checker(a) for a in typing.get_args(t)]
        if any(c is None for c in subs):
            return None

        def chk_union(v):
            for c in subs:
                ok, w = c(v)
                if ok:
                    return True, w
            return False, v
        return chk_union
    if origin is typing.Literal:
        allowed = typing.get_args(t)
        return lambda v: (v in allowed, v)
    base = origin or t
    if isinstance(base, type):
        if issubclass(base, dict) or getattr(t, "__total__", None) is not None:  # dict, Dict[...], TypedDict
            return lambda v: (isinstance(v, dict), v)
        if issubclass(base, (list, tuple, set, frozenset)):
            return lambda v: (isinstance(v, list), v)
        return lambda v: (isinstance(v, base), v)
    return None


def encode(v):
    """Encode a task's result as one line of JSON text (a str), or return
    None for "no value" (the task returned None). Raises ValueError or
    TypeError when it cannot."""
    t = type(v)
    if t is int:
        return int.__repr__(v)
    if t is str:
        return _quote(v)
    if t is float:
        if math.isfinite(v):
            return float.__repr__(v)
        raise ValueError("result %r is not a JSON number" % v)
    if v is None:
        return None
    if t is bool:
        return "true" if v else "false"
    if t is bytes or t is bytearray or t is memoryview:
        # Raw JSON text, passed on as is (the host checks it is JSON).
        try:
            s = bytes(v).decode()
        except UnicodeDecodeError:
            raise ValueError("result bytes are not UTF-8 JSON text") from None
        if "\n" in s or "\r" in s:
            s = s.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
        return s
    return _encoder.encode(v)
