"""Side-by-side kernel benchmark: PyTorch on the same shapes as `decidiffusion bench kernels`,
in the same run, then the ratio engine/torch (< 1 means the engine is faster).

Run: $(tools/venv.sh) tools/bench_kernels_vs_torch.py [--threads 2] [--binary .build/release/decidiffusion]
"""
import argparse
import json
import subprocess
import time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--binary", default=".build/release/decidiffusion")
args = ap.parse_args()
torch.set_num_threads(args.threads)


def best(fn):
    fn()
    t = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


torch_times = {}
for dt_name, dt in [("f32", torch.float32), ("bf16", torch.bfloat16)]:
    with torch.no_grad():
        for cin, hw in [(320, 64), (1280, 16)]:
            x = torch.randn(2, cin, hw, hw).to(dt).contiguous(memory_format=torch.channels_last)
            conv = torch.nn.Conv2d(cin, cin, 3, padding=1).to(dt).to(memory_format=torch.channels_last)
            torch_times[(f"conv3x3 {cin}->{cin} 2x{hw}x{hw}", dt_name)] = best(lambda: conv(x))
        q, k, v = (torch.randn(2, 8, 4096, 80).to(dt) for _ in range(3))
        torch_times[("attention 2x4096 tokens, 8 heads, 640 ch", dt_name)] = best(lambda: F.scaled_dot_product_attention(q, k, v))
        x = torch.randn(4096, 768).to(dt)
        lin = torch.nn.Linear(768, 3072).to(dt)
        torch_times[("linear 4096x768 -> 3072", dt_name)] = best(lambda: lin(x))
    x = torch.randn(2, 320, 64, 64).contiguous(memory_format=torch.channels_last)
    gn = torch.nn.GroupNorm(32, 320)
    with torch.no_grad():
        torch_times[("groupnorm+silu 2x64x64x320", "f32")] = best(lambda: F.silu(gn(x)))

out = subprocess.run([args.binary, "bench", "kernels", "--json", "--threads", str(args.threads), "--repeats", str(args.repeats)],
                     check=True, capture_output=True, text=True).stdout
print(f"{'case':46} {'prec':5} {'engine s':>9} {'torch s':>9} {'ratio':>7}  engine rate")
for line in out.splitlines():
    r = json.loads(line)
    t = torch_times.get((r["name"], r["precision"]))
    ratio = f"{r['seconds'] / t:7.2f}" if t else "      -"
    ts = f"{t:9.4f}" if t else "        -"
    print(f"{r['name']:46} {r['precision']:5} {r['seconds']:9.4f} {ts} {ratio}  {r['rate']:.1f} {r['unit']}")
