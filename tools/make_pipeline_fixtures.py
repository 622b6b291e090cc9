#!/usr/bin/env python3
"""Writes the end-to-end pipeline parity fixtures (Fixtures/pipelines/) with diffusers 0.42 as the
reference: tiny random-weight checkpoints in the exact diffusers folder layout, and the images
diffusers' Stable Diffusion pipelines make from them for fixed requests and seeds.

Regenerate with:  PY=$(tools/venv.sh); $PY tools/make_pipeline_fixtures.py

Checkpoints (Fixtures/pipelines/<name>/), all sharing one tiny CLIP text encoder (hidden 32,
2 layers, the real 49,408-token vocabulary) and one tiny VAE (4 levels, so 8x like SD's):
  deci/        DeciDiffusion-shaped: model_index.json `DeciDiffusionPipeline` listing a safety
               checker and feature extractor (config-only folders the engine must skip), a
               `flexible_unet/` U-Net-NAS (tools/unet_nas_reference.py; the published block
               structure with narrow widths; fp16 weights as published), an `unet/` folder holding
               only a config (DeciDiffusion ships an unused SD UNet there; it must be ignored), and
               DeciDiffusion's own DDIM scheduler config (v-prediction, zero SNR, trailing).
  sd/          SD-1.x-shaped: a tiny UNet2DConditionModel, SD 1.5's PNDM scheduler config, the
               text encoder stored only as the `fp16` variant (model.fp16.safetensors).
  sd_inpaint/  as sd/ with a 9-input-channel UNet (SD inpainting).

To keep the repository small no weights are stored. Each component folder holds a
`weights.manifest.json` ({"file", "dtype", "tensors": [[key, shape], ...]} = the reference's state
dict) instead; the values are a deterministic function of each tensor's name and shape (the
generator of tools/make_unet_fixtures.py: FNV-1a of the key, splitmix64, uniform in [-1, 1) scaled
by 1/sqrt(fan_in), norm scales 1 +- 0.25, biases +- 0.125), which the Swift tests recompute and
write in the manifest's dtype (fp16 rounded to nearest even, as torch's .half(); the reference runs
on the same rounded values). The tokenizer folder is not stored either: the tests copy
Resources/clip-tokenizer/ in (the reference reads the same files).

Cases (Fixtures/pipelines/cases.json): the request (prompts, negative prompts, images per prompt,
size, steps, guidance, rescale, scheduler by name, seed, strength, init image, mask, eta, clip skip) and which
diffusers pipeline ran it: StableDiffusionPipeline (text-to-image; DeciDiffusion's custom pipeline
is StableDiffusionPipeline with guidance_rescale 0.7), StableDiffusionImg2ImgPipeline,
StableDiffusionInpaintPipeline (4-channel UNets blend the noised init latents by the mask each step;
9-channel UNets take mask and masked-image latents as extra input channels). The diffusers img2img
and inpaint pipelines have no guidance rescale, so those cases set it to 0. Generators are
torch.Generator("cpu").manual_seed(seed). Per case, expected/<case>.safetensors holds `images`
(float32 [n, h, w, 3] in [0, 1], output_type "np") and expected/<case>_<i>.png the 8-bit images
(output_type "pil"). init.png / mask.png are the image-to-image and inpainting inputs (64x128).
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_unet_fixtures import det_values  # noqa: E402
from unet_nas_reference import UNetNAS  # noqa: E402

ROOT = os.path.join(HERE, "..")
OUT = os.path.join(ROOT, "Fixtures", "pipelines")
TOKENIZER = os.path.join(ROOT, "Resources", "clip-tokenizer")
DECI_SCHEDULER = os.path.join(ROOT, "..", "shared", "spec", "scheduler_config.json")
if not os.path.exists(DECI_SCHEDULER):
    DECI_SCHEDULER = "/work/shared/spec/scheduler_config.json"

TEXT_ENCODER = dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                    max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=32,
                    bos_token_id=0, eos_token_id=2, pad_token_id=1)
VAE = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
           up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[16, 32, 32, 32], layers_per_block=1,
           norm_num_groups=8, latent_channels=4, sample_size=64, scaling_factor=0.18215)
# The published U-Net-NAS block structure, widths 320/640/1280 -> 32/64/96.
FLEXIBLE_UNET = {
    "_class_name": "FlexibleUNet2DConditionModel", "block_out_channels": [32, 64], "in_channels": 4, "out_channels": 4,
    "configurations": {
        "sample_size": 16, "cross_attention_dim": 32, "temb_dim": 128, "resnet_eps": 1e-5, "resnet_act_fn": "silu",
        "num_attention_heads": 8, "mix_block_in_forward": True,
        "down_blocks_in_channels": [32, 32, 64], "down_blocks_out_channels": [32, 64, 96],
        "down_blocks_num_resnets": [2, 2, 1], "down_blocks_num_attentions": [0, 1, 3], "add_downsample": [True, True, True],
        "add_upsample_mid_block": True, "mid_num_resnets": 4, "mid_num_attentions": 2,
        "prev_output_channels": [96, 96, 64], "up_blocks_num_resnets": [2, 3, 3], "up_blocks_num_attentions": [6, 3, 0],
        "add_upsample": [True, True, False]}}
SD_UNET = dict(block_out_channels=[32, 64], layers_per_block=1, cross_attention_dim=32, attention_head_dim=8,
               down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
               in_channels=4, out_channels=4, norm_num_groups=32, sample_size=8)
SD15_SCHEDULER = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
                  "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
                  "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
                  "clip_sample": False}

PIPELINES = {
    "deci": dict(class_name="DeciDiffusionPipeline", version="0.20.2", denoiser="flexible_unet", unet_dtype="F16",
                 text_encoder_file="model.safetensors", text_encoder_dtype="F32", extras=True),
    "sd": dict(class_name="StableDiffusionPipeline", version="0.42.1", denoiser="unet", unet_dtype="F32", in_channels=4,
               text_encoder_file="model.fp16.safetensors", text_encoder_dtype="F16", extras=False),
    "sd_inpaint": dict(class_name="StableDiffusionInpaintPipeline", version="0.42.1", denoiser="unet", unet_dtype="F32",
                       in_channels=9, text_encoder_file="model.fp16.safetensors", text_encoder_dtype="F16", extras=False),
}

# Each request in the engine's terms (GenerationRequest field names); `pipeline` says which
# checkpoint, `mode` which diffusers pipeline class.
CASES = {
    "deci_t2i": dict(pipeline="deci", mode="text2img", prompts=["a photograph of an astronaut riding a horse", "a watercolor fox"],
                     negative_prompts=["blurry", "low quality, text"], images_per_prompt=1, width=64, height=128,
                     steps=30, guidance_scale=7.5, guidance_rescale=0.7, seed=42),
    "deci_img2img": dict(pipeline="deci", mode="img2img", prompts=["a castle on a hill at sunset"], negative_prompts=["ugly"],
                         images_per_prompt=2, steps=30, guidance_scale=7.5, guidance_rescale=0.0, seed=7, strength=0.6,
                         init_image="init.png"),
    "deci_inpaint": dict(pipeline="deci", mode="inpaint", prompts=["a red balloon"], negative_prompts=["dark"],
                         images_per_prompt=2, width=64, height=128, steps=20, guidance_scale=6.0, guidance_rescale=0.0,
                         seed=3, strength=1.0, init_image="init.png", mask="mask.png"),
    "sd_t2i_pndm": dict(pipeline="sd", mode="text2img", prompts=["a cat sitting on a wooden chair"],
                        negative_prompts=["out of focus"], images_per_prompt=2, width=64, height=64, steps=50,
                        guidance_scale=7.5, guidance_rescale=0.0, seed=1234),
    "sd_t2i_euler_a": dict(pipeline="sd", mode="text2img", prompts=["a lighthouse in a storm", "a bowl of fruit"],
                           negative_prompts=["monochrome"], images_per_prompt=1, width=64, height=64, steps=20,
                           guidance_scale=7.5, guidance_rescale=0.0, seed=99, scheduler="Euler a"),
    "sd_img2img_euler_a": dict(pipeline="sd", mode="img2img", prompts=["an oil painting of a harbour"],
                               negative_prompts=["photo"], images_per_prompt=2, steps=20, guidance_scale=7.5,
                               guidance_rescale=0.0, seed=5, strength=0.6, init_image="init.png", scheduler="Euler a"),
    "sd_inpaint_pndm": dict(pipeline="sd", mode="inpaint", prompts=["a small boat", "a yellow flower"],
                            negative_prompts=["blurry", "grey"], images_per_prompt=1, width=64, height=64, steps=20,
                            guidance_scale=7.5, guidance_rescale=0.0, seed=11, strength=0.75, init_image="init.png",
                            mask="mask.png"),
    # 4-channel blending with a stochastic sampler: the masked image's VAE sample is drawn (and
    # unused) before the step noise; strength 1 (diffusers' default) starts from noise * init sigma.
    "sd_inpaint_euler_a": dict(pipeline="sd", mode="inpaint", prompts=["a blue vase"], negative_prompts=["dull"],
                               images_per_prompt=2, width=64, height=128, steps=15, guidance_scale=7.5,
                               guidance_rescale=0.0, seed=17, init_image="init.png", mask="mask.png", scheduler="Euler a"),
    # No guidance (scale 1: one UNet batch), clip skip 1, DDIM chosen by name with eta 0.5 (step noise).
    "sd_t2i_ddim_eta": dict(pipeline="sd", mode="text2img", prompts=["a red car on a mountain road"], negative_prompts=["ignored"],
                            images_per_prompt=2, width=64, height=64, steps=12, guidance_scale=1.0, guidance_rescale=0.0,
                            seed=2024, scheduler="DDIM", eta=0.5, clip_skip=1),
    "sd9_inpaint_pndm": dict(pipeline="sd_inpaint", mode="inpaint", prompts=["a stone bridge", "a green door"],
                             negative_prompts=["low quality"], images_per_prompt=1, width=64, height=128, steps=20,
                             guidance_scale=7.5, guidance_rescale=0.0, seed=21, strength=1.0, init_image="init.png",
                             mask="mask.png"),
    "sd9_inpaint_euler_a": dict(pipeline="sd_inpaint", mode="inpaint", prompts=["a wooden fence"], negative_prompts=["text"],
                                images_per_prompt=2, width=64, height=64, steps=20, guidance_scale=5.0,
                                guidance_rescale=0.0, seed=8, strength=0.6, init_image="init.png", mask="mask.png",
                                scheduler="Euler a"),
}


def det_state_dict(model, dtype, prefix=""):
    sd = {}
    for k, t in model.state_dict().items():
        v = torch.from_numpy(det_values(prefix + k, list(t.shape)))
        if dtype == "F16":
            v = v.half().float()
        sd[k] = v
    return sd


def load_det(model, folder, file, dtype, prefix=""):
    """Loads the deterministic weights into `model` and writes the manifest the Swift tests read;
    `prefix` is prepended to the checkpoint keys (and so changes the values)."""
    model.load_state_dict(det_state_dict(model, dtype, prefix), strict=True)
    model.eval()
    manifest = {"file": file, "dtype": dtype,
                "tensors": [[prefix + k, list(v.shape)] for k, v in model.state_dict().items()]}
    with open(os.path.join(folder, "weights.manifest.json"), "w") as f:
        json.dump(manifest, f, separators=(",", ":"))
    return model


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


class FlexibleUNet:
    """Makes the U-Net-NAS reference look like a UNet2DConditionModel to the diffusers pipelines."""

    @staticmethod
    def build(config):
        from diffusers import ModelMixin, ConfigMixin
        from diffusers.configuration_utils import register_to_config

        class Wrapper(ModelMixin, ConfigMixin):
            @register_to_config
            def __init__(self, in_channels=4, sample_size=16, time_cond_proj_dim=None):
                super().__init__()
                self.model = UNetNAS(config)

            def forward(self, sample, timestep, encoder_hidden_states, return_dict=False, **_):
                t = timestep if torch.is_tensor(timestep) else torch.tensor([timestep])
                return (self.model(sample, t.reshape(-1).expand(sample.shape[0]), encoder_hidden_states),)

        return Wrapper(in_channels=config["in_channels"], sample_size=config["configurations"]["sample_size"])


def build_pipeline(name, spec):
    from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = os.path.join(OUT, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)

    index = {"_class_name": spec["class_name"], "_diffusers_version": spec["version"],
             "scheduler": ["diffusers", "DDIMScheduler" if name == "deci" else "PNDMScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    if spec["extras"]:
        index.update({"feature_extractor": ["transformers", "CLIPImageProcessor"], "requires_safety_checker": True,
                      "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"]})
    else:
        index.update({"feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None]})
    write_json(os.path.join(folder, "model_index.json"), index)

    te_dir = os.path.join(folder, "text_encoder")
    os.makedirs(te_dir)
    te_config = CLIPTextConfig(**TEXT_ENCODER)
    te_config.architectures = ["CLIPTextModel"]
    te_config.save_pretrained(te_dir)
    # Published CLIP text encoders (saved by transformers 4) name their tensors `text_model.*`;
    # transformers 5's CLIPTextModel has no such level, so the prefix exists only in the files.
    text_encoder = load_det(CLIPTextModel(te_config), te_dir, spec["text_encoder_file"], spec["text_encoder_dtype"],
                            prefix="text_model.")
    # diffusers 0.42.1 applies clip skip through `text_encoder.text_model.final_layer_norm`, which
    # transformers 5 lacks: alias it (outside nn.Module's registry, so no cycle).
    if not hasattr(text_encoder, "text_model"):
        object.__setattr__(text_encoder, "text_model", text_encoder)

    vae_dir = os.path.join(folder, "vae")
    vae = AutoencoderKL(**VAE)
    vae.save_config(vae_dir)
    load_det(vae, vae_dir, "diffusion_pytorch_model.safetensors", "F32")

    den_dir = os.path.join(folder, spec["denoiser"])
    if name == "deci":
        write_json(os.path.join(den_dir, "config.json"), FLEXIBLE_UNET)
        unet = FlexibleUNet.build(FLEXIBLE_UNET)
        load_det(unet.model, den_dir, "diffusion_pytorch_model.safetensors", spec["unet_dtype"])
        # The SD UNet DeciDiffusion also ships: config only, so loading it would fail loudly.
        UNet2DConditionModel(**dict(SD_UNET)).save_config(os.path.join(folder, "unet"))
        write_json(os.path.join(folder, "safety_checker", "config.json"),
                   {"_name_or_path": "CompVis/stable-diffusion-safety-checker", "architectures": ["StableDiffusionSafetyChecker"]})
        write_json(os.path.join(folder, "feature_extractor", "preprocessor_config.json"),
                   {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                    "feature_extractor_type": "CLIPFeatureExtractor", "size": 224})
    else:
        unet = UNet2DConditionModel(**dict(SD_UNET, in_channels=spec["in_channels"]))
        unet.save_config(den_dir)
        load_det(unet, den_dir, "diffusion_pytorch_model.safetensors", spec["unet_dtype"])

    sched_dir = os.path.join(folder, "scheduler")
    os.makedirs(sched_dir)
    if name == "deci":
        shutil.copyfile(DECI_SCHEDULER, os.path.join(sched_dir, "scheduler_config.json"))
        scheduler = DDIMScheduler.from_pretrained(sched_dir)
    else:
        write_json(os.path.join(sched_dir, "scheduler_config.json"), SD15_SCHEDULER)
        scheduler = PNDMScheduler.from_pretrained(sched_dir)

    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER)
    return dict(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)


def make_inputs():
    """A smooth 64x128 RGB init image with a few shapes, and a mask with a soft-edged hole."""
    h, w = 128, 64
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([40 + 150 * x / w + 30 * np.sin(y / 9), 60 + 120 * y / h, 200 - 100 * np.cos(x / 11) * (y / h)], -1)
    disk = (x - 40) ** 2 + (y - 40) ** 2 < 14 ** 2
    img[disk] = [230, 200, 40]
    img[90:110, 8:30] = [30, 40, 160]
    Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), "RGB").save(os.path.join(OUT, "init.png"))
    # White (repaint) ellipse with a linear ramp, so the 0.5 threshold and the Lanczos resize matter.
    r = np.sqrt(((x - 30) / 22) ** 2 + ((y - 70) / 34) ** 2)
    m = np.clip((1.3 - r) / 0.6, 0, 1) * 255
    Image.fromarray(np.stack([m] * 3, -1).round().astype(np.uint8), "RGB").save(os.path.join(OUT, "mask.png"))


def run_case(name, case, parts):
    from diffusers import (DDIMScheduler, EulerAncestralDiscreteScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline,
                           StableDiffusionPipeline)

    scheduler = parts["scheduler"]
    if case.get("scheduler") == "Euler a":
        scheduler = EulerAncestralDiscreteScheduler.from_config(scheduler.config)
    elif case.get("scheduler") == "DDIM":
        scheduler = DDIMScheduler.from_config(scheduler.config)
    comps = dict(parts, scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    cls = {"text2img": StableDiffusionPipeline, "img2img": StableDiffusionImg2ImgPipeline,
           "inpaint": StableDiffusionInpaintPipeline}[case["mode"]]
    pipe = cls(**comps)
    pipe.set_progress_bar_config(disable=True)
    negatives = case["negative_prompts"]
    if len(negatives) == 1:  # the engine takes one negative prompt for all; diffusers wants one per prompt
        negatives = negatives * len(case["prompts"])
    kwargs = dict(prompt=case["prompts"], negative_prompt=negatives,
                  num_images_per_prompt=case["images_per_prompt"], num_inference_steps=case["steps"],
                  guidance_scale=case["guidance_scale"])
    for key in ["eta", "clip_skip"]:
        if key in case:
            kwargs[key] = case[key]
    if case["mode"] == "text2img":
        kwargs.update(width=case["width"], height=case["height"], guidance_rescale=case["guidance_rescale"])
    else:
        assert case["guidance_rescale"] == 0, "diffusers' img2img / inpaint pipelines have no guidance rescale"
        kwargs.update(image=Image.open(os.path.join(OUT, case["init_image"])).convert("RGB"))
        if "strength" in case:
            kwargs["strength"] = case["strength"]
    if case["mode"] == "inpaint":
        kwargs.update(mask_image=Image.open(os.path.join(OUT, case["mask"])).convert("RGB"), width=case["width"],
                      height=case["height"])
    results = {}
    for output_type in ["np", "pil"]:
        g = torch.Generator("cpu").manual_seed(case["seed"])
        with torch.no_grad():
            results[output_type] = pipe(**kwargs, generator=g, output_type=output_type).images
    images = np.ascontiguousarray(results["np"], dtype=np.float32)
    exp = os.path.join(OUT, "expected")
    os.makedirs(exp, exist_ok=True)
    save_file({"images": torch.from_numpy(images)}, os.path.join(exp, f"{name}.safetensors"))
    for i, im in enumerate(results["pil"]):
        im.save(os.path.join(exp, f"{name}_{i}.png"))
        assert np.array_equal(np.asarray(im), (images[i] * 255).round().astype(np.uint8))
    clamped = float(np.mean((images <= 0) | (images >= 1)))
    print(f"{name}: {images.shape} mean {images.mean():.3f} std {images.std():.3f} clamped {clamped:.1%}")


def main():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(OUT, exist_ok=True)
    make_inputs()
    parts = {name: build_pipeline(name, spec) for name, spec in PIPELINES.items()}
    only = set(sys.argv[1:])
    for name, case in CASES.items():
        if not only or name in only:
            run_case(name, case, parts[case["pipeline"]])
    write_json(os.path.join(OUT, "cases.json"), CASES)


if __name__ == "__main__":
    main()
