#!/usr/bin/env python3
"""Writes the LoRA parity fixtures (Fixtures/lora/): random-weight LoRA files in the formats that
circulate, for the deci (U-Net-NAS) and sd checkpoints of Fixtures/pipelines, and the images the
reference makes with them merged.

Regenerate with:  PY=$(tools/venv.sh); $PY tools/make_lora_fixtures.py

Files (<name>.safetensors):
  deci_kohya    kohya-ss names (`lora_unet_` / `lora_te_` + the module path with dots as
                underscores; U-Net-NAS paths hold underscores themselves, e.g. `modules_list`),
                lora_down / lora_up / alpha = rank / 2, fp16; LoCon 3x3 convolutions, 1x1 convs,
                linears, the text encoder's attention and MLP.
  deci_peft     diffusers / PEFT names (`unet.` / `text_encoder.` + path, lora_A / lora_B), fp32,
                alpha from `lora_adapter_metadata` (`unet.lora_alpha` 8 for rank 4).
  sd_kohya      kohya names of the diffusers SD UNet, fp16, alpha = rank / 2.
  sd_peft       diffusers / PEFT names for the SD UNet and text encoder.
Reference: U-Net-NAS has no diffusers loader, so PEFT itself (`inject_adapter_in_model`, the
adapter weights set from the file, `merge`) merges into the U-Net-NAS reference and the CLIP text
encoder; for SD, diffusers' `load_lora_weights` + `set_adapters` + `fuse_lora`. Each case of
cases.json (LoRA files and multipliers, one request) has expected/<case>.safetensors `images`
(float32 [n, h, w, 3], diffusers' StableDiffusionPipeline, output_type "np").
"""
import json
import os
import re
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_pipeline_fixtures as mpf  # noqa: E402

ROOT = os.path.join(HERE, "..")
OUT = os.path.join(ROOT, "Fixtures", "lora")
RANK = 4

UNET_TARGETS = re.compile(r"(attn[12]\.to_(q|k|v|out\.0)|proj_in|proj_out|ff\.net\.(0\.proj|2)|conv1|conv2|conv_shortcut|"
                          r"time_emb_proj|downsamplers\.0\.conv|upsamplers\.0\.conv)$")
TE_TARGETS = re.compile(r"(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])$")


def targets(model, pattern, every=1):
    """(path, weight shape) of the Linear / Conv2d modules whose path matches, every `every`-th."""
    found = [(n, tuple(m.weight.shape)) for n, m in model.named_modules()
             if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and pattern.search(n)]
    return found[::every]


def random_factors(gen, shape):
    out, cin = shape[0], shape[1]
    k = shape[2:] if len(shape) == 4 else ()
    down = torch.randn((RANK, cin) + tuple(k), generator=gen) / np.sqrt(cin * int(np.prod(k or (1,))))
    up = torch.randn((out, RANK) + ((1, 1) if k else ()), generator=gen) * 0.5 / np.sqrt(RANK)
    return down, up


def make_lora(seed, unet_targets, te_targets, style, dtype):
    """{key: tensor} of one LoRA file and {(component, path): (down, up, alpha)} for the reference."""
    gen = torch.Generator().manual_seed(seed)
    tensors, modules = {}, {}
    for component, found in [("unet", unet_targets), ("text_encoder", te_targets)]:
        for path, shape in found:
            down, up = random_factors(gen, shape)
            if dtype == "F16":
                down, up = down.half(), up.half()
            alpha = RANK / 2 if style == "kohya" else 8.0
            if style == "kohya":
                name = ("lora_unet_" if component == "unet" else "lora_te_") + path.replace(".", "_")
                tensors[name + ".lora_down.weight"] = down
                tensors[name + ".lora_up.weight"] = up
                tensors[name + ".alpha"] = torch.tensor(alpha, dtype=down.dtype)
            else:
                name = f"{component}.{path}"
                tensors[name + ".lora_A.weight"] = down
                tensors[name + ".lora_B.weight"] = up
            modules[(component, path)] = (down.float(), up.float(), alpha)
    return tensors, modules


def te_path(path):
    """The text encoder's module path as LoRA files name it (transformers 4's `text_model.` level)."""
    return path if path.startswith("text_model.") else "text_model." + path


def peft_merge(model, modules, component, multiplier, adapter):
    """PEFT as the judge: LoRA layers injected on exactly these modules, the file's factors set,
    merged (W += scaling * B @ A with scaling = lora_alpha / r) and unloaded."""
    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.lora import LoraLayer

    mine = {p: v for (c, p), v in modules.items() if c == component}
    if not mine:
        return
    alpha = next(iter(mine.values()))[2]
    # transformers 5's CLIPTextModel has no `text_model.` level; the files name it (as 4.x did).
    names = set(n for n, _ in model.named_modules())
    local = {(p if p in names else p[len("text_model."):]): v for p, v in mine.items()}
    config = LoraConfig(r=RANK, lora_alpha=alpha * multiplier, target_modules=sorted(local), lora_dropout=0.0, init_lora_weights=False)
    inject_adapter_in_model(config, model, adapter_name=adapter)
    with torch.no_grad():
        for path, (down, up, _) in local.items():
            layer = model.get_submodule(path)
            layer.lora_A[adapter].weight.copy_(down.reshape(layer.lora_A[adapter].weight.shape))
            layer.lora_B[adapter].weight.copy_(up.reshape(layer.lora_B[adapter].weight.shape))
    for name, layer in list(model.named_modules()):
        if isinstance(layer, LoraLayer):
            layer.merge(adapter_names=[adapter])
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, layer.get_base_layer())


CASES = {
    "deci_kohya": dict(pipeline="deci", loras=[["deci_kohya", 0.8]], seed=31),
    "deci_peft": dict(pipeline="deci", loras=[["deci_peft", 1.0]], seed=32),
    "deci_two": dict(pipeline="deci", loras=[["deci_kohya", 0.6], ["deci_peft", 0.5]], seed=33),
    "sd_kohya": dict(pipeline="sd", loras=[["sd_kohya", 0.9]], seed=34),
    "sd_two": dict(pipeline="sd", loras=[["sd_kohya", 0.7], ["sd_peft", 1.2]], seed=35),
}
REQUEST = dict(prompts=["a red circle on a blue background"], negative_prompts=["blurry"], steps=8, guidance_scale=7.5,
               width=64, height=64)


def build_parts(name):
    with tempfile.TemporaryDirectory() as scratch:
        mpf.OUT = scratch
        return mpf.build_pipeline(name, mpf.PIPELINES[name])


def denoiser_module(parts, name):
    return parts["unet"].model if name == "deci" else parts["unet"]


def run_case(case_name, case, files):
    from diffusers import StableDiffusionPipeline

    name = case["pipeline"]
    parts = build_parts(name)
    if name == "deci":
        for i, (lora, m) in enumerate(case["loras"]):
            modules = files[lora][1]
            peft_merge(denoiser_module(parts, name), modules, "unet", m, f"a{i}")
            peft_merge(parts["text_encoder"], modules, "text_encoder", m, f"a{i}")
        pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    else:
        pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        names = []
        for i, (lora, m) in enumerate(case["loras"]):
            # diffusers converts and loads the UNet part (kohya names included); its text-encoder
            # loader does not find transformers 5's modules (no `text_model.` level), so PEFT merges that part.
            state_dict, alphas, metadata = pipe.lora_state_dict(os.path.join(OUT, f"{lora}.safetensors"),
                                                                 return_lora_metadata=True)
            unet_sd = {k: v for k, v in state_dict.items() if k.startswith("unet.")}
            unet_alphas = {k: v for k, v in (alphas or {}).items() if k.startswith("unet.")} or None
            pipe.load_lora_into_unet(unet_sd, unet_alphas, unet=pipe.unet, adapter_name=f"a{i}", metadata=metadata)
            names.append(f"a{i}")
            peft_merge(parts["text_encoder"], files[lora][1], "text_encoder", m, f"t{i}")
        pipe.unet.set_adapters(names, weights=[m for _, m in case["loras"]])
        pipe.unet.fuse_lora(adapter_names=names, lora_scale=1.0)
        pipe.unet.unload_lora()
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator("cpu").manual_seed(case["seed"])
    with torch.no_grad():
        images = pipe(prompt=REQUEST["prompts"], negative_prompt=REQUEST["negative_prompts"], width=64, height=64,
                      num_inference_steps=REQUEST["steps"], guidance_scale=REQUEST["guidance_scale"],
                      guidance_rescale=0.7 if name == "deci" else 0.0, generator=g, output_type="np").images
    images = np.ascontiguousarray(images, dtype=np.float32)
    path = os.path.join(OUT, "expected", f"{case_name}.safetensors")
    save_file({"images": torch.from_numpy(images)}, path)
    os.chmod(path, 0o644)
    print(f"{case_name}: {images.shape} mean {images.mean():.3f} std {images.std():.3f}")


def main():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
    files = {}
    for name in ["deci", "sd"]:
        parts = build_parts(name)
        unet = targets(denoiser_module(parts, name), UNET_TARGETS, every=2)
        te = [(te_path(p), s) for p, s in targets(parts["text_encoder"], TE_TARGETS)]
        for style, dtype, seed in [("kohya", "F16", 1), ("peft", "F32", 2)]:
            tensors, modules = make_lora(seed + (10 if name == "sd" else 0), unet, te, style, dtype)
            metadata = {"format": "pt"}
            if style == "peft":
                # As diffusers' save_lora_weights writes it: each component's PEFT config, prefixed.
                metadata["lora_adapter_metadata"] = json.dumps({
                    "unet.r": RANK, "unet.lora_alpha": 8.0, "unet.target_modules": sorted(p for p, _ in unet),
                    "text_encoder.r": RANK, "text_encoder.lora_alpha": 8.0,
                    "text_encoder.target_modules": sorted(p for p, _ in te)}, indent=2, sort_keys=True)
            path = os.path.join(OUT, f"{name}_{style}.safetensors")
            save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=metadata)
            os.chmod(path, 0o644)
            files[f"{name}_{style}"] = (tensors, modules)
            print(f"{name}_{style}: {len(modules)} modules ({len(unet)} unet, {len(te)} text encoder)")
    only = set(sys.argv[1:])
    for case_name, case in CASES.items():
        if not only or case_name in only:
            run_case(case_name, case, files)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"request": REQUEST, "cases": CASES}, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
