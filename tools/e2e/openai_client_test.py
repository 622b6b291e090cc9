"""The official `openai` Python client against the running server (demo model): models.list,
images.generate (b64_json and url), images.edit with an RGBA mask and with image[], streaming with
partial images, errors as the client's typed exceptions, the seed through extra_body giving the
pixels of `decidiffusion generate --seed`, and a client that times out cancelling its job.

    python openai_client_test.py --url http://127.0.0.1:PORT --bin .build/release/decidiffusion
"""
import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import openai
from openai import OpenAI
from PIL import Image

from cli_parity import call


def fail(message):
    sys.exit(f"openai client: {message}")


def check(condition, message):
    if not condition:
        fail(message)


def png_pixels(data):
    image = Image.open(io.BytesIO(data))
    return image.size, image.convert("RGB").tobytes()


def healthz(url):
    return json.loads(call("GET", url + "/healthz"))


def wait_for(url, poll_url):
    deadline = time.time() + 60
    while True:
        job = json.loads(call("GET", url + poll_url))
        if job["status"] in ("succeeded", "failed", "cancelled"):
            check(job["status"] == "succeeded", f"native job {job['id']}: {job['status']} {job['error']}")
            return job
        check(time.time() < deadline, f"native job {job['id']} did not finish")
        time.sleep(0.02)


def rgba_png(size, transparent):
    """A gray RGBA PNG whose pixels are fully transparent where `transparent(x, y)`."""
    image = Image.new("RGBA", size, (128, 128, 128, 255))
    for y in range(size[1]):
        for x in range(size[0]):
            if transparent(x, y):
                image.putpixel((x, y), (128, 128, 128, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    client = OpenAI(base_url=args.url + "/v1", api_key="unused-without---api-key")

    models = [m.id for m in client.models.list()]
    check(models == ["demo"], f"models.list gave {models}")

    # The seed through extra_body: the same pixels as the CLI with --seed.
    prompt, negative, seed, steps = "a blue triangle", "blurry", 77, 6
    result = client.images.generate(prompt=prompt, n=2, response_format="b64_json",
                                    extra_body={"seed": seed, "steps": steps, "negative_prompt": negative})
    check(result.output_format == "png" and len(result.data) == 2, f"generate: {result.output_format}, {len(result.data)} images")
    served = [base64.b64decode(d.b64_json) for d in result.data]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([args.bin, "generate", prompt, "-N", negative, "--seed", str(seed), "--steps", str(steps), "-n", "2",
                        "-o", tmp, "-q"], check=True, stdout=subprocess.DEVNULL)
        files = sorted(os.listdir(tmp))
        check(len(files) == 2, f"the CLI wrote {files}")
        for i, name in enumerate(files):
            with open(os.path.join(tmp, name), "rb") as f:
                written = f.read()
            check(png_pixels(served[i]) == png_pixels(written), f"image {i}: the pixels differ from the CLI's {name}")
    width, height = png_pixels(served[0])[0]
    check(result.size == f"{width}x{height}", f"size {result.size} vs the image's {width}x{height}")

    # response_format url: a URL on this server serving the same PNG.
    by_url = client.images.generate(prompt=prompt, response_format="url",
                                    extra_body={"seed": seed, "steps": steps, "negative_prompt": negative})
    url = by_url.data[0].url
    check(url.startswith(args.url + "/v1/jobs/"), f"url {url}")
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": "Bearer x"}), timeout=30) as r:
        check(r.read() == served[0], "the url's PNG differs from the b64_json one")

    # JPEG with output_compression.
    jpeg = client.images.generate(prompt=prompt, output_format="jpeg", output_compression=50, extra_body={"seed": 1, "steps": 2})
    check(jpeg.output_format == "jpeg" and Image.open(io.BytesIO(base64.b64decode(jpeg.data[0].b64_json))).format == "JPEG", "jpeg output")

    # images.edit with an RGBA mask (alpha 0 = edit) and with a list of images (image[] parts).
    picture = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(picture, format="PNG")
    mask = rgba_png((width, height), lambda x, y: x < width // 2)
    edited = client.images.edit(image=("in.png", picture.getvalue(), "image/png"), mask=("mask.png", mask, "image/png"),
                                prompt="a cat", extra_body={"seed": 5, "steps": 4})
    edited_png = base64.b64decode(edited.data[0].b64_json)
    check(png_pixels(edited_png)[0] == (width, height), "edit size")
    # The same inpainting through the native API, whose mask is white where to repaint: the
    # transparent half of OpenAI's mask is the white half of the library's.
    white_left = Image.new("RGB", (width, height), (0, 0, 0))
    white_left.paste((255, 255, 255), (0, 0, width // 2, height))
    native_mask = io.BytesIO()
    white_left.save(native_mask, format="PNG")
    job = json.loads(call("POST", args.url + "/v1/jobs", {
        "prompt": "a cat", "seed": 5, "steps": 4, "strength": 1.0,
        "init_image": base64.b64encode(picture.getvalue()).decode(), "mask": base64.b64encode(native_mask.getvalue()).decode()}))
    check(call("GET", args.url + wait_for(args.url, job["poll_url"])["images"][0]) == edited_png,
          "images.edit with an RGBA mask differs from the native inpainting job with the inverted (white = repaint) mask")
    listed = client.images.edit(image=[("a.png", picture.getvalue(), "image/png"), ("b.png", picture.getvalue(), "image/png")],
                                prompt="a cat", extra_body={"seed": 5, "steps": 4, "strength": 0.5})
    check(len(listed.data) == 1, "edit with image[]")
    try:
        client.images.edit(image=("in.png", picture.getvalue(), "image/png"), mask=("mask.png", picture.getvalue(), "image/png"),
                           prompt="a cat")
        fail("a mask without alpha was accepted")
    except openai.BadRequestError as e:
        check(e.body.get("param") == "mask" and "alpha" in e.body.get("message", ""), f"mask without alpha: {e.body}")

    # Streaming with partial images: index 0..k-1, then the completed image.
    events = list(client.images.generate(prompt=prompt, stream=True, partial_images=2, extra_body={"seed": seed, "steps": 8}))
    types = [e.type for e in events]
    check(types == ["image_generation.partial_image"] * 2 + ["image_generation.completed"], f"stream events {types}")
    check([e.partial_image_index for e in events[:2]] == [0, 1], "partial_image_index")
    edit_events = list(client.images.edit(image=("in.png", picture.getvalue(), "image/png"), prompt="a cat", stream=True,
                                          partial_images=1, extra_body={"steps": 8}))
    check([e.type for e in edit_events] == ["image_edit.partial_image", "image_edit.completed"], "edit stream events")

    # Errors are the client's typed exceptions, with param and code, and not retried.
    start = time.time()
    try:
        client.images.generate(prompt=prompt, size="100x100")
        fail("size 100x100 was accepted")
    except openai.BadRequestError as e:
        check(e.body.get("param") == "size" and e.response.headers.get("x-should-retry") == "false", f"size error: {e.body}")
    try:
        client.images.generate(prompt=prompt, model="dall-e-3")
        fail("an unknown model was accepted")
    except openai.NotFoundError as e:
        check(e.body.get("code") == "model_not_found", f"model error: {e.body}")
    try:
        client.images.generate(prompt=prompt, output_format="webp")
        fail("webp was accepted")
    except openai.BadRequestError as e:
        check(e.body.get("param") == "output_format", f"webp error: {e.body}")
    check(time.time() - start < 5, "4xx answers were retried")

    # A client that gives up (timeout, no retries) cancels its job within a step; the next request
    # runs at once instead of waiting behind abandoned work.
    impatient = OpenAI(base_url=args.url + "/v1", api_key="x", timeout=1.0, max_retries=0)
    try:
        impatient.images.generate(prompt=prompt, size="256x256", extra_body={"steps": 1000})
        fail("a 1000-step generation finished within the 1 s timeout: the test cannot see a disconnect")
    except openai.APITimeoutError:
        pass
    deadline = time.time() + 3
    while healthz(args.url)["running"] is not None:
        if time.time() > deadline:
            fail(f"the abandoned job is still running 3 s after the client disconnected: {healthz(args.url)}")
        time.sleep(0.02)
    cancelled_after = time.time() - deadline + 3
    start = time.time()
    client.images.generate(prompt=prompt, extra_body={"steps": 2})
    took = time.time() - start
    check(took < 5, f"the next request took {took:.1f} s")
    print(f"openai client {openai.__version__}: models, generate (b64 = CLI pixels, url, jpeg), edit (RGBA mask, image[]), "
          f"stream (partial images), typed errors; a dropped request's job stopped {cancelled_after:.2f} s after the disconnect, "
          f"the next request took {took:.2f} s")


if __name__ == "__main__":
    main()
