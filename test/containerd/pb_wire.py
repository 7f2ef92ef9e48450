"""Protobuf wire-format pieces the test and bench scripts build ttrpc
requests from by hand (no generated code): varints and length-delimited
fields, a reader of the answers' fields, and a socket read of a whole
frame's bytes."""


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


def read_varint(buf, i):
    """The varint at buf[i:], and the index after it."""
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def fields(buf):
    """(number, value) of each field of a message: ints, or bytes."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wire}")
        yield num, v


def recv_exact(sock, n):
    """Exactly n bytes from stream socket `sock`; EOFError if it closes first."""
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError(f"the peer closed the connection after {len(out)} of {n} bytes")
        out += chunk
    return out
