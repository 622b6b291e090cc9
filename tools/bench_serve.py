#!/usr/bin/env python3
"""Warm request overhead of `decidiffusion serve` against the CLI's in-process time for the same
image, in one run (timings on a shared machine are noisy: compare within a run, quote the ratio).

    python3 tools/bench_serve.py [--model DIR] [--size 512] [--steps 5] [--repeats 2] [--precision f32]

Without --model it uses the full-size random-weight DeciDiffusion that `decidiffusion bench` builds
under ~/.cache/decidiffusion/random/decidiffusion. Alternates CLI and server runs (after one warm-up
request), and reports per run:
  cli      `decidiffusion generate` wall time minus its printed load time (tokenize, denoise, decode,
           PNG write: what one image costs once the model is loaded)
  service  POST /v1/jobs -> PNG bytes received, polling the job every 10 ms (queueing, JSON, the job
           runner, PNG encoding, HTTP), with the server's own pipeline time for the job
Standard library only.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=3600) as r:
        return r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release/decidiffusion")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/decidiffusion/random/decidiffusion"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--precision", default="f32")
    args = ap.parse_args()
    if not os.path.isdir(args.model):
        sys.exit(f"{args.model}: not found; build it with `{args.bin} bench pipeline --steps 5 --measure-steps 1`")
    prompt = "a photo of an astronaut riding a horse"
    fields = {"prompt": prompt, "steps": args.steps, "width": args.size, "height": args.size, "seed": 1}

    log = tempfile.NamedTemporaryFile("w+", delete=False)
    server = subprocess.Popen([args.bin, "serve", "--port", "0", "-m", args.model, "--precision", args.precision, "--no-request-log"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        url = None
        for _ in range(6000):
            m = re.search(r"http://127\.0\.0\.1:\d+", open(log.name).read())
            if m:
                url = m.group(0)
                break
            if server.poll() is not None:
                sys.exit("the server exited:\n" + open(log.name).read())
            time.sleep(0.1)

        def request():
            t0 = time.perf_counter()
            job = json.loads(call("POST", url + "/v1/jobs", fields))
            while True:
                j = json.loads(call("GET", url + job["poll_url"]))
                if j["status"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.01)
            if j["status"] != "succeeded":
                sys.exit(f"job {j['id']}: {j['status']}: {j['error']}")
            png = call("GET", url + j["images"][0])
            wall = time.perf_counter() - t0
            t = j["timings"]
            return wall, t["text_encoder"] + t["vae_encode"] + t["denoising"] + t["vae_decode"], png

        def cli():
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "cli.png")
                t0 = time.perf_counter()
                p = subprocess.run([args.bin, "generate", prompt, "-m", args.model, "--precision", args.precision, "--steps", str(args.steps),
                                    "-w", str(args.size), "-H", str(args.size), "--seed", "1", "-o", out],
                                   capture_output=True, text=True, check=True)
                wall = time.perf_counter() - t0
                load = float(re.search(r"loaded in ([0-9.]+) s", p.stderr).group(1))
                return wall - load, open(out, "rb").read()

        request()  # warm-up: first-call allocations, caches
        rows = []
        for r in range(args.repeats):
            c, cli_png = cli()
            w, pipe, png = request()
            rows.append((c, w, pipe))
            print(f"run {r + 1}: cli {c:.2f} s, service {w:.2f} s (its pipeline {pipe:.2f} s): "
                  f"service/cli {w / c:.3f}, HTTP+queue overhead {w - pipe:.3f} s; PNGs identical: {png == cli_png}")
        c = statistics.median(x[0] for x in rows)
        w = statistics.median(x[1] for x in rows)
        p = statistics.median(x[2] for x in rows)
        print(f"median: {args.size} px, {args.steps} steps, {args.precision}: cli {c:.2f} s, service {w:.2f} s, "
              f"service/cli {w / c:.3f} ({(w / c - 1) * 100:+.1f}%), overhead beyond the pipeline {w - p:.3f} s ({(w / p - 1) * 100:.2f}%)")
    finally:
        server.terminate()
        server.wait()
        os.unlink(log.name)


if __name__ == "__main__":
    main()
