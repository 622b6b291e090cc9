#!/usr/bin/env python3
"""Writes the AutoencoderKL (VAE) fixtures with diffusers as the reference.

Regenerate with:  PY=$(tools/venv.sh); $PY tools/make_vae_fixtures.py
Full-size (opt-in, not committed):  $PY tools/make_vae_fixtures.py --full
    writes ~/.cache/decidiffusion/full/vae/ (override with DECI_FULL_DIR): the Stable Diffusion VAE
    shape (83,653,863 parameters) with random weights, fp32 safetensors, and reference.safetensors
    with a 32x32-latent (256 px) decode. The Swift test reads it when DECI_FULL=1.

Committed files (Fixtures/models/vae/), all tensors NCHW float32 unless noted:
  tiny/            config.json + diffusion_pytorch_model.safetensors (fp16): block_out_channels
                   [16, 32, 32], layers_per_block 1, norm_num_groups 8, latent 4, sample_size 32.
                   All parameters are fp16-representable, so the f32 reference is exact for them.
  legacy/          config.json + diffusion_pytorch_model.safetensors (fp32) of a second tiny VAE
                   ([8, 16], groups 4, sample_size 16) whose mid-block attention tensors carry the
                   pre-0.14 names (query/key/value/proj_attn) and 1x1-conv shapes [c, c, 1, 1], as
                   in converted original-LDM checkpoints.
  reference.safetensors
      decode.latents [2,4,16,8] -> decode.output          vae.decode(z) (no scaling)
      decode_latents.output                               vae.decode(z / scaling_factor)
      encode.images [2,3,64,32] -> encode.mean/.logvar/.std   vae.encode(x).latent_dist
      encode.noise -> encode.sample                       latent_dist.sample(generator) and its noise
      encode_latents.output                               sample * scaling_factor
      tiled.latents [1,4,20,12] -> tiled.output           decode with vae.enable_tiling() (tile 8 latent / 32 px)
      tiled_encode.images [1,3,80,48] -> tiled_encode.mean/.logvar   encode with tiling (tile 32 px)
      legacy.latents [1,4,8,8] -> legacy.output; legacy.images [1,3,16,16] -> legacy.mean
"""
import json
import os
import sys
import tempfile

import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Fixtures", "models", "vae")


def make_vae(block_out_channels, layers_per_block, groups, sample_size, seed):
    torch.manual_seed(seed)
    n = len(block_out_channels)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * n,
                        up_block_types=["UpDecoderBlock2D"] * n, block_out_channels=block_out_channels,
                        layers_per_block=layers_per_block, norm_num_groups=groups, latent_channels=4,
                        sample_size=sample_size)
    # Default init leaves GroupNorm affine at (1, 0); perturb it so a swapped or ignored scale/shift
    # shows up.
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if "norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif "norm" in name and name.endswith(".bias"):
                p.copy_(0.2 * torch.randn_like(p))
    return vae.eval()


def nchw(t):
    return t.detach().float().contiguous()


def legacy_state_dict(sd):
    """Renames the mid-block attention tensors to the pre-0.14 names with 1x1-conv shapes."""
    out = {}
    names = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    for k, v in sd.items():
        nk = k
        if ".attentions." in k:
            for new, old in names.items():
                if f".{new}." in k:
                    nk = k.replace(f".{new}.", f".{old}.")
                    if k.endswith(".weight"):
                        v = v.reshape(*v.shape, 1, 1)
        out[nk] = v.contiguous()
    return out


def tiny():
    os.makedirs(OUT, exist_ok=True)
    ref = {}

    vae = make_vae([16, 32, 32], 1, 8, 32, seed=0)
    with torch.no_grad():
        for p in vae.parameters():
            p.copy_(p.half().float())
    tiny_dir = os.path.join(OUT, "tiny")
    vae.to(torch.float16).save_pretrained(tiny_dir, safe_serialization=True)
    vae.to(torch.float32)
    cfg = vae.config
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        z = torch.randn(2, 4, 16, 8, generator=g)
        ref["decode.latents"] = z
        ref["decode.output"] = nchw(vae.decode(z).sample)
        ref["decode_latents.output"] = nchw(vae.decode(z / cfg.scaling_factor).sample)

        x = torch.rand(2, 3, 64, 32, generator=g) * 2 - 1
        ref["encode.images"] = x
        dist = vae.encode(x).latent_dist
        ref["encode.mean"] = nchw(dist.mean)
        ref["encode.logvar"] = nchw(dist.logvar)
        ref["encode.std"] = nchw(dist.std)
        sample = dist.sample(generator=torch.Generator().manual_seed(7))
        ref["encode.noise"] = torch.randn(dist.mean.shape, generator=torch.Generator().manual_seed(7))
        ref["encode.sample"] = nchw(sample)
        ref["encode_latents.output"] = nchw(sample * cfg.scaling_factor)

        vae.enable_tiling()
        zt = torch.randn(1, 4, 20, 12, generator=g)
        ref["tiled.latents"] = zt
        tiled = vae.decode(zt).sample
        ref["tiled.output"] = nchw(tiled)
        xt = torch.rand(1, 3, 80, 48, generator=g) * 2 - 1
        ref["tiled_encode.images"] = xt
        tdist = vae.encode(xt).latent_dist
        ref["tiled_encode.mean"] = nchw(tdist.mean)
        ref["tiled_encode.logvar"] = nchw(tdist.logvar)
        vae.disable_tiling()
        untiled = vae.decode(zt).sample
        d = (tiled - untiled).abs()
        print(f"diffusers tiled vs untiled decode (tiny, {list(zt.shape)}): max|diff|/max|ref| "
              f"{(d.max() / untiled.abs().max()).item():.3e}, mean|diff|/mean|ref| {(d.mean() / untiled.abs().mean()).item():.3e}")

    # A legacy-named checkpoint of a second, smaller VAE.
    old = make_vae([8, 16], 1, 4, 16, seed=2)
    legacy_dir = os.path.join(OUT, "legacy")
    os.makedirs(legacy_dir, exist_ok=True)
    old.save_config(legacy_dir)
    sd = {k: v.detach().float() for k, v in old.state_dict().items()}
    save_file(legacy_state_dict(sd), os.path.join(legacy_dir, "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    # diffusers itself maps the old names (without the conv shapes, which only its single-file
    # converter handles): check the names are the ones it knows.
    with tempfile.TemporaryDirectory() as tmp:
        old.save_config(tmp)
        renamed = {k: (v.reshape(v.shape[0], v.shape[1]) if v.dim() == 4 and ".attentions." in k else v)
                   for k, v in legacy_state_dict(sd).items()}
        save_file(renamed, os.path.join(tmp, "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
        reloaded = AutoencoderKL.from_pretrained(tmp).eval()
        for k, v in reloaded.state_dict().items():
            assert torch.equal(v, sd[k]), f"diffusers did not map the legacy name of {k}"
    with torch.no_grad():
        zl = torch.randn(1, 4, 8, 8, generator=g)
        ref["legacy.latents"] = zl
        ref["legacy.output"] = nchw(old.decode(zl).sample)
        xl = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
        ref["legacy.images"] = xl
        ref["legacy.mean"] = nchw(old.encode(xl).latent_dist.mean)

    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(OUT, "reference.safetensors"))
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1024:.0f} KiB); tiny VAE has {sum(p.numel() for p in vae.parameters())} parameters")


def full():
    out = os.environ.get("DECI_FULL_DIR", os.path.expanduser("~/.cache/decidiffusion/full/vae"))
    os.makedirs(out, exist_ok=True)
    vae = make_vae([128, 256, 512, 512], 2, 32, 512, seed=3)
    n = sum(p.numel() for p in vae.parameters())
    assert n == 83_653_863, n
    vae.save_pretrained(out, safe_serialization=True)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        z = torch.randn(1, 4, 32, 32, generator=g)
        y = vae.decode(z).sample
    save_file({"decode.latents": z, "decode.output": nchw(y)}, os.path.join(out, "reference.safetensors"))
    print(f"wrote {out}: {n} parameters, decode {list(z.shape)} -> {list(y.shape)}")


if __name__ == "__main__":
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if "--full" in sys.argv:
        full()
    else:
        tiny()
