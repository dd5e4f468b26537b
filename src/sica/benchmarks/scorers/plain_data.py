"""Plain data across the process boundary between a function checker and the code under test: a tagged JSON
encoding that keeps None, bool, int, float (nan and the infinities too), complex, str, bytes, list, tuple, set,
frozenset and dict (any hashable keys) apart, and decodes only to those built-in types. Never pickle, never eval:
what the code under test sends is data, so an object that overrides `__eq__` cannot cross.

Each value is a JSON array `[tag, ...]`: ["none"], ["bool", b], ["int", "0x1f"], ["float", "0x1.8p+1"],
["complex", real, imag], ["str", s], ["bytes", base64], ["list" | "tuple" | "set" | "frozenset", [items]],
["dict", [[key, value], ...]]. Standard library only (it runs on the sandbox's system Python 3.11)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

#: How deep values may nest (each level of a container is two levels of JSON).
MAX_DEPTH = 400
_HEX_INT = re.compile(r"-?0x[0-9a-f]+")
_SEQUENCES = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}


class NotPlainData(ValueError):
    """A value that is not plain data, or a message that does not decode to it."""


def encode(value: Any, depth: int = 0) -> Any:
    """`value` as tagged JSON-able data; subclasses of the plain types travel as their base type."""
    if depth > MAX_DEPTH:
        raise NotPlainData("nested too deeply")
    if value is None:
        return ["none"]
    if isinstance(value, bool):
        return ["bool", bool(value)]
    if isinstance(value, int):
        return ["int", hex(int.__index__(value))]
    if isinstance(value, float):
        return ["float", float.hex(float(value))]
    if isinstance(value, complex):
        return ["complex", float.hex(complex(value).real), float.hex(complex(value).imag)]
    if isinstance(value, str):
        return ["str", str.__str__(value)]
    if isinstance(value, (bytes, bytearray)):
        return ["bytes", base64.b64encode(bytes(value)).decode("ascii")]
    if isinstance(value, dict):
        return ["dict", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]]
    for tag, kind in _SEQUENCES.items():
        if isinstance(value, kind):
            return [tag, [encode(item, depth + 1) for item in value]]
    raise NotPlainData(f"a {type(value).__name__} is not plain data")


def decode(data: Any, depth: int = 0) -> Any:
    """The plain value tagged JSON-able `data` stands for; NotPlainData for anything else."""
    if depth > MAX_DEPTH:
        raise NotPlainData("nested too deeply")
    if not (isinstance(data, list) and data and isinstance(data[0], str)):
        raise NotPlainData("not a tagged value")
    tag, rest = data[0], data[1:]
    if tag == "none" and not rest:
        return None
    if len(rest) == 1:
        (body,) = rest
        if tag == "bool" and isinstance(body, bool):
            return body
        if tag == "int" and isinstance(body, str) and _HEX_INT.fullmatch(body):
            return int(body, 16)
        if tag == "float" and isinstance(body, str):
            return _float(body)
        if tag == "str" and isinstance(body, str):
            return body
        if tag == "bytes" and isinstance(body, str):
            try:
                return base64.b64decode(body, validate=True)
            except binascii.Error:
                raise NotPlainData("bytes that are not base64") from None
        if tag in _SEQUENCES and isinstance(body, list):
            items = [decode(item, depth + 1) for item in body]
            try:
                return _SEQUENCES[tag](items)
            except TypeError:
                raise NotPlainData(f"a {tag} of unhashable items") from None
        if tag == "dict" and isinstance(body, list):
            pairs = []
            for pair in body:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise NotPlainData("a dict entry that is not a pair")
                pairs.append((decode(pair[0], depth + 1), decode(pair[1], depth + 1)))
            try:
                return dict(pairs)
            except TypeError:
                raise NotPlainData("a dict with unhashable keys") from None
    if tag == "complex" and len(rest) == 2 and all(isinstance(part, str) for part in rest):
        return complex(_float(rest[0]), _float(rest[1]))
    raise NotPlainData(f"a malformed '{tag[:20]}' value")


def _float(text: str) -> float:
    try:
        return float.fromhex(text)
    except (ValueError, OverflowError):
        raise NotPlainData("a float that is not hexadecimal") from None


def dumps(message: Any) -> bytes:
    """One protocol message (a JSON document of tagged values and plain fields) as a line of bytes."""
    return json.dumps(message, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def loads(line: bytes) -> Any:
    """A protocol message from one line; NotPlainData when it is not JSON."""
    try:
        return json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise NotPlainData("not a JSON line") from None


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not plain data", name, 0)
