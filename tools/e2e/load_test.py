"""Bounded load on loopback: N concurrent clients make M submissions in all against the server's
(small) queue. Every submission must end as an image or a 429 (with Retry-After); no 5xx, no lost
or duplicated job; the server answers /healthz afterwards. Prints queue waits and the server's peak RSS.

    python load_test.py --url http://127.0.0.1:PORT --pid SERVER_PID [--clients 16 --submissions 200]
"""
import argparse
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--submissions", type=int, default=200)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--max-rss-mb", type=float, default=1024)
    ap.add_argument("--backoff", type=float, default=0.1,
                    help="seconds a client waits after a 429 before its next submission (a real client waits Retry-After; "
                         "shorter here so the run stays short while the queue is kept full)")
    args = ap.parse_args()

    lock = threading.Lock()
    counter = iter(range(args.submissions))
    outcomes = {"image": 0, "429": 0}
    problems, ids, waits = [], [], []
    rss_before = peak_rss_mb(args.pid)

    def client(k):
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            status, headers, body = call("POST", args.url + "/v1/jobs",
                                         {"prompt": f"a red circle on a blue background {i}", "steps": args.steps, "seed": i})
            if status == 429:
                retry = {k.lower(): v for k, v in headers.items()}.get("retry-after")
                with lock:
                    outcomes["429"] += 1
                    if not retry or int(retry) < 1:
                        problems.append(f"429 without a usable Retry-After: {retry!r}")
                time.sleep(args.backoff)
                continue
            if status != 202:
                with lock:
                    problems.append(f"submission {i}: HTTP {status}: {body[:200]!r}")
                continue
            job = json.loads(body)
            with lock:
                ids.append(job["id"])
            deadline = time.time() + 120
            while time.time() < deadline:
                st, _, b = call("GET", args.url + job["poll_url"])
                if st != 200:
                    with lock:
                        problems.append(f"poll {job['id']}: HTTP {st}")
                    break
                j = json.loads(b)
                if j["status"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.02)
            else:
                with lock:
                    problems.append(f"job {job['id']} did not finish in 120 s")
                continue
            if j["status"] != "succeeded" or len(j["images"]) != 1:
                with lock:
                    problems.append(f"job {job['id']} ended {j['status']}: {j.get('error')}")
                continue
            st, hd, png = call("GET", args.url + j["images"][0])
            if st != 200 or not png.startswith(b"\x89PNG"):
                with lock:
                    problems.append(f"image of {job['id']}: HTTP {st}")
                continue
            wait = (datetime.fromisoformat(j["started"]) - datetime.fromisoformat(j["created"])).total_seconds()
            with lock:
                outcomes["image"] += 1
                waits.append(wait)

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0

    st, _, b = call("GET", args.url + "/healthz")
    health = json.loads(b) if st == 200 else {}
    if st != 200 or health.get("queue_depth") != 0:
        problems.append(f"/healthz afterwards: HTTP {st} {b[:200]!r}")
    if len(set(ids)) != len(ids):
        problems.append(f"duplicated job ids: {len(ids) - len(set(ids))}")
    total = outcomes["image"] + outcomes["429"]
    if total != args.submissions:
        problems.append(f"{args.submissions - total} submission(s) ended as neither an image nor a 429")
    rss = peak_rss_mb(args.pid)
    if rss > args.max_rss_mb:
        problems.append(f"server peak RSS {rss:.0f} MB over {args.max_rss_mb:.0f} MB")
    waits.sort()
    p = lambda q: waits[min(len(waits) - 1, int(q * len(waits)))] if waits else float("nan")
    print(f"load: {args.clients} clients, {args.submissions} submissions in {elapsed:.1f} s: {outcomes['image']} images, "
          f"{outcomes['429']} x 429; {outcomes['image'] / elapsed * 60:.0f} images/min; queue wait p50 {p(0.5):.3f} s, "
          f"p95 {p(0.95):.3f} s, max {p(1.0):.3f} s; server peak RSS {rss_before:.0f} -> {rss:.0f} MB")
    if outcomes["image"] == 0:
        problems.append("no submission produced an image")
    if problems:
        print("load test failed:\n  " + "\n  ".join(problems[:20]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
