"""Throughput of the PostgreSQL job queue with 1 and 2 workers (and the single-process service as
the baseline), and the queue's own overhead per job, on the demo model. Prints figures; asserts
nothing about speed.

    python3 tools/bench_queue.py [--bin .build/release/decidiffusion] [--jobs 16] [--steps 20]

Starts a throwaway PostgreSQL cluster (tools/pg/throwaway.sh) and removes it afterwards.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def start(args, pattern):
    log = tempfile.NamedTemporaryFile(prefix="deci-bench-", suffix=".log", delete=False).name
    p = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        m = re.search(pattern, open(log).read())
        if m:
            return p, m.group(0)
        if p.poll() is not None:
            sys.exit(f"bench: {args[1]} exited:\n{open(log).read()}")
        time.sleep(0.05)
    sys.exit(f"bench: {args[1]} did not start")


def run_jobs(url, jobs, steps):
    t0 = time.time()
    ids = [call("POST", url + "/v1/jobs", {"prompt": f"a lighthouse {i}", "seed": i, "steps": steps})["id"] for i in range(jobs)]
    pending = set(ids)
    while pending:
        for jid in list(pending):
            j = call("GET", f"{url}/v1/jobs/{jid}")
            if j["status"] in ("succeeded", "failed", "cancelled"):
                if j["status"] != "succeeded":
                    sys.exit(f"bench: job {jid} {j['status']}: {j.get('error')}")
                pending.discard(jid)
        time.sleep(0.05)
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release/decidiffusion")
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--overhead-jobs", type=int, default=300)
    ap.add_argument("--port", type=int, default=55434)
    args = ap.parse_args()
    pg = os.path.join(here, "pg", "throwaway.sh")
    pgdir = tempfile.mkdtemp(prefix="deci-bench-pg-")
    os.rmdir(pgdir)
    db = subprocess.run([pg, "start", pgdir, str(args.port)], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    procs = []
    try:
        p, url = start([args.bin, "serve", "--port", "0", "--no-request-log", "--queue-size", "256"], r"http://127\.0\.0\.1:\d+")
        procs.append(p)
        run_jobs(url, 2, args.steps)  # warm-up
        single = run_jobs(url, args.jobs, args.steps)
        p.send_signal(signal.SIGTERM)
        p.wait()
        queue = ["--queue", db]
        p, url = start([args.bin, "serve", "--port", "0", "--no-request-log", "--queue-size", "256"] + queue, r"http://127\.0\.0\.1:\d+")
        procs.append(p)
        w, _ = start([args.bin, "worker", "--name", "w1"] + queue, r"worker \S+ ready")
        procs.append(w)
        run_jobs(url, 2, args.steps)
        one = run_jobs(url, args.jobs, args.steps)
        w2, _ = start([args.bin, "worker", "--name", "w2"] + queue, r"worker \S+ ready")
        procs.append(w2)
        run_jobs(url, 2, args.steps)
        two = run_jobs(url, args.jobs, args.steps)
        overhead = subprocess.run([args.bin, "worker", "--measure-overhead", str(args.overhead_jobs)] + queue,
                                  check=True, capture_output=True, text=True).stdout.strip()
        cores = os.cpu_count()
        print(f"bench_queue: {args.jobs} demo-model jobs of {args.steps} steps, {cores} cores, each process using all of them")
        for name, t in (("single-process service", single), ("queue, 1 worker", one), ("queue, 2 workers", two)):
            print(f"  {name:24s} {t:7.2f} s  {args.jobs / t:6.2f} jobs/s")
        print(f"  2 workers vs 1: x{one / two:.2f}")
        print(f"  {overhead}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        subprocess.run([pg, "stop", pgdir], check=False)


if __name__ == "__main__":
    main()
