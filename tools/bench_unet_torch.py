#!/usr/bin/env python3
"""Times PyTorch on the shapes the Swift denoiser benchmark uses (batch 2, 77 x 768 text states,
32x32 and 64x64 latents), for a side-by-side on the same machine in the same session.

    PY=$(tools/venv.sh); $PY tools/bench_unet_torch.py [--model nas|sd15|both] [--threads N] [--bf16] [--repeats R]

Random weights (timing does not depend on the values); built from shared/spec configs.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_nas_reference import UNetNAS  # noqa: E402

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "spec")


def build(name):
    with open(os.path.join(SPEC, "flexible_unet.config.json" if name == "nas" else "sd15_unet.config.json")) as f:
        cfg = json.load(f)
    if name == "nas":
        return UNetNAS(cfg)
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(**{k: v for k, v in cfg.items() if not k.startswith("_")})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="both", choices=["nas", "sd15", "both"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sides", default="32,64")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    for name in (["nas", "sd15"] if args.model == "both" else [args.model]):
        model = build(name).eval().to(dtype)
        ctx = torch.randn(2, 77, 768, dtype=dtype)
        t = torch.tensor([999.0, 999.0])
        for side in [int(s) for s in args.sides.split(",")]:
            x = torch.randn(2, 4, side, side, dtype=dtype)
            model(x, t, ctx)  # warm-up
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                model(x, t, ctx)
                times.append(time.perf_counter() - t0)
            print(f"torch {torch.__version__} {name} {str(dtype).split('.')[-1]} batch 2 {side}x{side}: "
                  f"{sum(times) / len(times):.2f} s per step (min {min(times):.2f}, {len(times)} runs, {args.threads} threads)",
                  flush=True)
        del model


if __name__ == "__main__":
    main()
