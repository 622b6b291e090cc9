#!/usr/bin/env python3
"""Writes Fixtures/image/: small PNG/JPEG inputs made with Pillow (or a raw PNG writer for layouts
Pillow cannot save) and expected.json with what Pillow and diffusers 0.42 make of them.

Run:  $(tools/venv.sh) tools/make_image_fixtures.py

expected.json holds, per input file, the 8-bit RGB bytes (hex) and alpha the Swift decoder must
return; Pillow's Lanczos resizes, luma and diffusers' VaeImageProcessor pre/post-processing results.
Everything is deterministic (fixed numpy seed), so re-running rewrites identical files.
"""
import io
import json
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image, PngImagePlugin
from diffusers.image_processor import VaeImageProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "Fixtures", "image"))

PARAMETERS = (
    "a photo of an astronaut riding a horse, highly detailed\n"
    "Negative prompt: blurry, low quality\n"
    "Steps: 30, Sampler: DDIM, CFG scale: 7.5, Seed: 42, Size: 8x6, Model: DeciDiffusion-v1-0, "
    "Guidance rescale: 0.7, Comment: \"has, commas: and colons\""
)


def hexbytes(a):
    return np.ascontiguousarray(a, dtype=np.uint8).tobytes().hex()


def raw_png(path, width, height, bit_depth, color_type, rows_bytes, interlace=0):
    """Minimal PNG writer (filter type 0 on every row) for layouts Pillow cannot save. With
    interlace=1, rows_bytes must already be the Adam7 passes' rows in order."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + r for r in rows_bytes)
    data = (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(1234)
    expected = {"generated_by": "tools/make_image_fixtures.py", "pngs": {}, "jpegs": {}}

    # --- PNG written by Pillow with text chunks: tEXt parameters, zTXt and UTF-8 iTXt.
    rgb = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", PARAMETERS)
    info.add_text("Comment", "compressed latin-1 text: caf\xe9", zip=True)
    info.add_text("Description", "unicode \u732b \U0001F600 text")
    Image.fromarray(rgb).save(os.path.join(OUT, "pillow_parameters.png"), pnginfo=info)
    reread = Image.open(os.path.join(OUT, "pillow_parameters.png"))
    expected["pngs"]["pillow_parameters.png"] = {
        "width": 8, "height": 6, "rgb": hexbytes(np.array(reread.convert("RGB"))), "alpha": None,
        "text": {k: v for k, v in reread.text.items()},
    }

    # --- Color types and bit depths. Expected RGB is what Pillow's convert("RGB") gives, except
    # 16-bit gray, where Pillow clips to 255 and we keep the high byte (expected computed here).
    def add(name, im_save, expect_rgb, expect_alpha):
        im_save(os.path.join(OUT, name))
        h, w = expect_rgb.shape[:2]
        expected["pngs"][name] = {"width": int(w), "height": int(h), "rgb": hexbytes(expect_rgb),
                                  "alpha": None if expect_alpha is None else hexbytes(expect_alpha)}

    gray = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
    im = Image.fromarray(gray, mode="L")
    add("gray8.png", im.save, np.array(im.convert("RGB")), None)

    ga = np.stack([gray, rng.integers(0, 256, size=(5, 7), dtype=np.uint8)], axis=-1)
    im = Image.fromarray(ga, mode="LA")
    add("gray_alpha.png", im.save, np.array(im.convert("RGB")), ga[..., 1])

    rgba = rng.integers(0, 256, size=(4, 6, 4), dtype=np.uint8)
    im = Image.fromarray(rgba, mode="RGBA")
    add("rgba.png", im.save, np.array(im.convert("RGB")), rgba[..., 3])

    pal_src = Image.fromarray(rng.integers(0, 256, size=(6, 9, 3), dtype=np.uint8)).quantize(colors=12)
    add("palette.png", pal_src.save, np.array(pal_src.convert("RGB")), None)
    pal_t = pal_src.copy()
    pal_t.info["transparency"] = 3
    tr_alpha = np.where(np.array(pal_src) == 3, 0, 255).astype(np.uint8)
    add("palette_trns.png", lambda p: pal_t.save(p, transparency=3), np.array(pal_t.convert("RGB")), tr_alpha)
    pal4 = Image.fromarray(rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)).quantize(colors=9)
    add("palette_4bit.png", lambda p: pal4.save(p, bits=4), np.array(pal4.convert("RGB")), None)

    bw = Image.fromarray(rng.integers(0, 2, size=(5, 11), dtype=np.uint8) * 255, mode="L").convert("1")
    add("bilevel.png", bw.save, np.array(bw.convert("RGB")), None)

    g16 = rng.integers(0, 65536, size=(4, 5), dtype=np.uint16)
    raw_png(os.path.join(OUT, "gray16.png"), 5, 4, 16, 0, [r.astype(">u2").tobytes() for r in g16])
    hb = (g16 >> 8).astype(np.uint8)
    expected["pngs"]["gray16.png"] = {"width": 5, "height": 4, "rgb": hexbytes(np.stack([hb] * 3, -1)),
                                      "alpha": None, "note": "Pillow clips I;16 to 255 in convert('RGB'); we keep the high byte"}

    rgb16 = rng.integers(0, 65536, size=(3, 4, 3), dtype=np.uint16)
    raw_png(os.path.join(OUT, "rgb16.png"), 4, 3, 16, 2, [r.astype(">u2").tobytes() for r in rgb16])
    pil16 = np.array(Image.open(os.path.join(OUT, "rgb16.png")).convert("RGB"))
    assert (pil16 == (rgb16 >> 8)).all(), "Pillow no longer keeps the high byte of 16-bit RGB"
    expected["pngs"]["rgb16.png"] = {"width": 4, "height": 3, "rgb": hexbytes(pil16), "alpha": None}

    # Adam7-interlaced 8-bit RGB: seven passes, each a filtered sub-image of its own.
    il = rng.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    rows = []
    for x0, y0, dx, dy in passes:
        sub = il[y0::dy, x0::dx]
        if sub.size:
            rows += [r.tobytes() for r in sub]
    raw_png(os.path.join(OUT, "interlaced.png"), 11, 9, 8, 2, rows, interlace=1)
    pil_il = np.array(Image.open(os.path.join(OUT, "interlaced.png")).convert("RGB"))
    assert (pil_il == il).all()
    expected["pngs"]["interlaced.png"] = {"width": 11, "height": 9, "rgb": hexbytes(il), "alpha": None}

    g2 = rng.integers(0, 4, size=(3, 10), dtype=np.uint8)
    packed = [np.packbits(np.unpackbits(r[:, None], axis=1)[:, -2:].reshape(-1)).tobytes() for r in g2]
    raw_png(os.path.join(OUT, "gray2.png"), 10, 3, 2, 0, packed)
    pil2 = np.array(Image.open(os.path.join(OUT, "gray2.png")).convert("RGB"))
    assert (pil2[..., 0] == g2 * 85).all()
    expected["pngs"]["gray2.png"] = {"width": 10, "height": 3, "rgb": hexbytes(pil2), "alpha": None}

    # --- JPEGs: expected = Pillow's decode (its own libjpeg-turbo build).
    photo = np.zeros((24, 32, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:24, 0:32]
    photo[..., 0] = (xx * 8) % 256
    photo[..., 1] = (yy * 10) % 256
    photo[..., 2] = ((xx + yy) * 5 + rng.integers(0, 40, size=(24, 32))) % 256
    jobs = [
        ("photo420.jpg", Image.fromarray(photo), dict(quality=90, subsampling=2)),
        ("photo444_progressive.jpg", Image.fromarray(photo), dict(quality=85, subsampling=0, progressive=True)),
        ("gray.jpg", Image.fromarray(photo[..., 1]), dict(quality=90)),
        ("cmyk.jpg", Image.fromarray(photo).convert("CMYK"), dict(quality=95)),
    ]
    exif = Image.Exif()
    exif[0x0112] = 6
    jobs.append(("oriented6.jpg", Image.fromarray(photo[:, :20]), dict(quality=90, exif=exif.tobytes())))
    for name, im, kw in jobs:
        path = os.path.join(OUT, name)
        im.save(path, **kw)
        from PIL import ImageOps
        dec = Image.open(path)
        upright = ImageOps.exif_transpose(dec).convert("RGB")  # what diffusers.utils.load_image does
        raw_rgb = dec.convert("RGB")
        expected["jpegs"][name] = {"width": upright.width, "height": upright.height,
                                   "rgb": hexbytes(np.array(upright)),
                                   "raw_width": raw_rgb.width, "raw_height": raw_rgb.height,
                                   "raw_rgb": hexbytes(np.array(raw_rgb)),
                                   "orientation": int(dec.getexif().get(0x0112, 0))}

    # --- Lanczos resizes (Pillow) of a random RGB source.
    src = rng.integers(0, 256, size=(23, 37, 3), dtype=np.uint8)
    src[5:12, 10:20] = [250, 5, 128]  # hard edges exercise the negative lobes and clipping
    Image.fromarray(src).save(os.path.join(OUT, "resize_source.png"))
    expected["resize"] = {}
    for w, h in [(64, 48), (16, 16), (37, 11), (20, 23), (8, 5), (111, 23), (30, 70)]:
        r = Image.fromarray(src).resize((w, h), resample=Image.LANCZOS)
        expected["resize"][f"{w}x{h}"] = hexbytes(np.array(r))
    expected["luma"] = hexbytes(np.array(Image.fromarray(src).convert("L")))

    # --- diffusers VaeImageProcessor on the same source.
    proc = VaeImageProcessor(vae_scale_factor=8)
    mask_proc = VaeImageProcessor(vae_scale_factor=8, do_normalize=False, do_binarize=True, do_convert_grayscale=True)
    pre = proc.preprocess(Image.fromarray(src), height=16, width=24)  # 1x3x16x24, Lanczos resized
    expected["vae_preprocess_24x16"] = pre[0].permute(1, 2, 0).contiguous().numpy().view(np.uint32).reshape(-1).tolist()
    msk = mask_proc.preprocess(Image.fromarray(src), height=16, width=24)  # 1x1x16x24
    expected["mask_preprocess_24x16"] = [int(v) for v in msk.reshape(-1).numpy()]

    # Postprocess: floats near every rounding boundary k+0.5 of (x/2+0.5)*255, plus range edges.
    xs = []
    for k in range(255):
        x = np.float32(2.0 * (k + 0.5) / 255.0 - 1.0)
        for d in range(-2, 3):
            y = x
            for _ in range(abs(d)):
                y = np.nextafter(y, np.float32(np.inf if d > 0 else -np.inf))
            xs.append(np.float32(y))
    xs += [np.float32(v) for v in (-1.0, 1.0, -1.5, 1.5, 0.0, -0.0, 3e38, -3e38, 1e-30, -1e-30)]
    xs = np.array(xs, dtype=np.float32)
    n = (xs.size + 2) // 3 * 3
    xs = np.concatenate([xs, np.zeros(n - xs.size, dtype=np.float32)])
    t = torch.from_numpy(xs.reshape(1, 1, n // 3, 3).copy()).permute(0, 3, 1, 2)  # NCHW, width 1
    pil = proc.postprocess(t, output_type="pil")[0]
    expected["postprocess"] = {"x_bits": xs.view(np.uint32).tolist(),
                               "bytes": np.array(pil).reshape(-1).tolist()}

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
