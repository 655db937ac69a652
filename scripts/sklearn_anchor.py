#!/usr/bin/python3
"""scikit-learn reference for gorgoclip's probe anchor.

Fits LogisticRegression(solver="lbfgs", max_iter=1000, C) on Fashion-MNIST raw pixels
divided by 255 (the Fashion-MNIST paper's logistic-regression baseline) and prints one
JSON line {"acc", "fit_seconds", "n_iter", "C", "n_train", "n_test", "sklearn"}.
probes/anchor_test.go fits the same problem in Go; run the two back to back so that
their timings share the machine's load.

Usage: /usr/bin/python3 scripts/sklearn_anchor.py [--dir D] [--C 0.1] [--n-train 20000]
(Debian: apt-get install python3-sklearn dataset-fashion-mnist)
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression


def read_idx(path):
    """Reads an idx file (gzip or plain) into a uint8 array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"sklearn_anchor: {path}: not an unsigned-byte idx file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--C", type=float, default=0.1)
    ap.add_argument("--n-train", type=int, default=20000, help="first N training images (0: all)")
    ap.add_argument("--max-iter", type=int, default=1000)
    args = ap.parse_args()

    def load(split):
        x = read_idx(os.path.join(args.dir, f"{split}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(args.dir, f"{split}-labels-idx1-ubyte.gz"))
        return x.reshape(len(x), -1).astype(np.float64) / 255.0, y.astype(np.int64)

    xtr, ytr = load("train")
    xte, yte = load("t10k")
    if args.n_train > 0:
        xtr, ytr = xtr[: args.n_train], ytr[: args.n_train]

    clf = LogisticRegression(solver="lbfgs", max_iter=args.max_iter, C=args.C)
    t0 = time.perf_counter()
    clf.fit(xtr, ytr)
    fit_seconds = time.perf_counter() - t0
    acc = float((clf.predict(xte) == yte).mean())
    print(json.dumps({
        "acc": acc,
        "fit_seconds": round(fit_seconds, 3),
        "n_iter": int(clf.n_iter_[0]),
        "C": args.C,
        "n_train": len(ytr),
        "n_test": len(yte),
        "sklearn": sklearn.__version__,
    }))


if __name__ == "__main__":
    main()
