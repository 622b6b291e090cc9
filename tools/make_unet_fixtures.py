#!/usr/bin/env python3
"""Writes the denoiser test fixtures: Fixtures/models/unet_nas/ (U-Net-NAS, reference in
tools/unet_nas_reference.py) and Fixtures/models/unet_sd/ (diffusers' UNet2DConditionModel).

Regenerate with:  PY=$(tools/venv.sh); $PY tools/make_unet_fixtures.py
Full-size random-weight parity data (not committed; several GB; used by the Swift tests when
DECI_FULL=1):     $PY tools/make_unet_fixtures.py --full   (writes ~/.cache/decidiffusion/full/unet_{nas,sd15}/)

To keep the repository small, the tiny models' weights are not stored: they are a deterministic
function of each tensor's name and shape (below), which the Swift tests recompute bit for bit and
write to a temporary safetensors file in the fixture's dtype (f16 rounding to nearest even, as
torch's .half(); the reference sees the same rounded values). Each fixture folder holds:
  config.json      the model's config.json (outer UNet2DConditionModel keys; `configurations` for NAS)
  manifest.json    {"dtype": "F16"|"F32", "tensors": [[key, shape], ...]} = the reference's state dict
  io.safetensors   sample [2, C, H, W] (NCHW), timesteps [2], encoder_hidden_states [2, T, D],
                   output [2, C_out, H, W] (f32 reference run on the rounded weights)

Weight values (all arithmetic in float32, exact in both languages):
  seed  = FNV-1a 64 of the key's UTF-8 bytes
  z_i   = splitmix64 finaliser of (seed + (i + 1) * 0x9E3779B97F4A7C15) mod 2^64
  u_i   = float32(z_i >> 40) * 2^-23 - 1                      (uniform in [-1, 1))
  rank >= 2:                u_i * (1 / sqrt(float32(prod(shape[1:]))))
  rank 1, key ends 'weight': 1 + u_i * 0.25                    (norm scales)
  otherwise (biases):       u_i * 0.125
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_nas_reference import UNetNAS  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIX = os.path.join(ROOT, "Fixtures", "models")
SPEC = os.path.join(ROOT, "..", "shared", "spec")
FULL = os.path.expanduser("~/.cache/decidiffusion/full")

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def det_values(key, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    seed = np.uint64(fnv1a64(key))
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = seed + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -23) - np.float32(1)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        v = u * (np.float32(1) / np.sqrt(np.float32(fan_in)))
    elif key.endswith("weight"):
        v = np.float32(1) + u * np.float32(0.25)
    else:
        v = u * np.float32(0.125)
    return v.astype(np.float32).reshape(shape)


def det_state_dict(model, dtype):
    sd = {}
    for k, t in model.state_dict().items():
        v = torch.from_numpy(det_values(k, list(t.shape)))
        if dtype == "F16":
            v = v.half().float()
        sd[k] = v
    return sd


def nas_config(base, temb, blocks, outer=None):
    cfg = {"_class_name": "FlexibleUNet2DConditionModel", "block_out_channels": [base, 2 * base], "in_channels": 4,
           "out_channels": 4}
    cfg.update(outer or {})
    c = {"sample_size": 16, "cross_attention_dim": 32, "temb_dim": temb, "resnet_eps": 1e-5, "resnet_act_fn": "silu",
         "num_attention_heads": 8, "mix_block_in_forward": True}
    c.update(blocks)
    cfg["configurations"] = c
    return cfg


NAS_CASES = {
    # The published structure with every width scaled down (320 -> 32, 640 -> 64, 1280 -> 96).
    "scaled": dict(dtype="F16", latent=(16, 16), tokens=77, cfg=nas_config(32, 128, {
        "down_blocks_in_channels": [32, 32, 64], "down_blocks_out_channels": [32, 64, 96],
        "down_blocks_num_resnets": [2, 2, 1], "down_blocks_num_attentions": [0, 1, 3], "add_downsample": [True, True, True],
        "add_upsample_mid_block": True, "mid_num_resnets": 4, "mid_num_attentions": 2,
        "prev_output_channels": [96, 96, 64], "up_blocks_num_resnets": [2, 3, 3], "up_blocks_num_attentions": [6, 3, 0],
        "add_upsample": [True, True, False]})),
    # A resnet-only and an attention-only down block, a resnet-only up block, an attention-heavy mid.
    "kinds": dict(dtype="F16", latent=(16, 16), tokens=9, cfg=nas_config(32, 128, {
        "down_blocks_in_channels": [32, 32, 64], "down_blocks_out_channels": [32, 64, 64],
        "down_blocks_num_resnets": [1, 2, 0], "down_blocks_num_attentions": [0, 1, 2], "add_downsample": [True, True, True],
        "add_upsample_mid_block": True, "mid_num_resnets": 1, "mid_num_attentions": 2,
        "prev_output_channels": [64, 64, 64], "up_blocks_num_resnets": [1, 3, 2], "up_blocks_num_attentions": [1, 0, 1],
        "add_upsample": [True, True, False]})),
    # mix_block_in_forward false (resnets first everywhere), two levels, fp32 weights.
    "unmixed": dict(dtype="F32", latent=(8, 16), tokens=5, cfg=nas_config(32, 128, {
        "mix_block_in_forward": False,
        "down_blocks_in_channels": [32, 32], "down_blocks_out_channels": [32, 64],
        "down_blocks_num_resnets": [2, 1], "down_blocks_num_attentions": [1, 2], "add_downsample": [True, True],
        "add_upsample_mid_block": True, "mid_num_resnets": 2, "mid_num_attentions": 1,
        "prev_output_channels": [64, 64], "up_blocks_num_resnets": [2, 3], "up_blocks_num_attentions": [2, 1],
        "add_upsample": [True, False]})),
    # Odd counts, a level without downsampling, a resnet-only mid block, 4 heads, an unused skip,
    # a non-square latent that is a multiple of 4 but not of 8.
    "odd": dict(dtype="F16", latent=(12, 20), tokens=7, cfg=nas_config(32, 128, {
        "num_attention_heads": 4,
        "down_blocks_in_channels": [32, 32, 64], "down_blocks_out_channels": [32, 64, 64],
        "down_blocks_num_resnets": [3, 1, 1], "down_blocks_num_attentions": [1, 3, 0], "add_downsample": [True, False, True],
        "add_upsample_mid_block": True, "mid_num_resnets": 3, "mid_num_attentions": 0,
        "prev_output_channels": [64, 64, 64], "up_blocks_num_resnets": [2, 1, 3], "up_blocks_num_attentions": [1, 2, 1],
        "add_upsample": [False, True, False]})),
}

SD_CASES = {
    # SD 1.x shape: four levels, CrossAttn x3 + Down, heads given as attention_head_dim.
    "sd1": dict(dtype="F16", latent=(16, 16), tokens=77, cfg={
        "block_out_channels": [32, 32, 64, 64], "layers_per_block": 2, "cross_attention_dim": 32, "attention_head_dim": 8,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "in_channels": 4, "out_channels": 4, "norm_num_groups": 32, "sample_size": 16}),
    # SD 2.x style: linear projections, per-block head counts, upcast_attention, a wider context,
    # two transformer layers in the middle level.
    "sd2": dict(dtype="F16", latent=(8, 16), tokens=11, cfg={
        "block_out_channels": [32, 64, 64], "layers_per_block": 1, "cross_attention_dim": 48,
        "attention_head_dim": [2, 4, 8], "use_linear_projection": True, "upcast_attention": True,
        "transformer_layers_per_block": [1, 2, 1],
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "in_channels": 4, "out_channels": 4, "norm_num_groups": 32, "sample_size": 16}),
    # Inpainting: 9 input channels, per-block layers, fp32 weights.
    "inpaint": dict(dtype="F32", latent=(8, 8), tokens=6, cfg={
        "block_out_channels": [32, 64], "layers_per_block": [1, 2], "cross_attention_dim": 32, "attention_head_dim": 4,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "in_channels": 9, "out_channels": 4, "norm_num_groups": 32, "sample_size": 8}),
}

TIMESTEPS = [999.0, 32.0]  # per batch element, as a CFG batch at different steps would not be; tests the broadcast


def build_sd(cfg):
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(**{k: v for k, v in cfg.items() if not k.startswith("_")})


def write_case(folder, model, cfg, dtype, latent, tokens, seed):
    os.makedirs(folder, exist_ok=True)
    model.load_state_dict(det_state_dict(model, dtype), strict=True)
    model.eval()
    g = torch.Generator().manual_seed(seed)
    cin = cfg.get("in_channels", 4)
    ctx_dim = cfg["configurations"]["cross_attention_dim"] if "configurations" in cfg else cfg["cross_attention_dim"]
    sample = torch.randn(2, cin, *latent, generator=g)
    context = torch.randn(2, tokens, ctx_dim, generator=g)
    t = torch.tensor(TIMESTEPS, dtype=torch.float32)
    with torch.no_grad():
        out = model(sample, t, context)
        out = out if torch.is_tensor(out) else out.sample
    save_file({"sample": sample.contiguous(), "timesteps": t, "encoder_hidden_states": context.contiguous(),
               "output": out.contiguous()}, os.path.join(folder, "io.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    manifest = {"dtype": dtype, "tensors": [[k, list(v.shape)] for k, v in model.state_dict().items()]}
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f, separators=(",", ":"))
    n = sum(p.numel() for p in model.parameters())
    print(f"{folder}: {n:,} params, output {tuple(out.shape)} max|out| {out.abs().max():.3f}")


def tiny():
    for i, (name, case) in enumerate(NAS_CASES.items()):
        cfg = case["cfg"]
        write_case(os.path.join(FIX, "unet_nas", name), UNetNAS(cfg), cfg, case["dtype"], case["latent"], case["tokens"], 100 + i)
    for i, (name, case) in enumerate(SD_CASES.items()):
        cfg = dict(case["cfg"], _class_name="UNet2DConditionModel")
        write_case(os.path.join(FIX, "unet_sd", name), build_sd(cfg), cfg, case["dtype"], case["latent"], case["tokens"], 200 + i)


def randomize_full(model, seed):
    """Random weights scaled like the tiny ones (uniform, 1/sqrt(fan_in)), rounded to fp16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, p in model.named_parameters():
            u = torch.rand(p.shape, generator=g) * 2 - 1
            if p.dim() >= 2:
                v = u / float(np.prod(p.shape[1:])) ** 0.5
            elif k.endswith("weight"):
                v = 1 + 0.25 * u
            else:
                v = 0.125 * u
            p.copy_(v.half().float())


def full(which):
    """Full-size models from the published configs, random fp16 weights, batch 2 at a 32x32 latent."""
    for name in which:
        folder = os.path.join(FULL, f"unet_{name}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(SPEC, "flexible_unet.config.json" if name == "nas" else "sd15_unet.config.json")) as f:
            cfg = json.load(f)
        t0 = time.time()
        model = UNetNAS(cfg) if name == "nas" else build_sd(cfg)
        randomize_full(model, 7 if name == "nas" else 8)
        model.eval()
        n = sum(p.numel() for p in model.parameters())
        save_file({k: v.half().contiguous() for k, v in model.state_dict().items()},
                  os.path.join(folder, "diffusion_pytorch_model.safetensors"))
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        g = torch.Generator().manual_seed(9)
        sample = torch.randn(2, 4, 32, 32, generator=g)
        context = torch.randn(2, 77, 768, generator=g)
        t = torch.tensor(TIMESTEPS)
        with torch.no_grad():
            out = model(sample, t, context)
            out = out if torch.is_tensor(out) else out.sample
        save_file({"sample": sample, "timesteps": t, "encoder_hidden_states": context, "output": out.contiguous()},
                  os.path.join(folder, "io.safetensors"))
        print(f"{folder}: {n:,} params, {time.time() - t0:.0f} s, max|out| {out.abs().max():.3f}")
        del model


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", nargs="*", choices=["nas", "sd15"], help="write full-size data instead (default: both)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    if args.full is not None:
        full(args.full or ["nas", "sd15"])
    else:
        tiny()
