#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from the captured fixtures.

usage: make_seeds.py REPO_ROOT OUT_DIR [TERM_CORPUS_BIN]

OUT_DIR/<target>/seed-* files are (re)written; files the fuzzer added are left alone.
TERM_CORPUS_BIN is the corpus.bin that tests/erl/term_corpus.erl `generate` writes (several
thousand terms of every kind, encoded by a real BEAM); without it the term seeds come from
the captured frames only. Each seed carries the header bytes its target expects (see the
doc comment of each target in fuzz/fuzz_targets/).
"""
import os
import struct
import sys
from pathlib import Path

root, out = Path(sys.argv[1]), Path(sys.argv[2])
term_corpus = Path(sys.argv[3]) if len(sys.argv) > 3 else None
counts = {}


def seed(target, name, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(bytes(data))
    counts[target] = counts.get(target, 0) + 1


def framed16(msgs):
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


# EPMD: one message per fixture file.
epmd = root / "crates" / "beamlink-proto" / "fixtures" / "epmd"
requests = sorted(p for p in epmd.glob("*_req*.bin"))
responses = sorted(p for p in epmd.glob("*_resp*.bin"))
for p in requests:
    seed("epmd_request", p.stem, b"\0\0" + p.read_bytes())
seed("epmd_request", "all", b"\x01\x02" + b"".join(p.read_bytes() for p in requests))
for p in responses:
    seed("epmd_response", p.stem, b"\0\0" + p.read_bytes())

# Handshake transcripts: the BEAM's messages for our initiator, ours for our acceptor.
for p in sorted((root / "fixtures" / "handshake").glob("*.transcript")):
    sent, received = [], []
    for line in p.read_text().splitlines():
        if line.startswith("> "):
            sent.append(bytes.fromhex(line[2:]))
        elif line.startswith("< "):
            received.append(bytes.fromhex(line[2:]))
    reply = next(m for m in sent if m[:1] == b"r")
    challenge = next(m for m in received if m[:1] == b"N")
    ours = reply[1:5]
    theirs = challenge[9:13]
    seed("handshake", p.stem + "-initiator", b"\x00" + ours + framed16(received))
    seed("handshake", p.stem + "-acceptor", b"\x01" + theirs + framed16(sent))

# Frames captured after the handshake: 4-byte length, 112, control term, payload term.
frames = sorted((root / "fixtures" / "dist").glob("*.bin"))
by_release = {}
for p in frames:
    data = p.read_bytes()
    by_release.setdefault(p.name.split("-")[0], []).append(data)
    seed("frame", p.stem, b"\xff\xff" + data)
    seed("control", p.stem, b"\0\0" + data[5:])
    seed("term_decode", p.stem, b"\0\0\x05" + data)
for release, datas in by_release.items():
    stream = b"\0\0\0\0".join(datas)
    seed("frame", release + "-stream", b"\xff\xff" + stream)
    seed("link_frames", release + "-stream", b"\x80\x40\x12\x34" + stream)
    seed("link_frames", release + "-stream-small", b"\x00\x40\x00\x01" + stream)

# Terms a real BEAM encoded.
if term_corpus is not None:
    blob = term_corpus.read_bytes()
    i = n = 0
    while i < len(blob):
        cl = blob[i]
        klass = blob[i + 1 : i + 1 + cl].decode()
        i += 1 + cl
        (length,) = struct.unpack(">I", blob[i : i + 4])
        ext = blob[i + 4 : i + 4 + length]
        i += 4 + length
        n += 1
        seed("term_decode", f"beam-{n:05}-{klass}", b"\0\0\0" + ext)
        if n % 4 == 0:
            # The same term after a distribution header: no version byte, atom cache given.
            seed("term_decode", f"beam-{n:05}-{klass}-body", b"\x03\x10\0" + ext[1:])

for target, n in sorted(counts.items()):
    print(f"{target}: {n} seeds")
