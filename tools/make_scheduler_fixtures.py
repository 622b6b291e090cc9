#!/usr/bin/env python3
"""Writes the scheduler and guidance fixtures under Fixtures/schedulers/ from diffusers 0.42.

Regenerate with:  $(tools/venv.sh) tools/make_scheduler_fixtures.py   (about 3 minutes;
--variants-only rewrites just variants.json and the small files)

Every denoising loop here is driven by a fake model whose output is a fixed function of the
(scaled) sample and the call index, so Swift can compute the same thing; ancestral/SDE noise comes
from a fixed pool handed out in draw order, which the Swift tests replay.

Each loop runs twice: as diffusers runs it, and once more with torch's float32 sqrt/exp/log/expm1,
numpy's float32 log and torch.linalg.solve replaced by exactly rounded versions (float64 then
rounded). torch's own versions are not exactly rounded (on an AVX2 machine torch.sqrt is an ulp
off for ~14% of inputs, via MKL) and differ between CPUs, and DeciDiffusion's zero-SNR schedule
turns such ulps into ~1e-5..1e-3 relative differences. The exact run ("_cr" keys, stored where it
differs) is what the Swift port must reproduce to 1e-5; the plain run bounds how close any port
can get to diffusers on a given machine.
"""
import contextlib
import json
import math
import os
import sys

import numpy as np
import torch

import diffusers
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler, LCMScheduler, LMSDiscreteScheduler,
                       PNDMScheduler, UniPCMultistepScheduler)
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "schedulers")
SHAPE = (2, 4, 4, 4)
COUNT = int(np.prod(SHAPE))
STEPS = [1, 2, 10, 30, 50]
IMG2IMG = [(10, 0.6), (30, 0.35)]
DDIM_ETA = 0.7

# name -> (class, config overrides, step kwargs). Names are the ones SchedulerName parses in Swift.
SCHEDULERS = {
    "ddim": (DDIMScheduler, {}, {}),
    "ddim_eta": (DDIMScheduler, {}, {"eta": DDIM_ETA}),
    "pndm": (PNDMScheduler, {}, {}),
    "ddpm": (DDPMScheduler, {}, {}),
    "euler": (EulerDiscreteScheduler, {}, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}, {}),
    "heun": (HeunDiscreteScheduler, {}, {}),
    "lms": (LMSDiscreteScheduler, {}, {}),
    "dpm++2m": (DPMSolverMultistepScheduler, {}, {}),
    "dpm++2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}, {}),
    "dpm++2m_sde": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++"}, {}),
    "dpm++2m_sde_karras": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True}, {}),
    "unipc": (UniPCMultistepScheduler, {}, {}),
    "lcm": (LCMScheduler, {}, {}),
}


# (scheduler, base config, config overrides, steps) for the variants fixture.
VARIANTS = [
    ("euler", "sd15", {"timestep_spacing": "leading", "use_karras_sigmas": True}, 10),
    ("euler", "sd15", {"final_sigmas_type": "sigma_min", "prediction_type": "v_prediction"}, 10),
    ("euler", "sd15", {"prediction_type": "sample", "timestep_spacing": "trailing"}, 10),
    ("euler_a", "sd15", {"timestep_spacing": "leading"}, 10),
    ("heun", "sd15", {"use_karras_sigmas": True}, 10),
    ("heun", "deci", {"prediction_type": "sample", "clip_sample": True}, 10),
    ("lms", "sd15", {"use_karras_sigmas": True}, 10),
    ("lms", "deci", {"prediction_type": "sample"}, 10),
    ("dpm++2m", "sd15", {"solver_order": 3}, 15),
    ("dpm++2m", "sd15", {"solver_order": 3, "prediction_type": "v_prediction"}, 10),
    ("dpm++2m", "sd15", {"solver_type": "heun"}, 10),
    ("dpm++2m", "sd15", {"algorithm_type": "dpmsolver", "final_sigmas_type": "sigma_min"}, 10),
    ("dpm++2m", "sd15", {"algorithm_type": "dpmsolver", "final_sigmas_type": "sigma_min", "solver_order": 3}, 10),
    ("dpm++2m", "sd15", {"algorithm_type": "sde-dpmsolver", "final_sigmas_type": "sigma_min", "solver_type": "heun"}, 10),
    ("dpm++2m", "sd15", {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}, 10),
    ("dpm++2m", "sd15", {"thresholding": True, "sample_max_value": 1.2, "prediction_type": "sample"}, 10),
    ("dpm++2m", "sd15", {"lambda_min_clipped": -2.5}, 10),
    ("dpm++2m", "sd15", {"lower_order_final": False, "final_sigmas_type": "sigma_min"}, 20),
    ("dpm++2m", "sd15", {"euler_at_final": True, "final_sigmas_type": "sigma_min", "timestep_spacing": "leading"}, 20),
    ("dpm++2m", "deci", {"timestep_spacing": "linspace", "use_karras_sigmas": True}, 10),
    ("unipc", "sd15", {"solver_order": 3}, 10),
    # bh1 and predict_x0=False need a nonzero final sigma: with "zero" diffusers computes inf * 0.
    ("unipc", "sd15", {"solver_type": "bh1", "prediction_type": "v_prediction", "final_sigmas_type": "sigma_min"}, 10),
    ("unipc", "sd15", {"use_karras_sigmas": True, "timestep_spacing": "leading"}, 10),
    ("unipc", "sd15", {"predict_x0": False, "prediction_type": "sample", "final_sigmas_type": "sigma_min"}, 10),
    ("unipc", "sd15", {"disable_corrector": [0, 3], "final_sigmas_type": "sigma_min"}, 10),
    ("ddpm", "sd15", {"variance_type": "fixed_small_log"}, 10),
    ("ddpm", "sd15", {"variance_type": "fixed_large", "clip_sample": True, "timestep_spacing": "linspace"}, 10),
    ("ddim", "sd15", {"clip_sample": True, "timestep_spacing": "linspace", "prediction_type": "sample"}, 10),
    ("ddim", "sd15", {"set_alpha_to_one": True, "beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02}, 10),
    ("ddim", "sd15", {"trained_betas": [0.0001 + 0.00002 * i for i in range(1000)]}, 10),
    ("pndm", "sd15", {"skip_prk_steps": False}, 10),
    ("pndm", "sd15", {"timestep_spacing": "linspace", "prediction_type": "v_prediction"}, 10),
    ("lcm", "sd15", {"original_inference_steps": 30, "timestep_scaling": 5.0}, 4),
    ("lcm", "deci", {"set_alpha_to_one": True, "clip_sample": True}, 8),
]


def f32s(values):
    """float32 values as their shortest decimal strings (kept as raw JSON numbers)."""
    return [Raw(str(np.float32(v))) if np.isfinite(v) else Raw("null") for v in np.asarray(values, dtype=np.float32).ravel()]


class Raw(str):
    pass


def dump(obj):
    if isinstance(obj, Raw):
        return str(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dump(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dump(v) for v in obj) + "]"
    return json.dumps(obj)


def write(name, obj):
    with open(os.path.join(ROOT, name), "w") as f:
        f.write(dump(obj) + "\n")


class NoisePool:
    """Stands in for torch.randn inside schedulers: consecutive, wrapping slices of a fixed pool."""

    def __init__(self, pool):
        self.pool = pool
        self.offset = 0
        self.counts = []

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        n = int(np.prod(shape))
        idx = (self.offset + np.arange(n)) % len(self.pool)
        self.offset += n
        self.counts.append(n)
        return torch.from_numpy(self.pool[idx].reshape(shape).copy()).to(dtype or torch.float32)


def patch_noise(pool):
    for mod in list(sys.modules.values()):
        if mod is not None and getattr(mod, "__name__", "").startswith("diffusers.schedulers.") and hasattr(mod, "randn_tensor"):
            mod.randn_tensor = pool


@contextlib.contextmanager
def exactly_rounded_math():
    """Swaps torch/numpy float32 transcendentals for float64-evaluated, float32-rounded ones."""
    saved = {}

    def swap(owner, name, fn):
        saved[(owner, name)] = getattr(owner, name)
        setattr(owner, name, fn)

    def via64(orig):
        def f(x, *args, **kwargs):
            if isinstance(x, torch.Tensor) and x.dtype == torch.float32:
                return orig(x.double(), *args, **kwargs).float()
            return orig(x, *args, **kwargs)
        return f

    orig_pow = torch.Tensor.__pow__
    orig_np_log = np.log

    def tensor_pow(self, exponent):
        if self.dtype == torch.float32 and isinstance(exponent, float) and exponent == 0.5:
            return torch.sqrt(self.double()).float()
        return orig_pow(self, exponent)

    def np_log(x, *args, **kwargs):
        if isinstance(x, np.ndarray) and x.dtype == np.float32 and not args and not kwargs:
            return orig_np_log(x.astype(np.float64)).astype(np.float32)
        return orig_np_log(x, *args, **kwargs)

    orig_solve = torch.linalg.solve
    for name in ("sqrt", "exp", "log", "expm1"):
        swap(torch, name, via64(getattr(torch, name)))
        swap(torch.Tensor, name, via64(getattr(torch.Tensor, name)))
    swap(torch.Tensor, "__pow__", tensor_pow)
    swap(np, "log", np_log)
    swap(torch.linalg, "solve", lambda a, b: orig_solve(a.double(), b.double()).float())
    try:
        yield
    finally:
        for (owner, name), fn in saved.items():
            setattr(owner, name, fn)


def model_coefficients(i):
    """Per-call coefficients of the fake model; exact float32 arithmetic that Swift repeats."""
    a = np.float32(0.9) - np.float32(i % 7) * np.float32(0.05)
    b = np.float32(0.2) + np.float32(i % 5) * np.float32(0.1)
    return a, b


def fake_model(x_in, i, base):
    a, b = model_coefficients(i)
    return x_in * torch.tensor(a) + base * torch.tensor(b)


def run_loop(sched, steps, step_kwargs, init_noise, base, pool_arr, strength=None, original=None, keep_pred=False):
    pool = NoisePool(pool_arr)
    patch_noise(pool)
    out = {}
    try:
        sched.set_timesteps(steps)
    except Exception as e:  # diffusers refuses some combinations (e.g. PRK warm-up with < 4 steps)
        return {"error": type(e).__name__}
    timesteps = sched.timesteps
    if strength is not None:
        init_timestep = min(int(steps * strength), steps)
        t_start = max(steps - init_timestep, 0)
        timesteps = sched.timesteps[t_start * sched.order:]
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(t_start * sched.order)
        x = sched.add_noise(original, init_noise, timesteps[:1])
        out["noised"] = f32s(x.numpy())
    else:
        # Text-to-image starts at index 0 as the SDXL pipeline makes explicit; the SD pipeline instead
        # looks the first timestep up, which skips a step (and then overruns) when it is repeated, as
        # Karras sigmas on a zero-SNR schedule make it.
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(0)
        out["init_noise_sigma"] = float(np.float32(sched.init_noise_sigma))
        x = init_noise * sched.init_noise_sigma
    out["timesteps"] = [float(t) for t in timesteps.numpy().astype(np.float64)]
    if hasattr(sched, "sigmas") and isinstance(sched.sigmas, torch.Tensor):
        out["sigmas"] = f32s(sched.sigmas.numpy())
    pred = None
    with np.errstate(all="ignore"):
        for i, t in enumerate(timesteps):
            x_in = sched.scale_model_input(x, t)
            model_out = fake_model(x_in, i, base)
            res = sched.step(model_out, t, x, **step_kwargs)
            x = res.prev_sample
            p = getattr(res, "pred_original_sample", None)
            if p is None:
                p = getattr(res, "denoised", None)
            pred = p
    finite = bool(torch.isfinite(x).all())
    out["finite"] = finite
    if finite:
        out["final"] = f32s(x.numpy())
        if keep_pred and pred is not None and bool(torch.isfinite(pred).all()):
            out["final_pred_original"] = f32s(pred.numpy())
    out["noise_draws"] = pool.counts
    return out


def exact_alphas_cumprod(config):
    with exactly_rounded_math():
        return f32s(DDIMScheduler.from_config(config).alphas_cumprod.numpy())


def main():
    os.makedirs(ROOT, exist_ok=True)
    torch.manual_seed(0)
    init_noise = torch.randn(SHAPE)
    base = torch.randn(SHAPE) * 0.5
    original = torch.randn(SHAPE) * 0.8
    pool = torch.randn(1031).numpy()
    configs = {}
    for key, fname in (("deci", "decidiffusion_scheduler_config.json"), ("sd15", "sd15_scheduler_config.json")):
        with open(os.path.join(ROOT, fname)) as f:
            configs[key] = json.load(f)

    common = {
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__,
        "shape": list(SHAPE),
        "ddim_eta": DDIM_ETA,
        "init_noise": f32s(init_noise.numpy()),
        "base": f32s(base.numpy()),
        "original": f32s(original.numpy()),
        "noise_pool": f32s(pool),
        "alphas_cumprod": {
            "deci": f32s(DDIMScheduler.from_config(configs["deci"]).alphas_cumprod.numpy()),
            "deci_cr": exact_alphas_cumprod(configs["deci"]),
            "sd15": f32s(DDIMScheduler.from_config(configs["sd15"]).alphas_cumprod.numpy()),
            "linear": f32s(DDIMScheduler().alphas_cumprod.numpy()),
        },
    }
    write("common.json", common)

    for name, (cls, overrides, step_kwargs) in SCHEDULERS.items():
        if "--variants-only" in sys.argv:
            break
        cases = []
        for cfg_key, cfg in configs.items():
            for pred in ("epsilon", "v_prediction"):
                runs = [(steps, None) for steps in STEPS] + IMG2IMG
                for steps, strength in runs:
                    case = {"config": cfg_key, "prediction_type": pred, "steps": steps}
                    if strength is not None:
                        case["strength"] = strength
                    args = (steps, step_kwargs, init_noise, base, pool, strength, original, steps == 10 and strength is None)
                    plain = run_loop(cls.from_config(cfg, prediction_type=pred, **overrides), *args)
                    with exactly_rounded_math():
                        exact = run_loop(cls.from_config(cfg, prediction_type=pred, **overrides), *args)
                    case.update(plain)
                    for key, value in exact.items():
                        if plain.get(key) != value:
                            case[key + "_cr"] = value
                    cases.append(case)
        write(f"{name}.json", {"scheduler": name, "cases": cases})
        print(name, len(cases), "cases", file=sys.stderr)

    # Options the main matrix does not reach: overrides merged into a base config, 10-20 steps.
    variants = []
    for name, base_key, overrides, steps in VARIANTS:
        cls, _, step_kwargs = SCHEDULERS[name]
        cfg = dict(configs[base_key], **overrides)
        case = {"scheduler": name, "config": base_key, "overrides": overrides, "steps": steps}
        args = (steps, step_kwargs, init_noise, base, pool, None, None, False)
        plain = run_loop(cls.from_config(cfg), *args)
        with exactly_rounded_math():
            exact = run_loop(cls.from_config(cfg), *args)
        case.update(plain)
        for key, value in exact.items():
            if plain.get(key) != value:
                case[key + "_cr"] = value
        variants.append(case)
    write("variants.json", {"cases": variants})

    # Guidance: classifier-free guidance then guidance rescale (phi), as StableDiffusionPipeline does it.
    g = torch.Generator().manual_seed(1)
    gshape = (2, 4, 8, 8)
    uncond = torch.randn(gshape, generator=g)
    cond = torch.randn(gshape, generator=g) * 1.3 + 0.1
    scale, phi = 7.5, 0.7
    cfg_out = uncond + scale * (cond - uncond)
    rescaled = rescale_noise_cfg(cfg_out, cond, guidance_rescale=phi)
    write("guidance.json", {
        "shape": list(gshape), "scale": scale, "phi": phi,
        "uncond": f32s(uncond.numpy()), "cond": f32s(cond.numpy()),
        "cfg": f32s(cfg_out.numpy()), "rescaled": f32s(rescaled.numpy()),
        "std_cond": f32s(cond.std(dim=[1, 2, 3]).numpy()), "std_cfg": f32s(cfg_out.std(dim=[1, 2, 3]).numpy()),
    })

    # Thresholding (dynamic, per image) through DDIM, which is where SD-style configs can switch it on.
    th = DDIMScheduler.from_config(configs["sd15"], thresholding=True, sample_max_value=2.5, dynamic_thresholding_ratio=0.9)
    th.set_timesteps(10)
    x = init_noise * 3.0
    out = fake_model(x, 0, base) * 4.0
    res = th.step(out, th.timesteps[0], x)
    write("thresholding.json", {
        "steps": 10, "sample_max_value": 2.5, "ratio": 0.9, "scale_sample": 3.0, "scale_output": 4.0,
        "prev_sample": f32s(res.prev_sample.numpy()), "pred_original": f32s(res.pred_original_sample.numpy()),
    })


if __name__ == "__main__":
    main()
