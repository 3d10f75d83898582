#!/usr/bin/env python3
"""Builds the fuzz seed corpus, fuzz/seeds/<target>/, from the examples of
spec/PROTOCOL.md (section 1 describes their format).

    python3 fuzz/make_seeds.py

Server examples only (client examples drive a client, not the wire). Tokens:
the fuzz targets use predictable tokens, 00000000-0000-4000-8000-000000000001
for the first `auth` of a session and so on, so each ${NAME:uuid} binding
becomes the token of its `auth` and each ${NAME} use that token.

- request/      every request line, terminator included
- parse_frame/  each example's bytes on one connection, as one stream
- session/      each example as a `session` input (see fuzz/src/lib.rs):
                once with the default line limit, once with a 64-byte limit
- json/         every reply the examples show, as JSON text
"""

import pathlib
import re
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec" / "PROTOCOL.md"
SEEDS = ROOT / "fuzz" / "seeds"
CONNECTIONS = 3  # as SESSION_CONNECTIONS in fuzz/src/lib.rs


def token(n):
    return "00000000-0000-4000-8000-%012x" % n


def examples(text):
    """(id, [step lines]) for each server example."""
    for m in re.finditer(r"^```example (\S+) (MUST|SHOULD)( client)?\n(.*?)^```", text, re.S | re.M):
        if m.group(3):
            continue
        yield m.group(1), m.group(4).splitlines()


def substitute(text, bound):
    """Replaces ${NAME} (bound earlier) and $$; leaves nothing else."""
    def var(m):
        if m.group(0) == "$$":
            return "$"
        return bound[m.group(1)]
    return re.sub(r"\$\$|\$\{(\w+)\}", var, text)


def unescape(text):
    """The escapes of `>` and `<=` lines, to bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n in "rnt\\":
                out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}[n]
                i += 2
                continue
            if n == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
        out += c.encode()
        i += 1
    return bytes(out)


def session_input(writes, config):
    """A `session` input: the config byte, then (control, bytes) records of
    at most 63 bytes each."""
    out = bytearray([config])
    for conn, data in writes:
        for at in range(0, len(data), 63) or [0]:
            chunk = data[at:at + 63]
            out.append(len(chunk) << 2 | conn)
            out += chunk
    return bytes(out)


def main():
    text = SPEC.read_text()
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    dirs = {name: SEEDS / name for name in ("request", "parse_frame", "session", "json")}
    for d in dirs.values():
        d.mkdir(parents=True)
    count = 0
    for ident, lines in examples(text):
        bound, issued = {}, 0
        writes, replies = [], []
        for line in lines:
            m = re.match(r"C(\d+)(>|<=|<~|<-|<) ?(.*)$", line)
            if not m:
                continue
            conn, kind, body = int(m.group(1)) - 1, m.group(2), m.group(3)
            if conn >= CONNECTIONS:
                continue
            if kind == ">":
                writes.append((conn, unescape(substitute(body, bound))))
                continue
            if '"tokenid"' in body:
                issued += 1
                for name in re.findall(r"\$\{(\w+):uuid\}", body):
                    bound[name] = token(issued)
                body = re.sub(r"\$\{\w+:uuid\}", token(issued), body)
            body = re.sub(r'"\$\{_:any\}"', '"x"', body)
            body = substitute(body, bound)
            if kind == "<=":
                replies.append(unescape(body).removesuffix(b"\r\n\r\n"))
            elif kind in ("<", "<~"):
                replies.append(body.encode())
        if not writes:
            continue
        count += 1
        stream = {}
        for conn, data in writes:
            stream[conn] = stream.get(conn, b"") + data
        for conn, data in sorted(stream.items()):
            (dirs["parse_frame"] / f"{ident}-C{conn + 1}").write_bytes(data)
            for n, req in enumerate(re.findall(rb".*?\r\n", data, re.S)):
                (dirs["request"] / f"{ident}-C{conn + 1}-{n}").write_bytes(req)
        (dirs["session"] / ident).write_bytes(session_input(writes, 3))
        (dirs["session"] / f"{ident}-limit64").write_bytes(session_input(writes, 1))
        for n, reply in enumerate(replies):
            (dirs["json"] / f"{ident}-{n}").write_bytes(reply)
    total = sum(len(list(d.iterdir())) for d in dirs.values())
    print(f"{count} examples from {SPEC.relative_to(ROOT)}: {total} seeds in {SEEDS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
