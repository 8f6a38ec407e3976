#!/usr/bin/python3
"""Writes the small GEMM example shipped in examples/gemm/.

A (64 x 256) plays a layer's input activations after a ReLU: half zeros,
half |N(0, 1)|. B (256 x 64) plays its weights: He-initialized, N(0, 2/K).
Each output then has variance about 1, the range of values a trained
network's accumulators see, so the paper's accumulator (M7E4 with bias 10:
largest value about 64, smallest normal 2^-9) is exercised without scaling.
Both are float32, as a framework would export them.

Deterministic: a fixed seed; run it again to regenerate the same bytes.
Usage: /usr/bin/python3 scripts/make_example.py [output directory]
"""
import pathlib
import sys

import numpy as np

M, K, N = 64, 256, 64
SEED = 20240112


def main() -> None:
    root = pathlib.Path(__file__).resolve().parent.parent
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "examples" / "gemm"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(SEED))
    a = np.maximum(rng.standard_normal((M, K)), 0.0).astype("<f4")
    b = (rng.standard_normal((K, N)) * np.sqrt(2.0 / K)).astype("<f4")
    np.save(out / "A.npy", np.ascontiguousarray(a))
    np.save(out / "B.npy", np.ascontiguousarray(b))
    print(f"wrote {out / 'A.npy'} {a.shape} and {out / 'B.npy'} {b.shape}")


if __name__ == "__main__":
    main()
