"""A task: the author's function with its input decoder and result encoder."""

import inspect
import typing

from ._codec import decoder, encode


class Task:
    """fn(decode(raw)) runs one item; encode(result) -> str, or None for no
    value. Built once, at serve()."""

    def __init__(self, fn, raw=False):
        if not callable(fn):
            raise TypeError("pluginpool.serve: the task must be a function, got %r" % (fn,))
        self.fn = fn
        self.int_input = False  # the runner parses plain integers itself
        if raw:
            self.decode = bytes
            self.encode = _encode_raw
            return
        ann = _input_annotation(fn)
        self.decode = decoder(ann)
        self.encode = encode
        self.int_input = ann is int


def _input_annotation(fn):
    """The annotation of fn's one required parameter, or Parameter.empty."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return inspect.Parameter.empty  # a builtin, say: take any JSON
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    required = [p for p in params if p.default is p.empty and p.kind != p.VAR_POSITIONAL]
    if not params or len(required) > 1:
        raise TypeError("pluginpool.serve: the task must take exactly one argument, the item; %s%s takes %s"
                        % (getattr(fn, "__name__", "task"), sig, "none" if not params else "%d" % len(required)))
    p = params[0]
    if p.kind == p.VAR_POSITIONAL:
        return inspect.Parameter.empty
    ann = p.annotation
    if isinstance(ann, str):
        # `from __future__ import annotations`: resolve the string.
        try:
            ann = typing.get_type_hints(fn).get(p.name, inspect.Parameter.empty)
        except Exception:
            ann = inspect.Parameter.empty
    return ann


def _encode_raw(v):
    """A raw task's result: JSON text as str or bytes, or None."""
    if v is None or type(v) is str:
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return encode(v)
    raise TypeError("a raw task returns JSON text as bytes or str, or None; got %s" % type(v).__name__)
