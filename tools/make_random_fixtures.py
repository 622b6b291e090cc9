#!/usr/bin/env python3
"""Writes Fixtures/random/torch_randn.json: what torch.randn / torch.rand return for CPU generators.

Run:  $(tools/venv.sh) tools/make_random_fixtures.py

Each case is a fresh `torch.Generator("cpu").manual_seed(seed)` followed by one or more calls on
that generator; each call records the float32 bit patterns of its result (widened from half
types), in full when small, otherwise an FNV-1a-64 checksum over the 32-bit words plus sampled
indices. The cases are generated twice, in subprocesses with ATEN_CPU_CAPABILITY=avx2 and
=default, because PyTorch's CPU normal kernel gives slightly different bits on those paths; the
script refuses to write the avx2 section on a machine without AVX2.
"""
import json
import os
import subprocess
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "random", "torch_randn.json")

SEEDS = [0, 1, 42, 1234, 2**32 + 5, 987654321987, 2**63 + 12345, 2**64 - 1]
SHAPES = [[1], [3], [15], [16], [17], [31], [33], [4, 64, 64]]
BIG_SEEDS = [0, 42, 2**32 + 5]
BIG_SHAPE = [2, 4, 96, 64]

SEQUENCES = [
    (7, [("randn", [4, 64, 64], "float32"), ("randn", [3], "float32"), ("randn", [16], "float32"),
         ("randn", [1], "float32"), ("randn", [1], "float32"), ("randn", [17], "float32"),
         ("rand", [5], "float32"), ("randn", [2, 4, 8, 8], "float32"), ("randn", [3], "float32")]),
    # The cached second Box-Muller value must survive a block draw in between.
    (2**32 + 5, [("randn", [1], "float32"), ("randn", [40], "float32"), ("randn", [1], "float32"),
                 ("randn", [2], "float32"), ("randn", [1, 4, 64, 64], "float32"), ("randn", [5], "float32")]),
    # diffusers-like: initial latents then per-step noise from the same generator.
    (1234, [("randn", [2, 4, 32, 32], "float32")] + [("randn", [2, 4, 32, 32], "float32")] * 3),
    (99, [("randn", [3], "float16"), ("randn", [33], "float16"), ("randn", [4, 8, 8], "float16"),
          ("randn", [3], "bfloat16"), ("randn", [33], "bfloat16"), ("randn", [4, 8, 8], "bfloat16")]),
    (5, [("rand", [1], "float32"), ("rand", [20], "float32"), ("randn", [5], "float32"), ("rand", [3], "float32")]),
]


def fnv1a64_words(words):
    h = 0xCBF29CE484222325
    for w in words:
        for shift in (0, 8, 16, 24):
            h ^= (int(w) >> shift) & 0xFF
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def record(tensor):
    import numpy as np
    bits = tensor.float().contiguous().numpy().reshape(-1).view(np.uint32)
    n = bits.size
    entry = {"count": int(n), "fnv1a64": "%016x" % fnv1a64_words(bits.tolist())}
    if n <= 64:
        entry["bits"] = [int(b) for b in bits]
    else:
        idx = sorted(set(list(range(16)) + list(range(n - 16, n)) + list(range(0, n, max(1, n // 32)))))
        entry["samples"] = [[i, int(bits[i])] for i in idx]
    return entry


def run_calls(seed, calls):
    import torch
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    g = torch.Generator("cpu").manual_seed(seed)
    out = []
    for op, shape, dtype in calls:
        fn = torch.randn if op == "randn" else torch.rand
        t = fn(shape, generator=g, dtype=dtypes[dtype])
        e = {"op": op, "shape": shape, "dtype": dtype}
        e.update(record(t))
        out.append(e)
    return out


def child():
    import torch
    cases = []
    for seed in SEEDS:
        for shape in SHAPES:
            cases.append({"seed": str(seed), "calls": run_calls(seed, [("randn", shape, "float32")])})
    for seed in BIG_SEEDS:
        cases.append({"seed": str(seed), "calls": run_calls(seed, [("randn", BIG_SHAPE, "float32")])})
    for seed, calls in SEQUENCES:
        cases.append({"seed": str(seed), "calls": run_calls(seed, calls)})
    json.dump({"capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
               "cases": cases}, sys.stdout)


def main():
    sections = {}
    for name, cap, want in [("avx2", "avx2", "AVX2"), ("scalar", "default", "DEFAULT")]:
        env = dict(os.environ, ATEN_CPU_CAPABILITY=cap)
        res = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"], env=env,
                             capture_output=True, text=True, check=True)
        data = json.loads(res.stdout)
        if data["capability"] != want:
            sys.exit(f"torch ran with capability {data['capability']}, wanted {want}; is AVX2 available?")
        sections[name] = data
    torch_version = sections["avx2"]["torch"]
    doc = {
        "generated_by": "tools/make_random_fixtures.py",
        "torch": torch_version,
        "checksum": "FNV-1a 64 over the float32 bit patterns as little-endian 32-bit words",
        "kernels": {k: {"capability": v["capability"], "cases": v["cases"]} for k, v in sections.items()},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    child() if "--child" in sys.argv else main()
