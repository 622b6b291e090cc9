#!/usr/bin/env python3
"""Writes the DeciWeights test fixtures (Fixtures/weights/) with torch + safetensors.

Regenerate with:  PY=$(tools/venv.sh); $PY tools/make_weights_fixtures.py

Everything is deterministic (fixed seeds, explicit bit patterns), so rerunning gives the same
bytes unless torch/safetensors change behaviour (which the Swift tests would then catch).

Files:
  conversions.safetensors  inputs and torch's converted outputs: f16->f32, bf16->f32, f64->f32,
                           f32->bf16 (round to nearest even; ties, NaN, inf, overflow, subnormals),
                           f16->bf16, f32->f16, f64->bf16 (f16/f32/f64 inputs shared: X.input of
                           the X_to_f32 / f32_to_bf16 entries).  metadata {"format": "pt"}
  layout.safetensors       one tensor of each common dtype incl. a scalar and an empty tensor,
                           written by safetensors.torch.save_file (the Swift writer must reproduce
                           this file byte for byte).  metadata {"format": "pt"}
  writer_reference.safetensors
                           tensors the Swift writer test builds from literals (including awkward
                           names that exercise JSON escaping); compared byte for byte.
  sharded/                 a two-shard checkpoint with model.safetensors.index.json
  tiny_vae_fp16/           a tiny diffusers AutoencoderKL saved with variant="fp16" and a small
                           max_shard_size, i.e. diffusers' own naming for sharded variants.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "weights")


def bits_to_f32(bits):
    return torch.from_numpy(np.array(bits, dtype=np.uint32).view(np.float32).copy())


def bits_to_f16(bits):
    return torch.from_numpy(np.array(bits, dtype=np.uint16).view(np.float16).copy())


def bits_to_bf16(bits):
    return torch.from_numpy(np.array(bits, dtype=np.uint16).view(np.int16).copy()).view(torch.bfloat16)


def conversions():
    rng = np.random.default_rng(1234)

    # f16 -> f32: specials, subnormal edges, and random patterns.
    f16_special = [0x0000, 0x8000, 0x0001, 0x8001, 0x0002, 0x03FF, 0x83FF, 0x0400, 0x0401, 0x3C00, 0xBC00,
                   0x3555, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7FFF, 0x0200, 0x1000]
    f16_bits = f16_special + list(rng.integers(0, 1 << 16, size=1000))
    f16 = bits_to_f16(f16_bits)

    # bf16 -> f32
    bf16_special = [0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x3F80, 0xBF80, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0,
                    0x7F81, 0xFFC1, 0x4049]
    bf16_bits = bf16_special + list(rng.integers(0, 1 << 16, size=1000))
    bf16 = bits_to_bf16(bf16_bits)

    # f32 -> bf16 round to nearest even.
    f32_special = [
        0x00000000, 0x80000000, 0x3F800000, 0xBF800000,
        0x3F808000, 0x3F818000, 0xBF808000, 0xBF818000,   # exact ties: to even (down, up)
        0x3F808001, 0x3F807FFF, 0x3F80FFFF, 0x3F817FFF,   # just above / below a tie
        0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F7FFF, 0x7F7F8000,   # max float rounds to inf; last finite; tie to inf
        0x7F800000, 0xFF800000,                           # inf
        0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF, 0x7F80FFFF, 0xFFFFFFFF,  # NaNs (low payload too)
        0x00000001, 0x00008000, 0x00018000, 0x00007FFF, 0x007FFFFF, 0x00800000, 0x807FFFFF,  # subnormals
        0x33800000, 0x0080FFFF, 0x4B7FFFFF, 0x40490FDB,
    ]
    random_bits = list(rng.integers(0, 1 << 32, size=1500, dtype=np.uint64))
    tie_bits = [(int(b) & 0xFFFF0000) | 0x8000 for b in rng.integers(0, 1 << 32, size=500, dtype=np.uint64)]
    f32 = bits_to_f32(f32_special + random_bits + tie_bits)

    f64 = torch.tensor([0.0, -0.0, 1.0, 1.0 + 2.0 ** -24, 1.0 + 3 * 2.0 ** -24, 1.0 + 2.0 ** -24 + 2.0 ** -50,
                        1e-50, -1e-50, 1e-40, 3.4028235677973366e38, 1e39, -1e39, float("inf"), float("-inf"),
                        float("nan"), np.pi, -np.e, 65504.0, 1.0 / 3.0], dtype=torch.float64)
    f64 = torch.cat([f64, torch.from_numpy(rng.standard_normal(200) * 10.0 ** rng.integers(-40, 40, size=200))])

    tensors = {
        "f16_to_f32.input": f16,
        "f16_to_f32.expected": f16.float(),
        "bf16_to_f32.input": bf16,
        "bf16_to_f32.expected": bf16.float(),
        "f32_to_bf16.input": f32,
        "f32_to_bf16.expected": f32.to(torch.bfloat16),
        "f16_to_bf16.expected": f16.to(torch.bfloat16),
        "f32_to_f16.expected": f32.to(torch.float16),
        "f64_to_f32.input": f64,
        "f64_to_f32.expected": f64.float(),
        "f64_to_bf16.expected": f64.to(torch.bfloat16),
    }
    save_file(tensors, os.path.join(OUT, "conversions.safetensors"), metadata={"format": "pt"})


def layout():
    tensors = {
        "model.f32": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) * 0.5 - 3.0,
        "model.f16": (torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7).half(),
        "model.bf16": (torch.arange(6, dtype=torch.float32) * -1.25).to(torch.bfloat16),
        "model.f64": torch.tensor([1.5, -2.25, 1e300], dtype=torch.float64),
        "buffers.position_ids": torch.arange(77, dtype=torch.int64).unsqueeze(0),
        "buffers.i32": torch.tensor([-2147483648, -1, 0, 2147483647], dtype=torch.int32),
        "buffers.i64": torch.tensor([-(2 ** 63), -1, 0, 2 ** 63 - 1], dtype=torch.int64),
        "buffers.u8": torch.tensor([0, 1, 254, 255], dtype=torch.uint8),
        "buffers.i8": torch.tensor([-128, -1, 0, 127], dtype=torch.int8),
        "buffers.i16": torch.tensor([-32768, 5, 32767], dtype=torch.int16),
        "buffers.mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(42.0),
        "empty": torch.zeros(3, 0),
    }
    save_file(tensors, os.path.join(OUT, "layout.safetensors"), metadata={"format": "pt"})


# Names chosen to exercise JSON escaping; keep in sync with WriterTests.swift.
WRITER_NAMES = ["alpha.weight", "quote\"back\\slash/solidus", "ctl\n\t\x01\x1f\x7f", "unicode.é中😀"]


def writer_reference():
    tensors = {
        WRITER_NAMES[0]: torch.tensor([[1.0, -2.0, 0.5], [3.25, 1e-8, -0.0]], dtype=torch.float32),
        WRITER_NAMES[1]: torch.tensor([1.0, 0.333251953125, 65504.0, -6.103515625e-05], dtype=torch.float16),
        WRITER_NAMES[2]: torch.tensor([1.0, -1.5, 3.140625], dtype=torch.bfloat16),
        WRITER_NAMES[3]: torch.tensor([[7, -9]], dtype=torch.int64),
        "zz.i32": torch.tensor([1, 2, 3], dtype=torch.int32),
    }
    save_file(tensors, os.path.join(OUT, "writer_reference.safetensors"), metadata={"format": "pt"})


def sharded():
    d = os.path.join(OUT, "sharded")
    os.makedirs(d, exist_ok=True)
    shard1 = {"encoder.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
              "encoder.bias": torch.tensor([0.5, -0.5], dtype=torch.float32)}
    shard2 = {"decoder.weight": torch.arange(6, dtype=torch.float32).reshape(3, 2).half(),
              "decoder.bias": torch.tensor([1.0, 2.0, 3.0]).to(torch.bfloat16)}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    save_file(shard1, os.path.join(d, names[0]), metadata={"format": "pt"})
    save_file(shard2, os.path.join(d, names[1]), metadata={"format": "pt"})
    weight_map = {k: names[0] for k in shard1} | {k: names[1] for k in shard2}
    total = sum(t.numel() * t.element_size() for t in (shard1 | shard2).values())
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
        f.write("\n")


def tiny_vae():
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), block_out_channels=(8,), layers_per_block=1,
                        latent_channels=4, norm_num_groups=4, sample_size=8)
    d = os.path.join(OUT, "tiny_vae_fp16")
    shutil.rmtree(d, ignore_errors=True)
    vae.half().save_pretrained(d, variant="fp16", max_shard_size="8KB")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    conversions()
    layout()
    writer_reference()
    sharded()
    tiny_vae()
    for root, _, files in sorted(os.walk(OUT)):
        for name in sorted(files):
            p = os.path.join(root, name)
            print(f"{os.path.relpath(p, OUT):60s} {os.path.getsize(p):8d} bytes")


if __name__ == "__main__":
    sys.exit(main())
