#!/usr/bin/env python3
"""Writes json_golden.json next to this script: CPython's own output for the
JSON encoder (`json.dumps` with default arguments) and for `repr(bytes)`.

Run it with any Python 3 and commit the result; tests/json_golden.rs checks
the Rust encoder against every vector.

Sections of the output object:
  json        {"input": value, "python": json.dumps(value)}
  float_bits  {"bits": "<IEEE-754 bits, 16 hex digits>", "python": json.dumps(f)}
              floats are given by their bits because serde_json's default
              float parser is not always correctly rounded, so a float in
              "input" could reach the encoder as a neighbouring value
  bytes_repr  {"bytes_hex": "<hex>", "python_repr": repr(bytes)}
"""

import json
import os
import random
import struct

RNG = random.Random(20240521)


def json_inputs():
    values = []

    # Real protocol replies.
    values += [
        {"status": "OK", "tokenid": "4c908ff6-3c15-4052-a98a-095d2454cf93"},
        {"status": "ERROR", "message": "User Tidak Ada"},
        {"status": "OK", "messages": {"messi": [
            {"msg_from": "Lionel Messi", "msg_to": "Gary Lineker",
             "msg": "  halo \r\n"}]}},
        {"status": "OK", "messages": {}},
        {"status": "OK", "messages": ["messi", "henderson", "lineker"]},
        {"status": "OK", "messages": "Anda berhasil logout!"},
    ]

    # Every ASCII char on its own, then all of them in one string.
    values += [chr(c) for c in range(0x81)]
    values.append("".join(chr(c) for c in range(0x81)))

    # Non-ASCII: 2-, 3- and 4-byte UTF-8, the BMP edge, line separators, BOM.
    values += [
        "\u00e9", "\u20ac", "\u0080", "\u00ff", "\u07ff", "\u0800", "\ud7ff",
        "\ue000", "\ufeff", "\ufffd", "\uffff", "\U00010000", "\U0010ffff",
        "\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\u2028", "\u2029", "caf\u00e9 \u20ac5 \U0001f600!",
        "Gr\u00fc\u00dfe, \u4f60\u597d, \u0645\u0631\u062d\u0628\u0627",
    ]

    # Quotes, backslashes, slashes and escapes mixed with plain runs.
    values += [
        "\"", "\\", "/", "</script>", "a\\\"b", "\\n is not a newline",
        "'single'", "tab\there", "a\x00b", "\x7f\x80", "http://x.y/z?q=1&r=2",
        "",
    ]

    # Integers, including the edges serde_json can hold.
    values += [0, 1, -1, 42, -42, 2**31, 2**53, 2**53 + 1, -2**53,
               2**63 - 1, -2**63, 2**64 - 1]

    # Floats that survive serde_json's parser exactly (see float_bits for
    # the rest).
    values += [0.0, -0.0, 0.5, 1.0, -1.5, 100.0, 123.456, 1e15, 1e16,
               1.5e16, 1e22, 1e-4, 1e-5, 1.5e-5, 1e100, 2.5e-300]

    # Literals and containers.
    values += [
        None, True, False, [], {}, [[]], [{}], {"a": []}, {"a": {}},
        [1, 2, 3], [1, "two", 3.0, None, True, False, [], {}],
        {"b": 1, "a": 2, "c": 3},
        {"zebra": {"y": [1, {"x": None}], "b": True}, "apple": [[], [[]]]},
        {"\u00e9": 1, "\U0001f600": [2], "k\"ey": "v\\al", "": 0, "/": "/"},
        {"\u6d88\u606f": {"\u0645\u0646": "\u00c9l\u00e8ve"}},
        [[[[[[[[["deep"]]]]]]]]],
    ]
    return values


def bits_of(f):
    return struct.unpack(">Q", struct.pack(">d", f))[0]


def float_of(bits):
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


def float_inputs():
    floats = [
        0.0, -0.0, 0.5, 1.0, -1.0, 0.1, 0.2, 0.1 + 0.2, 1 / 3, 2 / 3,
        123.456, 1e15, 1e16, 1e17, 1e21, 1e22, 1e23, 1e-4, 1e-5, 1.5e-5,
        9999999999999998.0, 1234567890123456.7, 2.0**53, 2.0**53 + 2,
        float.fromhex("0x1p-1022"), 5e-324, 2.2250738585072014e-308,
        1.7976931348623157e308, 4.35, 0.07, 3.141592653589793,
        2.718281828459045, 1.1, 2.675, 1e-7, 123456789.0, -987.654321,
    ]
    # Around every power of ten where the notation could change: the value
    # itself and its neighbours one ulp away.
    for exp10 in range(-8, 25):
        bits = bits_of(10.0**exp10)
        for b in (bits - 1, bits, bits + 1):
            floats.append(float_of(b))
            floats.append(-float_of(b))
    # Arbitrary finite bit patterns.
    while len(floats) < 400:
        f = float_of(RNG.getrandbits(64))
        if f == f and f not in (float("inf"), float("-inf")):
            floats.append(f)
    # Random values with few digits, spread across magnitudes.
    for _ in range(100):
        floats.append(round(RNG.uniform(-1000, 1000), RNG.randint(0, 6))
                      * 10.0**RNG.randint(-12, 20))
    return floats


def bytes_inputs():
    return [
        b"",
        b'{"status": "OK"}\r\n\r\n',
        b'{"status": "ERROR", "message": "User Tidak Ada"}\r\n\r\n',
        b"'", b'"', b"'\"", b"it's", b'say "hi"', b"both ' and \"",
        b"\\", b"\\'", b"\\\"", b"\t\n\r\x0b\x0c\x08\x07\x00",
        "caf\u00e9 \U0001f600".encode("utf-8"),
        bytes(range(256)),
        bytes(range(255, -1, -1)),
    ] + [bytes([b]) for b in range(256)]


def main():
    data = {
        "json": [{"input": v, "python": json.dumps(v)} for v in json_inputs()],
        "float_bits": [
            {"bits": "%016x" % bits_of(f), "python": json.dumps(f)}
            for f in float_inputs()
        ],
        "bytes_repr": [
            {"bytes_hex": b.hex(), "python_repr": repr(b)}
            for b in bytes_inputs()
        ],
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "json_golden.json")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
