"""Protobuf wire-format pieces tests write by hand (to send what no message class would)."""

from __future__ import annotations


def varint(n: int) -> bytes:
    """``n`` as a base-128 varint."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
