"""Protobuf wire-format pieces the containerd test scripts build requests
from by hand (no generated code): varints and length-delimited fields."""


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_bytes(num, data):
    """Field `num` with wire type 2 (bytes, strings, sub-messages)."""
    return varint(num << 3 | 2) + varint(len(data)) + data
