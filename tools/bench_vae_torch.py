#!/usr/bin/env python3
"""Times diffusers' AutoencoderKL decode (PyTorch, CPU) on the shapes the Swift benchmark uses, so
the two can be compared on the same machine. Peak RSS (VmHWM) is measured in a fresh process that
only loads the VAE and decodes once, as the issue's 2.05 GiB figure was.

    PY=$(tools/venv.sh); $PY tools/make_vae_fixtures.py --full   # once: random SD-shape VAE
    $PY tools/bench_vae_torch.py [--sizes 256,512] [--dtypes f32[,bf16]] [--repeats 1] [--rss-only]

Reads ~/.cache/decidiffusion/full/vae (DECI_FULL_DIR overrides). Threads: torch's default (all
cores), like the Swift engine. bf16 is opt-in: on a CPU without native bf16 (AVX2 only) PyTorch's
bf16 convolutions are many times slower than its f32 ones.
"""
import argparse
import os
import subprocess
import sys
import time

import torch
from diffusers import AutoencoderKL

DIR = os.environ.get("DECI_FULL_DIR", os.path.expanduser("~/.cache/decidiffusion/full/vae"))
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}


def vm_hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def decode_once(vae, side, dtype):
    z = torch.randn(1, 4, side // 8, side // 8, generator=torch.Generator().manual_seed(0)).to(dtype)
    with torch.no_grad():
        t = time.perf_counter()
        y = vae.decode(z).sample
        return time.perf_counter() - t, y


def rss_child(side, dtype_name):
    vae = AutoencoderKL.from_pretrained(DIR, torch_dtype=DTYPES[dtype_name]).eval()
    decode_once(vae, side, DTYPES[dtype_name])
    print(vm_hwm_kib())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--dtypes", default="f32")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--rss-only", action="store_true", help="skip the timings, measure only the peak RSS")
    ap.add_argument("--rss-child", nargs=2, metavar=("SIDE", "DTYPE"))
    a = ap.parse_args()
    if a.rss_child:
        rss_child(int(a.rss_child[0]), a.rss_child[1])
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}")
    for dn in [] if a.rss_only else a.dtypes.split(","):
        vae = AutoencoderKL.from_pretrained(DIR, torch_dtype=DTYPES[dn]).eval()
        for side in [int(s) for s in a.sizes.split(",")]:
            times = [decode_once(vae, side, DTYPES[dn])[0] for _ in range(a.repeats)]
            print(f"diffusers decode {side} px {dn}: {min(times):.2f} s (best of {len(times)})", flush=True)
        del vae
    for side in [int(s) for s in a.sizes.split(",")]:
        if side != 512:
            continue
        for dn in a.dtypes.split(","):
            out = subprocess.run([sys.executable, __file__, "--rss-child", str(side), dn], capture_output=True, text=True)
            kib = int(out.stdout.strip().splitlines()[-1])
            print(f"diffusers peak RSS (VmHWM) of a process loading the VAE and decoding {side} px {dn}: {kib / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
