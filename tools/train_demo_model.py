#!/usr/bin/env python3
"""Trains the bundled demo model (Models/demo/): a tiny DeciDiffusion-layout text-to-image model for
64x64 pictures of coloured shapes, so `decidiffusion generate "a red circle on a blue background"`
works with no download.

    PY=$(tools/venv.sh)
    $PY tools/train_demo_model.py              # train (resumes where it stopped), export, evaluate
    $PY tools/train_demo_model.py --eval-only  # re-evaluate the committed model, rewrite Fixtures/demo/

The layout and classes are those of the official checkpoint: model_index.json (DeciDiffusionPipeline),
tokenizer/ (the real CLIP vocabulary, copied from Resources/clip-tokenizer), text_encoder/
(transformers CLIPTextModel), vae/ (diffusers AutoencoderKL), flexible_unet/ (U-Net-NAS
`configurations`, built with tools/unet_nas_reference.py, the parity tests' reference module) and
scheduler/ (DeciDiffusion's own DDIM config: cosine betas, zero terminal SNR, v-prediction,
trailing spacing). Weights are written as fp16 safetensors.

Training (PyTorch, CPU, seeded; data from tools/demo_shapes.py):
  1. VAE: a 3-block AutoencoderKL (64 px -> 16x16x4 latents) trained as an autoencoder
     (MSE + a small KL term) on 32 px crops, then briefly on whole pictures.
  2. The training pictures are encoded once (posterior mean and log-variance, cached).
  3. U-Net-NAS and the CLIP text encoder together: v-prediction MSE on the zero-SNR cosine schedule
     (alphas_cumprod from diffusers' DDIMScheduler with the shipped config), captions dropped to ""
     10% of the time so classifier-free guidance works; an EMA of the weights is exported.
  4. Export to Models/demo/ and an evaluation through diffusers' StableDiffusionPipeline (30 steps,
     guidance 7.5, rescale 0.7, as DeciDiffusion's pipeline) on tools/demo_shapes.EVAL_PROMPTS,
     checked with demo_shapes.judge; its images go to Fixtures/demo/diffusers/ so the Swift test can
     compare the engine with diffusers image for image.

Reproducible: every step draws its data and noise from generators seeded with (seed, phase, step),
so a run that is stopped and resumed gives the same weights as one that is not (with the same
--threads; thread count changes float summation order). Progress is saved every
--checkpoint-seconds under ~/.cache/decidiffusion/demo-train/ (a hash of the settings names the
folder, so changed settings start afresh). One thread by default: on a shared 2-core machine a
second OpenMP thread measured 6x slower, not faster.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import demo_shapes as ds  # noqa: E402
from unet_nas_reference import UNetNAS  # noqa: E402

SPEC = Path("/work/shared/spec")

# ---------------------------------------------------------------------------------------------
# Settings (changing any of them changes the cache folder's hash).

SETTINGS = {
    "seed": 20240611,
    "dataset_size": 4096,
    # VAE
    "vae": {
        "block_out_channels": [16, 32, 32],
        "norm_num_groups": 8,
        "layers_per_block": 1,
        "latent_channels": 4,
    },
    "vae_steps": 540,
    "vae_full_steps": 40,  # last steps on whole 64 px pictures (the rest on 32 px crops)
    "vae_batch": 16,
    "vae_lr": 2e-3,
    "vae_kl_weight": 1e-4,
    # Text encoder (transformers CLIPTextConfig)
    "text": {
        "vocab_size": 49408,
        "hidden_size": 48,
        "intermediate_size": 192,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "projection_dim": 48,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 1,
    },
    # U-Net-NAS: 16x16 latents -> 8 -> 4 -> 2, mid block back to 4, up blocks to 8 and 16.
    "unet_base": 32,
    "unet": {
        "sample_size": 16,
        "temb_dim": 128,
        "resnet_eps": 1e-05,
        "resnet_act_fn": "silu",
        "num_attention_heads": 4,
        "mix_block_in_forward": True,
        "down_blocks_in_channels": [32, 32, 32],
        "down_blocks_out_channels": [32, 32, 64],
        "down_blocks_num_resnets": [1, 1, 1],
        "down_blocks_num_attentions": [0, 1, 2],
        "add_downsample": [True, True, True],
        "add_upsample_mid_block": True,
        "mid_num_resnets": 2,
        "mid_num_attentions": 2,
        "prev_output_channels": [64, 64, 32],
        "up_blocks_num_resnets": [2, 2, 2],
        "up_blocks_num_attentions": [3, 1, 0],
        "add_upsample": [True, True, False],
    },
    "diff_steps": 3600,
    "diff_batch": 24,
    "diff_lr": 1e-3,
    "diff_warmup": 100,
    # Loss weight min(1, gamma / SNR): less effort on nearly clean latents (fine detail), full
    # weight from SNR gamma up to pure noise, where colours and layout are decided.
    "min_snr_gamma": 5.0,
    # Half the samples come from t >= 600, where the prompt decides colours and layout.
    "high_noise_fraction": 0.5,
    "high_noise_from": 600,
    # Initial std of the text encoder's token and position embeddings. transformers' 0.02 / 0.01
    # leave words that differ only by one token ("top left" / "bottom right") almost identical,
    # so the U-Net never learns to use them (measured: positions were ignored after 4000 steps).
    "token_embedding_std": 0.5,
    "position_embedding_std": 0.2,
    "caption_dropout": 0.1,
    "ema_decay": 0.997,
    # A second stage continues from the first stage's EMA weights with a fresh optimiser and a
    # lower peak rate (measured: after the first stage colours and backgrounds were right but
    # positions were still at chance, with the loss still falling).
    "stage2_steps": 6000,
    "stage2_lr": 5e-4,
}

# DeciDiffusion's pipeline defaults (the Swift engine's too).
STEPS, GUIDANCE, RESCALE = 30, 7.5, 0.7


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


VAE_KEYS = ["seed", "dataset_size", "vae", "vae_steps", "vae_full_steps", "vae_batch", "vae_lr", "vae_kl_weight"]


def settings_hash(threads, keys=None):
    """Names a cache folder after everything its contents depend on (the drawing code included)."""
    chosen = {k: SETTINGS[k] for k in (keys or SETTINGS)}
    blob = json.dumps({"settings": chosen, "threads": threads}, sort_keys=True).encode()
    blob += (HERE / "demo_shapes.py").read_bytes()
    return hashlib.sha256(blob).hexdigest()[:12]


def step_seed(phase, step):
    return (SETTINGS["seed"] * 1_000_003 + phase * 100_003 + step) % (2**63)


def cosine_lr(step, total, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def save_atomic(obj, path):
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Models


def make_vae():
    from diffusers import AutoencoderKL
    v = SETTINGS["vae"]
    n = len(v["block_out_channels"])
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * n,
                         up_block_types=["UpDecoderBlock2D"] * n, block_out_channels=v["block_out_channels"],
                         layers_per_block=v["layers_per_block"], act_fn="silu", latent_channels=v["latent_channels"],
                         norm_num_groups=v["norm_num_groups"], sample_size=ds.SIZE)


def vae_factor():
    return 2 ** (len(SETTINGS["vae"]["block_out_channels"]) - 1)


def make_text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel
    return CLIPTextModel(CLIPTextConfig(**SETTINGS["text"]))


def unet_config():
    blocks = dict(SETTINGS["unet"])
    blocks["cross_attention_dim"] = SETTINGS["text"]["hidden_size"]
    import diffusers
    return {
        "_class_name": "FlexibleUNet2DConditionModel",
        "_diffusers_version": diffusers.__version__,
        "in_channels": SETTINGS["vae"]["latent_channels"],
        "out_channels": SETTINGS["vae"]["latent_channels"],
        "block_out_channels": [SETTINGS["unet_base"]],
        "norm_num_groups": 32,
        "sample_size": blocks["sample_size"],
        "configurations": blocks,
    }


def make_scheduler():
    from diffusers import DDIMScheduler
    return DDIMScheduler.from_config(json.loads((SPEC / "scheduler_config.json").read_text()))


def load_tokenizer():
    from transformers import CLIPTokenizer
    return CLIPTokenizer.from_pretrained(str(ROOT / "Resources" / "clip-tokenizer"))


# ---------------------------------------------------------------------------------------------
# Data


def build_dataset(cache):
    path = cache / "dataset.npz"
    if path.exists():
        d = np.load(path, allow_pickle=False)
        return d["images"], json.loads(str(d["attrs"]))
    log(f"drawing {SETTINGS['dataset_size']} training pictures")
    rng = np.random.default_rng([SETTINGS["seed"], 1])
    attrs = [ds.sample_attributes(rng) for _ in range(SETTINGS["dataset_size"])]
    images = np.stack([ds.draw(a, rng) for a in attrs])
    np.savez(path, images=images, attrs=json.dumps(attrs))
    return images, attrs


def to_pixels(batch_uint8):
    """uint8 [n, h, w, 3] -> float [-1, 1] NCHW."""
    return torch.from_numpy(batch_uint8).permute(0, 3, 1, 2).float().div(127.5).sub(1)


# ---------------------------------------------------------------------------------------------
# Phase 1: VAE


def train_vae(cache, images, ckpt_seconds):
    final = cache / "vae_final.pt"
    vae = make_vae()
    # Start with a narrow posterior (std e^-3): with diffusers' init (std 1) the decoder first sees
    # mostly noise and learns far more slowly. The KL term still keeps the std from collapsing.
    c = SETTINGS["vae"]["latent_channels"]
    with torch.no_grad():
        vae.quant_conv.bias[c:] -= 6.0
    if final.exists():
        vae.load_state_dict(torch.load(final))
        return vae
    steps, full_from = SETTINGS["vae_steps"], SETTINGS["vae_steps"] - SETTINGS["vae_full_steps"]
    opt = torch.optim.AdamW(vae.parameters(), lr=SETTINGS["vae_lr"], weight_decay=0.0, fused=True)
    ck = cache / "vae_ckpt.pt"
    start = 0
    if ck.exists():
        state = torch.load(ck)
        vae.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        log(f"VAE: resuming at step {start}")
    log(f"VAE: {sum(p.numel() for p in vae.parameters()):,} parameters, steps {start}..{steps}")
    t_last, t0 = time.time(), time.time()
    for step in range(start, steps):
        rng = np.random.default_rng([SETTINGS["seed"], 2, step])
        idx = rng.integers(len(images), size=SETTINGS["vae_batch"])
        x = to_pixels(images[idx])
        if step < full_from:  # 32 px crops aligned to the latent grid: 4x cheaper
            f = vae_factor()
            oy, ox = rng.integers(0, 32 // f + 1, size=2) * f
            x = x[:, :, oy:oy + 32, ox:ox + 32]
        g = torch.Generator().manual_seed(step_seed(2, step))
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, SETTINGS["vae_lr"], 30)
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        rec = vae.decode(z).sample
        mse = F.mse_loss(rec, x)
        kl = post.kl().mean() / z[0].numel()
        loss = mse + F.l1_loss(rec, x) + SETTINGS["vae_kl_weight"] * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            rate = (step + 1 - start) / (time.time() - t0)
            log(f"VAE step {step}/{steps} mse {mse.item():.5f} kl/elem {kl.item():.3f} ({rate:.2f} steps/s)")
        if time.time() - t_last > ckpt_seconds:
            save_atomic({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step + 1}, ck)
            t_last = time.time()
    save_atomic(vae.state_dict(), final)
    return vae


# ---------------------------------------------------------------------------------------------
# Phase 2: latents


@torch.no_grad()
def encode_dataset(cache, vae, images):
    path = cache / "latents.pt"
    if path.exists():
        return torch.load(path)
    log("encoding the training pictures")
    vae.eval()
    means, logvars = [], []
    for i in range(0, len(images), 64):
        post = vae.encode(to_pixels(images[i:i + 64])).latent_dist
        means.append(post.mean)
        logvars.append(post.logvar)
    mean, logvar = torch.cat(means), torch.cat(logvars)
    g = torch.Generator().manual_seed(step_seed(3, 0))
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)
    scaling = float(f"{1.0 / z.std().item():.5g}")
    rec = vae.decode(mean[:256]).sample
    err = F.mse_loss(rec, to_pixels(images[:256])).item()
    log(f"latents: std {z.std().item():.4f} -> scaling_factor {scaling}; mean-latent reconstruction MSE {err:.5f}")
    out = {"mean": mean, "logvar": logvar, "scaling_factor": scaling, "recon_mse": err}
    save_atomic(out, path)
    return out


# ---------------------------------------------------------------------------------------------
# Phase 3: U-Net-NAS + text encoder


class Tokens:
    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.cache = {}

    def __call__(self, texts):
        ids = []
        for t in texts:
            if t not in self.cache:
                self.cache[t] = self.tok(t, padding="max_length", max_length=self.tok.model_max_length,
                                         truncation=True).input_ids
            ids.append(self.cache[t])
        return torch.tensor(ids, dtype=torch.long)


def train_diffusion(cache, latents, attrs, ckpt_seconds, init=None, steps=None, lr=None, phase=4):
    """One training stage. `init` (a stage's final state) starts from earlier weights; without it
    the text encoder's embeddings get the wider initialisation described in SETTINGS."""
    steps = steps or SETTINGS["diff_steps"]
    lr = lr or SETTINGS["diff_lr"]
    final = cache / "diffusion_final.pt"
    unet, text = UNetNAS(unet_config()), make_text_encoder()
    ema_unet, ema_text = UNetNAS(unet_config()), make_text_encoder()
    if final.exists():
        state = torch.load(final)
        ema_unet.load_state_dict(state["ema_unet"])
        ema_text.load_state_dict(state["ema_text"])
        return ema_unet, ema_text
    if init is not None:
        unet.load_state_dict(init["ema_unet"])
        text.load_state_dict(init["ema_text"])
    else:
        g = torch.Generator().manual_seed(step_seed(5, 0))
        with torch.no_grad():
            for name, p in text.named_parameters():
                if name.endswith("token_embedding.weight"):
                    p.copy_(torch.randn(p.shape, generator=g) * SETTINGS["token_embedding_std"])
                elif name.endswith("position_embedding.weight"):
                    p.copy_(torch.randn(p.shape, generator=g) * SETTINGS["position_embedding_std"])
    ema_unet.load_state_dict(unet.state_dict())
    ema_text.load_state_dict(text.state_dict())
    params = list(unet.parameters()) + list(text.parameters())
    ema_params = list(ema_unet.parameters()) + list(ema_text.parameters())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.01, fused=True)
    ck = cache / "diffusion_ckpt.pt"
    start = 0
    if ck.exists():
        state = torch.load(ck)
        unet.load_state_dict(state["unet"])
        text.load_state_dict(state["text"])
        ema_unet.load_state_dict(state["ema_unet"])
        ema_text.load_state_dict(state["ema_text"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        log(f"diffusion: resuming at step {start}")
    log(f"diffusion: U-Net-NAS {sum(p.numel() for p in unet.parameters()):,} and text encoder "
        f"{sum(p.numel() for p in text.parameters()):,} parameters, steps {start}..{steps}")
    sched = make_scheduler()
    tokens = Tokens(load_tokenizer())
    mean, logvar, scale = latents["mean"], latents["logvar"], latents["scaling_factor"]
    std = torch.exp(0.5 * logvar)
    B = SETTINGS["diff_batch"]
    T = sched.config.num_train_timesteps
    ac = sched.alphas_cumprod.double()
    snr = ac / (1 - ac).clamp_min(1e-20)
    weight = torch.clamp(SETTINGS["min_snr_gamma"] / snr.clamp_min(1e-20), max=1.0).float()
    t_last, t0, avg = time.time(), time.time(), None
    unet.train()
    text.train()
    for step in range(start, steps):
        rng = np.random.default_rng([SETTINGS["seed"], phase, step])
        idx = rng.integers(len(attrs), size=B)
        captions = ["" if rng.random() < SETTINGS["caption_dropout"] else ds.caption(attrs[i], rng) for i in idx]
        g = torch.Generator().manual_seed(step_seed(phase, step))
        idx_t = torch.from_numpy(idx)
        z = (mean[idx_t] + std[idx_t] * torch.randn(mean[idx_t].shape, generator=g)) * scale
        noise = torch.randn(z.shape, generator=g)
        t = torch.randint(0, T, (B,), generator=g)
        high = torch.rand(B, generator=g) < SETTINGS["high_noise_fraction"]
        t = torch.where(high, torch.randint(SETTINGS["high_noise_from"], T, (B,), generator=g), t)
        x_t = sched.add_noise(z, noise, t)
        target = sched.get_velocity(z, noise, t)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, SETTINGS["diff_warmup"])
        ctx = text(tokens(captions)).last_hidden_state
        pred = unet(x_t, t, ctx)
        loss = (weight[t] * (pred - target).pow(2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(SETTINGS["ema_decay"], (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - decay)
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 25 == 0 or step == steps - 1 or os.environ.get("DEMO_DEBUG"):
            rate = (step + 1 - start) / (time.time() - t0)
            eta = (steps - step - 1) / max(rate, 1e-9) / 60
            log(f"diffusion (phase {phase}) step {step}/{steps} loss {loss.item():.4f} (avg {avg:.4f}) {rate:.2f} steps/s, ~{eta:.1f} min left")
        if time.time() - t_last > ckpt_seconds:
            save_atomic({"unet": unet.state_dict(), "text": text.state_dict(), "ema_unet": ema_unet.state_dict(),
                         "ema_text": ema_text.state_dict(), "opt": opt.state_dict(), "step": step + 1}, ck)
            t_last = time.time()
    save_atomic({"ema_unet": ema_unet.state_dict(), "ema_text": ema_text.state_dict()}, final)
    return ema_unet, ema_text


# ---------------------------------------------------------------------------------------------
# Phase 4: export in the official layout


def fp16_state(module):
    return {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}


def export(out, vae, scaling, unet, text):
    from safetensors.torch import save_file
    import diffusers
    if out.exists():
        keep_examples = out / "examples"
        for child in out.iterdir():
            if child != keep_examples:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    version = diffusers.__version__
    (out / "model_index.json").write_text(json.dumps({
        "_class_name": "DeciDiffusionPipeline",
        "_diffusers_version": version,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "flexible_unet": ["diffusers", "FlexibleUNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }, indent=2) + "\n")
    tok = out / "tokenizer"
    tok.mkdir()
    for f in (ROOT / "Resources" / "clip-tokenizer").iterdir():
        shutil.copyfile(f, tok / f.name)
    sch = out / "scheduler"
    sch.mkdir()
    shutil.copyfile(SPEC / "scheduler_config.json", sch / "scheduler_config.json")

    te = out / "text_encoder"
    te.mkdir()
    cfg = text.config.to_dict()
    cfg.update({"architectures": ["CLIPTextModel"], "torch_dtype": "float16"})
    cfg.pop("dtype", None)
    (te / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    # Key names as in the published text encoders (transformers 4 layout: `text_model.` prefix,
    # no position_ids buffer); transformers 5 reads them too.
    sd = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in fp16_state(text).items()}
    sd.pop("text_model.embeddings.position_ids", None)
    save_file(sd, str(te / "model.safetensors"), metadata={"format": "pt"})

    va = out / "vae"
    va.mkdir()
    vcfg = dict(vae.config)
    vcfg = {k: v for k, v in vcfg.items() if not k.startswith("_")}
    vcfg.update({"scaling_factor": scaling, "sample_size": ds.SIZE})
    (va / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", "_diffusers_version": version, **vcfg},
                                               indent=2, sort_keys=False) + "\n")
    save_file(fp16_state(vae), str(va / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})

    fu = out / "flexible_unet"
    fu.mkdir()
    (fu / "config.json").write_text(json.dumps(unet_config(), indent=2) + "\n")
    save_file(fp16_state(unet), str(fu / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    for f in out.rglob("*.safetensors"):
        f.chmod(0o644)
    check_export(out, vae, unet, text)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and "examples" not in f.parts)
    log(f"exported {out} ({total / 1e6:.2f} MB)")


@torch.no_grad()
def check_export(out, vae, unet, text):
    """Reloads each component with its library's own loader and compares it with the trained module
    rounded to fp16, so a missing or misnamed tensor cannot pass unnoticed."""
    import copy
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file
    from transformers import CLIPTextModel
    def rounded(m):
        m = copy.deepcopy(m)
        for p in m.parameters():
            p.copy_(p.half().float())
        return m.eval()
    ids = load_tokenizer()(["a red circle on a blue background"], padding="max_length", max_length=77,
                           return_tensors="pt").input_ids
    te = CLIPTextModel.from_pretrained(str(out / "text_encoder"), dtype=torch.float32).eval()
    d = (te(ids).last_hidden_state - rounded(text)(ids).last_hidden_state).abs().max().item()
    assert d < 1e-4, f"text encoder reloads differently (max diff {d})"
    va = AutoencoderKL.from_pretrained(str(out / "vae"), torch_dtype=torch.float32).eval()
    z = torch.randn(1, SETTINGS["vae"]["latent_channels"], 16, 16, generator=torch.Generator().manual_seed(0))
    d = (va.decode(z).sample - rounded(vae).decode(z).sample).abs().max().item()
    assert d < 1e-4, f"VAE reloads differently (max diff {d})"
    cfg = json.loads((out / "flexible_unet" / "config.json").read_text())
    nas = UNetNAS(cfg)
    nas.load_state_dict({k: v.float() for k, v in load_file(str(out / "flexible_unet" / "diffusion_pytorch_model.safetensors")).items()},
                        strict=True)
    ctx = torch.randn(1, 77, SETTINGS["text"]["hidden_size"], generator=torch.Generator().manual_seed(1))
    d = (nas.eval()(z, torch.tensor([500]), ctx) - rounded(unet)(z, torch.tensor([500]), ctx)).abs().max().item()
    assert d < 1e-4, f"U-Net-NAS reloads differently (max diff {d})"


# ---------------------------------------------------------------------------------------------
# Phase 5: evaluation with diffusers' pipeline over the exported files


class NASForPipeline(torch.nn.Module):
    """Lets StableDiffusionPipeline call the U-Net-NAS as it calls a UNet2DConditionModel."""

    def __init__(self, nas, config):
        super().__init__()
        from diffusers.configuration_utils import FrozenDict
        self.nas = nas
        self.config = FrozenDict({"in_channels": config["in_channels"], "sample_size": config["sample_size"],
                                  "time_cond_proj_dim": None})

    @property
    def dtype(self):
        return next(self.parameters()).dtype

    @property
    def device(self):
        return next(self.parameters()).device

    def forward(self, sample, timestep, encoder_hidden_states, return_dict=False, **_):
        t = torch.as_tensor(timestep).reshape(-1)
        return (self.nas(sample, t, encoder_hidden_states),)


def load_pipeline(folder):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline
    from safetensors.torch import load_file
    from transformers import CLIPTextModel, CLIPTokenizer
    cfg = json.loads((folder / "flexible_unet" / "config.json").read_text())
    nas = UNetNAS(cfg)
    sd = {k: v.float() for k, v in load_file(str(folder / "flexible_unet" / "diffusion_pytorch_model.safetensors")).items()}
    nas.load_state_dict(sd, strict=True)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(str(folder / "vae"), torch_dtype=torch.float32),
        text_encoder=CLIPTextModel.from_pretrained(str(folder / "text_encoder"), dtype=torch.float32),
        tokenizer=CLIPTokenizer.from_pretrained(str(folder / "tokenizer")),
        unet=NASForPipeline(nas.eval(), cfg),
        scheduler=DDIMScheduler.from_pretrained(str(folder / "scheduler")),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def generate(pipe, prompts, seeds, steps=STEPS):
    images = []
    for i in range(0, len(prompts), 8):
        gens = [torch.Generator().manual_seed(s) for s in seeds[i:i + 8]]
        out = pipe(prompts[i:i + 8], generator=gens, num_inference_steps=steps, guidance_scale=GUIDANCE,
                   guidance_rescale=RESCALE, output_type="pil")
        images += [np.array(im) for im in out.images]
    return images


def evaluate(folder, fixtures=None, grid_path=None):
    pipe = load_pipeline(folder)
    prompts = ds.EVAL_PROMPTS
    seeds = [ds.EVAL_SEED_BASE + i for i in range(len(prompts))]
    t0 = time.time()
    images = generate(pipe, prompts, seeds)
    log(f"generated {len(images)} pictures in {time.time() - t0:.1f} s")
    passed, per_check = 0, {}
    for i, (img, p) in enumerate(zip(images, prompts)):
        ok, d = ds.judge(img, p)
        passed += ok
        for k, v in d["checks"].items():
            per_check.setdefault(k, []).append(v)
        held = (d["want"]["colour"], d["want"]["shape"], d["want"]["background"]) in ds.HELD_OUT
        log(f"  {'ok  ' if ok else 'FAIL'} {'(held out) ' if held else ''}{p!r}: got {d['got']}")
    acc = passed / len(prompts)
    log(f"accuracy {passed}/{len(prompts)} = {acc:.0%}; " +
        ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in per_check.items()))
    from PIL import Image
    if grid_path:
        rows = [np.concatenate(images[r * 6:(r + 1) * 6], 1) for r in range(len(images) // 6)]
        Image.fromarray(np.concatenate(rows, 0)).save(grid_path)
    if fixtures:
        fixtures.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            Image.fromarray(img).save(fixtures / f"eval_{i:02d}.png")
        (fixtures / "README.md").write_text(
            "Pictures made by diffusers' StableDiffusionPipeline from Models/demo (f32; 30 steps, guidance 7.5,\n"
            "rescale 0.7; prompt i of tools/demo_shapes.EVAL_PROMPTS with seed 1000 + i). The Swift demo test\n"
            "compares the engine's output with them. Regenerate: `$(tools/venv.sh) tools/train_demo_model.py --eval-only`.\n"
            f"diffusers judged {passed}/{len(prompts)} correct.\n")
    return acc, images


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "Models" / "demo")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "decidiffusion" / "demo-train")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint-seconds", type=float, default=120)
    ap.add_argument("--eval-only", action="store_true", help="evaluate --out as it is and rewrite Fixtures/demo/")
    ap.add_argument("--fixtures", type=Path, default=ROOT / "Fixtures" / "demo" / "diffusers")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SETTINGS["seed"])
    torch.use_deterministic_algorithms(True, warn_only=True)

    if args.eval_only:
        evaluate(args.out, fixtures=args.fixtures)
        return
    # The VAE phase has its own folder so that changing only the diffusion settings reuses it.
    vae_cache = args.cache / ("vae-" + settings_hash(args.threads, VAE_KEYS))
    stage1_keys = [k for k in SETTINGS if not k.startswith("stage2_")]
    cache1 = args.cache / ("all-" + settings_hash(args.threads, stage1_keys))
    cache = args.cache / ("s2-" + settings_hash(args.threads))
    for c in (vae_cache, cache1, cache):
        c.mkdir(parents=True, exist_ok=True)
    log(f"cache {vae_cache}, {cache1} and {cache}")
    t0 = time.time()
    images, attrs = build_dataset(vae_cache)
    torch.manual_seed(step_seed(0, 0))
    vae = train_vae(vae_cache, images, args.checkpoint_seconds)
    latents = encode_dataset(vae_cache, vae, images)
    torch.manual_seed(step_seed(0, 1))
    unet, text = train_diffusion(cache1, latents, attrs, args.checkpoint_seconds)
    init = {"ema_unet": unet.state_dict(), "ema_text": text.state_dict()}
    unet, text = train_diffusion(cache, latents, attrs, args.checkpoint_seconds, init=init, steps=SETTINGS["stage2_steps"],
                                 lr=SETTINGS["stage2_lr"], phase=6)
    log(f"training done in {(time.time() - t0) / 60:.1f} min this run")
    export(args.out, vae, latents["scaling_factor"], unet, text)
    evaluate(args.out, fixtures=args.fixtures, grid_path=cache / "eval_grid.png")


if __name__ == "__main__":
    main()
