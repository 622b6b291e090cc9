"""The same seed through the running server and through `decidiffusion generate` gives the same PNG,
byte for byte (pixels and the `parameters` chunk alike).

    python cli_parity.py --url http://127.0.0.1:PORT --bin .build/release/decidiffusion
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    prompt, negative, seed, steps = "a green square on a white background", "blurry", 1234, 8
    job = json.loads(call("POST", args.url + "/v1/jobs", {"prompt": prompt, "negative_prompt": negative, "seed": seed,
                                                          "steps": steps, "num_images": 2, "scheduler": "euler_a"}))
    deadline = time.time() + 60
    while True:
        j = json.loads(call("GET", args.url + job["poll_url"]))
        if j["status"] in ("succeeded", "failed", "cancelled"):
            break
        if time.time() > deadline:
            sys.exit(f"cli parity: job {job['id']} did not finish")
        time.sleep(0.02)
    if j["status"] != "succeeded":
        sys.exit(f"cli parity: the job ended {j['status']}: {j['error']}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([args.bin, "generate", prompt, "-N", negative, "--seed", str(seed), "--steps", str(steps), "-n", "2",
                        "--scheduler", "euler_a", "-o", tmp, "-q"], check=True, stdout=subprocess.DEVNULL)
        import os
        files = sorted(os.listdir(tmp))
        if len(files) != 2:
            sys.exit(f"cli parity: the CLI wrote {files}")
        for i, name in enumerate(files):
            served = call("GET", args.url + j["images"][i])
            with open(os.path.join(tmp, name), "rb") as f:
                written = f.read()
            if served != written:
                sys.exit(f"cli parity: image {i}: the server's PNG ({len(served)} bytes) differs from the CLI's {name} ({len(written)} bytes)")
    print(f"cli parity: 2 images, seed {seed}, {steps} steps: server PNGs == `decidiffusion generate` PNGs, byte for byte")


if __name__ == "__main__":
    main()
