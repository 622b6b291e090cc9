#!/usr/bin/env python3
"""Writes the textual-inversion parity fixtures (Fixtures/ti/): random embeddings for the fixture
text encoder (hidden 32) in three containers, and the images diffusers' `load_textual_inversion`
gives with them on the deci checkpoint of Fixtures/pipelines.

Regenerate with:  PY=$(tools/venv.sh); $PY tools/make_ti_fixtures.py

  shapeti.safetensors          A1111 safetensors: `string_to_param.*` [2, 32]; token = file stem
  kohyaemb.safetensors         kohya sd-scripts: `emb_params` [3, 32]; token = file stem
  learned_embeds.safetensors   diffusers: {"<cat-toy>": [32]}; token = the key
  expected/<case>.safetensors  `images` (float32 [n, h, w, 3]) from StableDiffusionPipeline after
                               load_textual_inversion of each file (token= the file stem for the
                               first two, as A1111 names them)
"""
import json
import os
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_pipeline_fixtures as mpf  # noqa: E402

OUT = os.path.join(HERE, "..", "Fixtures", "ti")
CASES = {
    "deci_ti": dict(prompts=["a photo of kohyaemb on <cat-toy> grass"], negative_prompts=["shapeti, blurry"], steps=8,
                    seed=41, guidance_scale=7.5, guidance_rescale=0.7),
    "deci_ti_batch": dict(prompts=["shapeti and kohyaemb", "a <cat-toy>"], negative_prompts=["kohyaemb", ""], steps=6,
                          seed=42, guidance_scale=6.0, guidance_rescale=0.0),
}


def main():
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
    g = torch.Generator().manual_seed(18)
    files = {"shapeti.safetensors": {"string_to_param.*": torch.randn(2, 32, generator=g)},
             "kohyaemb.safetensors": {"emb_params": torch.randn(3, 32, generator=g)},
             "learned_embeds.safetensors": {"<cat-toy>": torch.randn(32, generator=g)}}
    for name, tensors in files.items():
        path = os.path.join(OUT, name)
        save_file(tensors, path, metadata={"format": "pt"})
        os.chmod(path, 0o644)
    for case_name, case in CASES.items():
        with tempfile.TemporaryDirectory() as scratch:
            mpf.OUT = scratch
            parts = mpf.build_pipeline("deci", mpf.PIPELINES["deci"])
        pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe.load_textual_inversion(os.path.join(OUT, "shapeti.safetensors"), token="shapeti")
        pipe.load_textual_inversion(os.path.join(OUT, "kohyaemb.safetensors"), token="kohyaemb")
        pipe.load_textual_inversion(os.path.join(OUT, "learned_embeds.safetensors"))
        pipe.set_progress_bar_config(disable=True)
        gen = torch.Generator("cpu").manual_seed(case["seed"])
        with torch.no_grad():
            images = pipe(prompt=case["prompts"], negative_prompt=case["negative_prompts"], width=64, height=64,
                          num_inference_steps=case["steps"], guidance_scale=case["guidance_scale"],
                          guidance_rescale=case["guidance_rescale"], generator=gen, output_type="np").images
        ids = [pipe.tokenizer(pipe.maybe_convert_prompt(p, pipe.tokenizer))["input_ids"] for p in case["prompts"]]
        images = np.ascontiguousarray(images, dtype=np.float32)
        path = os.path.join(OUT, "expected", f"{case_name}.safetensors")
        save_file({"images": torch.from_numpy(images)}, path)
        os.chmod(path, 0o644)
        case["token_ids"] = ids
        print(f"{case_name}: {images.shape} mean {images.mean():.3f}; ids {ids}")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(CASES, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
