"""The `webuiapi` package (mix1009/sdwebuiapi), as A1111 scripts use it, against the running server:
txt2img (same pixels as `decidiffusion generate` for the seed), img2img with a mask, progress during
a run, interrupt, the samplers list, the model / options round trip; and a client that disconnects
during a synchronous call cancels its job, so the next call runs at once.

    python webuiapi_client_test.py --url http://127.0.0.1:PORT --bin .build/release/decidiffusion
"""
import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import requests
import webuiapi
from PIL import Image


def check(cond, message):
    if not cond:
        print(f"webuiapi test failed: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    api = webuiapi.WebUIApi(baseurl=args.url + "/sdapi/v1")

    # txt2img: the client's own defaults (Euler a, cfg 7, eta 1, s_* ...) plus a seed.
    prompt = "a red circle on a blue background"
    r = api.txt2img(prompt=prompt, seed=7, steps=6, width=64, height=64, batch_size=2)
    check(len(r.images) == 2, f"{len(r.images)} images")
    check(r.info["all_seeds"] == [7, 8], r.info["all_seeds"])
    check("Seed: 8," in r.info["infotexts"][1], r.info["infotexts"][1])
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/cli.png"
        subprocess.run([args.bin, "generate", prompt, "--seed", "8", "--steps", "6", "--scheduler", "Euler a", "--cfg", "7", "--prompt-weighting", "a1111",
                        "-o", out, "-q"], check=True, stdout=subprocess.DEVNULL)
        cli = Image.open(out).convert("RGB")
        check(list(cli.getdata()) == list(r.images[1].convert("RGB").getdata()),
              "image 2 (seed 8) differs from `decidiffusion generate --seed 8`")

    # img2img with a mask (white = repaint): outside the blurred mask, the original pixels.
    source = r.images[0].convert("RGB")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    e = api.img2img(images=[source], mask_image=mask, prompt="a yellow square", steps=6, width=64, height=64, seed=3,
                    denoising_strength=0.9, mask_blur=2)
    check(len(e.images) == 1, "img2img gave no image")
    edited = e.images[0].convert("RGB")
    for y in range(64):
        for x in range(64):
            if x < 10 or x >= 54 or y < 10 or y >= 54:
                check(edited.getpixel((x, y)) == source.getpixel((x, y)), f"pixel {(x, y)} outside the mask changed")
    check(any(edited.getpixel((x, y)) != source.getpixel((x, y)) for x in range(20, 44) for y in range(20, 44)), "nothing repainted")

    # Progress during a long run, then interrupt: the call returns 200 with the partial image.
    result = {}
    t = threading.Thread(target=lambda: result.update(r=api.txt2img(prompt="x", steps=1000, width=64, height=64, seed=1)))
    t.start()
    deadline = time.time() + 60
    while time.time() < deadline:
        p = api.get_progress()
        if p["state"]["sampling_step"] >= 5:
            break
        time.sleep(0.05)
    check(p["state"]["job_count"] == 1 and p["state"]["sampling_steps"] == 1000 and 0 < p["progress"] < 1, p)
    api.interrupt()
    t.join(30)
    check(not t.is_alive() and len(result["r"].images) == 1, "interrupt did not end the call with its partial image")
    idle = api.get_progress()
    check(idle["progress"] == 0 and idle["state"]["job_count"] == 0, idle)

    # Discovery and the model / options round trip.
    check("Euler a" in [s["name"] for s in api.get_samplers()], "samplers")
    names = api.util_get_model_names()
    check(len(names) >= 1 and names[0].startswith("demo"), names)
    api.util_set_model(names[0])
    check(api.get_options()["sd_model_checkpoint"] == names[0], api.get_options()["sd_model_checkpoint"])
    options = api.get_options()
    api.set_options(options)  # the whole dict back, as Open WebUI does

    # A client that goes away mid-call leaves no work behind; the next call runs at once.
    try:
        requests.post(args.url + "/sdapi/v1/txt2img", json={"prompt": "x", "steps": 1000, "width": 64, "height": 64}, timeout=1.0)
        check(False, "the long call finished within 1 s?")
    except requests.exceptions.ReadTimeout:
        pass
    t0 = time.time()
    while time.time() - t0 < 5:
        h = json.loads(urllib.request.urlopen(args.url + "/healthz").read())
        if h["running"] is None and h["queue_depth"] == 0:
            break
        time.sleep(0.02)
    gone = time.time() - t0
    check(h["running"] is None, f"the abandoned job still runs after {gone:.1f} s")
    t1 = time.time()
    api.txt2img(prompt="x", steps=4, width=64, height=64)
    print(f"webuiapi {webuiapi.__version__ if hasattr(webuiapi, '__version__') else ''}: txt2img (= CLI pixels), masked img2img, "
          f"progress + interrupt, samplers, model/options: ok; a disconnected call stopped {gone:.2f} s after the client left, "
          f"the next call took {time.time() - t1:.2f} s")


if __name__ == "__main__":
    main()
