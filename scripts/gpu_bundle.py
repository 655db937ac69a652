#!/usr/bin/env python3
"""Packs the GPU check's bundle (make gpu-check-bundle): folder STAGE's bin/ (the CUDA
binaries) into OUT/bin.tar.xz and its shared/ (the fixtures the CUDA tests read) into
OUT/shared.tar.gz, which scripts/gpu-check.sh unpacks on the GPU machine. Standard
library only.

A device run carries at most 64 MiB, and the fixtures are mostly random float32 weights,
which no compressor shrinks; most of those bytes are token-embedding tables (49408 x
width) of which the CUDA tests read a few dozen rows. So, for each --thin NAME, every
token_embedding.weight in STAGE/shared/fixtures/NAME (a .npy file or a tensor of a
.safetensors file, in every layout folder) gets zeros in the rows that none of NAME's
golden prompts (golden/tokens.npy) uses. Nothing a golden depends on changes, and the
zeros compress to nothing. Only fixtures whose CUDA tests encode just the golden
prompts may be thinned (the CLI tests tokenize other prompts with clip-tiny-a).

The binaries are compressed with LZMA2 at preset 1 with a 64 MiB dictionary: the four
Go binaries share most of their code, and a dictionary larger than a binary finds it,
so they pack to about half of what gzip -9 makes of each file, in less time. The
fixtures get gzip -1: random floats shrink by 8% under either, and gzip is 15 times
faster.
"""
import argparse
import ast
import gzip
import json
import lzma
import os
import struct
import sys
import tarfile

EMBEDDING = "token_embedding.weight"


def npy_header(f, path):
    """Reads a .npy header; returns (dtype descr, shape, data offset)."""
    magic = f.read(8)
    if magic[:6] != b"\x93NUMPY":
        sys.exit(f"gpu_bundle: {path}: not a .npy file")
    if magic[6] == 1:
        (n,) = struct.unpack("<H", f.read(2))
    else:
        (n,) = struct.unpack("<I", f.read(4))
    h = ast.literal_eval(f.read(n).decode("latin1"))
    if h.get("fortran_order"):
        sys.exit(f"gpu_bundle: {path}: Fortran order")
    return h["descr"], tuple(h["shape"]), f.tell()


def golden_ids(fixture):
    """The token ids of fixture's golden prompts (int32 or int64 .npy)."""
    path = os.path.join(fixture, "golden", "tokens.npy")
    with open(path, "rb") as f:
        descr, shape, _ = npy_header(f, path)
        code = {"<i4": "i", "<i8": "q"}.get(descr)
        if code is None:
            sys.exit(f"gpu_bundle: {path}: dtype {descr}, want <i4 or <i8")
        n = 1
        for d in shape:
            n *= d
        return set(struct.unpack(f"<{n}{code}", f.read(struct.calcsize(code) * n)))


def zero_rows(f, offset, shape, keep, path):
    """Writes zeros over the rows of a float32 [V, W] table at offset not in keep."""
    if len(shape) != 2 or max(keep) >= shape[0]:
        sys.exit(f"gpu_bundle: {path}: {EMBEDDING} {list(shape)} does not fit token ids up to {max(keep)}")
    row = bytes(4 * shape[1])
    for r in range(shape[0]):
        if r not in keep:
            f.seek(offset + r * len(row))
            f.write(row)


def thin(fixture):
    """Thins every token embedding in fixture's layout folders; each must have one."""
    keep = golden_ids(fixture)
    for layout in sorted(os.listdir(fixture)):
        folder = os.path.join(fixture, layout)
        if layout == "golden" or not os.path.isdir(folder):
            continue
        tables = 0
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name == EMBEDDING + ".npy":
                with open(path, "r+b") as f:
                    descr, shape, offset = npy_header(f, path)
                    if descr != "<f4":
                        sys.exit(f"gpu_bundle: {path}: dtype {descr}, want <f4")
                    zero_rows(f, offset, shape, keep, path)
                tables += 1
            elif name.endswith(".safetensors"):
                with open(path, "r+b") as f:
                    (n,) = struct.unpack("<Q", f.read(8))
                    t = json.loads(f.read(n)).get(EMBEDDING)
                    if t is None:
                        continue
                    if t["dtype"] != "F32":
                        sys.exit(f"gpu_bundle: {path}: {EMBEDDING} is {t['dtype']}, want F32")
                    zero_rows(f, 8 + n + t["data_offsets"][0], t["shape"], keep, path)
                tables += 1
        if tables != 1:
            sys.exit(f"gpu_bundle: {folder}: {tables} {EMBEDDING} tables, want 1")
        print(f"gpu_bundle: {folder}: kept {len(keep)} {EMBEDDING} rows", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--thin", action="append", default=[], metavar="NAME",
                    help="a fixture under STAGE/shared/fixtures whose token embeddings to thin")
    ap.add_argument("stage")
    ap.add_argument("out", help="the folder to write bin.tar.xz and shared.tar.gz into")
    args = ap.parse_args()
    for name in args.thin:
        thin(os.path.join(args.stage, "shared", "fixtures", name))
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 1, "dict_size": 64 << 20}]
    for top, name, opener in (
        ("bin", "bin.tar.xz", lambda path: lzma.open(path, "wb", format=lzma.FORMAT_XZ, filters=filters)),
        ("shared", "shared.tar.gz", lambda path: gzip.open(path, "wb", compresslevel=1)),
    ):
        path = os.path.join(args.out, name)
        with opener(path + ".tmp") as z, tarfile.open(fileobj=z, mode="w") as tar:
            tar.add(os.path.join(args.stage, top), arcname=top)
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
