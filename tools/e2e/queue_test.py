"""The PostgreSQL job queue across processes: one API node (`serve --queue`) and two workers
(`worker --queue`), each its own process, on a throwaway PostgreSQL cluster.

  1. 40 jobs on the demo model: every job succeeds exactly once (one result row each), both
     workers take part, and the images equal the single-process service's for the same seeds.
  2. kill -9 a worker in the middle of a job: the other finishes it after the lease expires;
     attempts = 2; still one result.
  3. PostgreSQL stopped for a few seconds mid-run: the API answers 503 (and does not crash),
     every job still completes once after the restart.
  4. A job running on a worker is cancelled from the API node and stops within seconds.

    python queue_test.py --bin .build/release/decidiffusion --pg tools/pg/throwaway.sh
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
import urllib.error
import urllib.request

LEASE = 2  # seconds: short so a killed worker's job is re-run quickly
STEPS = 4


def fail(msg):
    sys.exit(f"queue e2e: {msg}")


def call(method, url, body=None, timeout=30):
    """(status, body bytes); HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def call_json(method, url, body=None):
    status, raw = call(method, url, body)
    if status >= 300:
        fail(f"{method} {url}: HTTP {status}: {raw[:300]!r}")
    return json.loads(raw)


class Proc:
    """A decidiffusion process with its output in a log file."""

    def __init__(self, name, args, wait_for):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"deci-{name}-", suffix=".log", delete=False).name
        self.p = subprocess.Popen(args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while True:
            text = open(self.log).read()
            m = re.search(wait_for, text)
            if m:
                self.match = m.group(0)
                return
            if self.p.poll() is not None:
                fail(f"{name} exited ({self.p.returncode}):\n{text}")
            if time.time() > deadline:
                fail(f"{name} did not start:\n{text}")
            time.sleep(0.05)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.alive():
            self.p.send_signal(sig)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def job_body(i, steps=STEPS):
    return {"prompt": f"a small red house number {i}", "seed": 1000 + i, "steps": steps, "scheduler": "ddim"}


def wait_all(api, ids, timeout, allow_unavailable=False):
    """Final JSON of every job; 503s count as 'try again' when allowed."""
    done = {}
    deadline = time.time() + timeout
    while len(done) < len(ids):
        for jid in ids:
            if jid in done:
                continue
            status, raw = call("GET", f"{api}/v1/jobs/{jid}")
            if status == 503 and allow_unavailable:
                continue
            if status != 200:
                fail(f"GET job {jid}: HTTP {status}: {raw[:200]!r}")
            j = json.loads(raw)
            if j["status"] in ("succeeded", "failed", "cancelled"):
                done[jid] = j
        if time.time() > deadline:
            fail(f"{len(ids) - len(done)} of {len(ids)} jobs did not finish in {timeout} s")
        time.sleep(0.1)
    return done


def images_of(api, job):
    out = []
    for path in job["images"]:
        status, raw = call("GET", api + path)
        if status != 200:
            fail(f"GET {path}: HTTP {status}")
        out.append(raw)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--pg", required=True, help="tools/pg/throwaway.sh")
    ap.add_argument("--port", type=int, default=55433, help="PostgreSQL port for the throwaway cluster")
    args = ap.parse_args()
    pgdir = tempfile.mkdtemp(prefix="deci-queue-pg-")
    os.rmdir(pgdir)
    db = subprocess.run([args.pg, "start", pgdir, str(args.port)], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]

    def psql(sql):
        return subprocess.run(["psql", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, text=True).stdout.strip()

    procs = []
    try:
        # The single-process service: the reference images.
        ref = Proc("reference", [args.bin, "serve", "--port", "0", "--queue-size", "64", "--no-request-log"], r"http://127\.0\.0\.1:\d+")
        procs.append(ref)
        queue = ["--queue", db, "--lease-seconds", str(LEASE), "--poll-seconds", "0.5"]
        api = Proc("api", [args.bin, "serve", "--port", "0", "--queue-size", "64", "--no-request-log"] + queue, r"http://127\.0\.0\.1:\d+")
        procs.append(api)
        workers = {}
        for name in ("worker-a", "worker-b"):
            workers[name] = Proc(name, [args.bin, "worker", "--name", name] + queue, r"worker \S+ ready")
            procs.append(workers[name])
        url = api.match
        deadline = time.time() + 60
        while call("GET", url + "/healthz")[0] != 200:
            if time.time() > deadline:
                fail("the API node's /healthz did not turn 200 with two workers up")
            time.sleep(0.2)

        # 1. 40 jobs, two workers.
        t0 = time.time()
        ids = [call_json("POST", url + "/v1/jobs", job_body(i))["id"] for i in range(40)]
        # One client follows a job's event stream to its end through the queue.
        with urllib.request.urlopen(f"{url}/v1/jobs/{ids[-1]}/events", timeout=120) as r:
            stream = r.read().decode()
        if "event: done" not in stream or "\"status\":\"succeeded\"" not in stream:
            fail(f"the event stream of {ids[-1]} did not end with done (succeeded):\n{stream[-500:]}")
        done = wait_all(url, ids, 300)
        elapsed = time.time() - t0
        ref_ids = [call_json("POST", ref.match + "/v1/jobs", job_body(i))["id"] for i in range(40)]
        ref_done = wait_all(ref.match, ref_ids, 300)
        for i, (jid, rid) in enumerate(zip(ids, ref_ids)):
            if done[jid]["status"] != "succeeded":
                fail(f"job {i} ended {done[jid]['status']}: {done[jid].get('error')}")
            if images_of(url, done[jid]) != images_of(ref.match, ref_done[rid]):
                fail(f"job {i} (seed {1000 + i}): the queue's PNG differs from the single-process service's")
        rows = psql("SELECT count(*), count(DISTINCT job_id) FROM deci_job_images")
        if rows != "40|40":
            fail(f"result rows (images, jobs): {rows}, expected 40|40")
        attempts = psql("SELECT string_agg(DISTINCT attempts::text, ',') FROM deci_jobs")
        if attempts != "1":
            fail(f"attempts with no failures: {attempts}")
        by = dict(line.split("|") for line in psql("SELECT finished_by, count(*) FROM deci_jobs GROUP BY 1").splitlines())
        if set(by) != set(workers):
            fail(f"jobs per worker: {by}; both workers should take part")
        print(f"queue e2e: 40 jobs, 1 API node + 2 workers: each succeeded once ({by}), PNGs == single-process service's; {elapsed:.1f} s")

        # 2. kill -9 a worker mid-job.
        long = job_body(100, steps=40)
        jid = call_json("POST", url + "/v1/jobs", long)["id"]
        deadline = time.time() + 60
        while True:
            owner = psql(f"SELECT coalesce(lease_owner, '') || '|' || coalesce(step, 0) FROM deci_jobs WHERE id = '{jid}'")
            name, step = owner.split("|")
            if name and int(step) >= 2:
                break
            if time.time() > deadline:
                fail(f"the long job did not start: {owner}")
            time.sleep(0.05)
        workers[name].stop(signal.SIGKILL)
        killed_at = time.time()
        other = next(n for n in workers if n != name)
        job = wait_all(url, [jid], 120)[jid]
        if job["status"] != "succeeded":
            fail(f"the job of the killed worker ended {job['status']}: {job.get('error')}")
        row = psql(f"SELECT attempts, finished_by, (SELECT count(*) FROM deci_job_images WHERE job_id = id) FROM deci_jobs WHERE id = '{jid}'")
        if row != f"2|{other}|1":
            fail(f"after kill -9 of {name}: attempts|finished_by|result rows = {row}, expected 2|{other}|1")
        ref_long = call_json("POST", ref.match + "/v1/jobs", long)["id"]
        if images_of(url, job) != images_of(ref.match, wait_all(ref.match, [ref_long], 120)[ref_long]):
            fail("the re-run job's PNG differs from the single-process service's")
        print(f"queue e2e: kill -9 {name} at step {step}: {other} finished the job {time.time() - killed_at:.1f} s later "
              f"(lease {LEASE} s), attempts 2, one result")
        workers[name] = Proc(name, [args.bin, "worker", "--name", name] + queue, r"worker \S+ ready")
        procs.append(workers[name])

        # 3. PostgreSQL down for a few seconds mid-run.
        ids = [call_json("POST", url + "/v1/jobs", job_body(200 + i, steps=12))["id"] for i in range(10)]
        time.sleep(0.5)
        subprocess.run([args.pg, "down", pgdir], check=True)
        down_at = time.time()
        answers = set()
        while time.time() - down_at < 4:
            answers.add(call("GET", f"{url}/v1/jobs/{ids[0]}", timeout=10)[0])
            answers.add(call("POST", url + "/v1/jobs", job_body(999), timeout=10)[0])
            time.sleep(0.2)
        if answers != {503}:
            fail(f"with the database down the API answered {sorted(answers)}, expected only 503")
        if not api.alive():
            fail("the API node died with the database down")
        subprocess.run([args.pg, "up", pgdir], check=True)
        done = wait_all(url, ids, 180, allow_unavailable=True)
        bad = {j: d["status"] for j, d in done.items() if d["status"] != "succeeded"}
        if bad:
            fail(f"after the outage: {bad}")
        id_list = ",".join(f"'{j}'" for j in ids)
        rows = psql(f"SELECT count(*), count(DISTINCT job_id) FROM deci_job_images WHERE job_id IN ({id_list})")
        if rows != "10|10":
            fail(f"after the outage, result rows (images, jobs): {rows}, expected 10|10")
        attempts = psql(f"SELECT string_agg(attempts::text, ',' ORDER BY created) FROM deci_jobs WHERE id IN ({id_list})")
        if not all(w.alive() for w in workers.values()):
            fail("a worker died with the database down")
        print(f"queue e2e: PostgreSQL down 4 s mid-run: API answered 503 throughout, all 10 jobs succeeded once after "
              f"the restart (attempts {attempts})")

        # 4. Cancel a running job from the API node.
        jid = call_json("POST", url + "/v1/jobs", job_body(300, steps=400))["id"]
        deadline = time.time() + 60
        while psql(f"SELECT coalesce(step, 0) FROM deci_jobs WHERE id = '{jid}'") in ("", "0"):
            if time.time() > deadline:
                fail("the job to cancel did not start")
            time.sleep(0.05)
        cancelled_at = time.time()
        status, raw = call("POST", f"{url}/v1/jobs/{jid}/cancel")
        if status != 200:
            fail(f"cancel: HTTP {status}: {raw[:200]!r}")
        job = wait_all(url, [jid], 30)[jid]
        took = time.time() - cancelled_at
        step = psql(f"SELECT step FROM deci_jobs WHERE id = '{jid}'")
        if job["status"] != "cancelled" or took > 10:
            fail(f"cancel: the job ended {job['status']} after {took:.1f} s")
        print(f"queue e2e: a job running on a worker was cancelled from the API node: stopped at step {step}/400, {took:.2f} s after the call")
    finally:
        for p in procs:
            p.stop()
        subprocess.run([args.pg, "stop", pgdir], check=False)


if __name__ == "__main__":
    main()
