#!/usr/bin/env python3
"""Writes the A1111 prompt-weighting parity fixtures (Fixtures/prompts/) with the Python reference
of tools/prompt_weighting_reference.py and diffusers 0.42 as the judge of the images.

Regenerate with:  PY=$(tools/venv.sh); $PY tools/make_prompt_fixtures.py

  parser.json     >= 200 prompts (nesting, escapes, BREAK, weights, unbalanced brackets, long
                  prompts, comma backtracking, errors): the parsed pieces [[text, weight], ...]
                  (weights as Python floats: exact doubles) and the chunks (77 ids and 77
                  multipliers each), or `"error": true` where A1111 refuses the prompt.
  cases.json      requests on the deci / sd checkpoints of Fixtures/pipelines (tokenizer from
                  Resources/clip-tokenizer), run in `a1111` weighting mode.
  adjustments.json  values added to checkpoint tensors before their dtype rounding: the final
                  LayerNorm's bias of the text encoder moves by +0.5. With the fixture's ~zero-mean
                  outputs, A1111's mean restoration would otherwise divide rounding noise by
                  rounding noise; with it the references mean something.
  expected/<case>.safetensors  `cond` [P, 77k, C] and `uncond` [P, 77k', C] (the reference
                  encodings of the distinct prompts and negative prompts) and `images` (float32
                  [n, h, w, 3] in [0, 1]) from diffusers' StableDiffusionPipeline fed the
                  encodings as prompt_embeds / negative_prompt_embeds. Where cond and uncond have
                  different lengths (A1111's default: separate UNet calls, no padding), the
                  shorter is zero-padded to pass diffusers' shape check and the UNet is wrapped to
                  run the two halves as separate calls on their true lengths; with `pad_cond_uncond`
                  the shorter gets copies of the empty prompt's encoding (one batched call).
"""
import json
import os
import random
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_pipeline_fixtures as mpf  # noqa: E402
from make_unet_fixtures import det_values  # noqa: E402
from prompt_weighting_reference import encode, pad_with_empty, parse_prompt_attention, tokenize_line  # noqa: E402

ROOT = os.path.join(HERE, "..")
OUT = os.path.join(ROOT, "Fixtures", "prompts")
ADJUSTMENTS = {"text_encoder": {"text_model.final_layer_norm.bias": 0.5}}

HANDWRITTEN = [
    "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
    r"\(cat\) (dog:1.2) BREAK [bird]",
    "(unbalanced", "unbalanced)", "a) b]", "(unnecessary)(parens)", "()", "[]", "(a:b)", "word:1.2)",
    "(a: 1.2 )", "(a:-1)", "(a:+2)", "(a:.5)", "(a:1.)", "(a:1.2.3)", "(a:.)", "(a:..5)", "(a:1e3)",
    "BREAK", "BREAKfast", "a BREAK b", "a BREAK BREAK b", "(x BREAK y)", "BREAK a", "a BREAK", "a BREAK\nb",
    "a\tBREAK\tb", "aBREAK b", "a_BREAK b", "a break b", "[x BREAK y]", "(x:1.5) BREAK (y:0.5)",
    r"a\b", r"\\", r"\\(x)", r"\(literal\]", r"\[x\]", "\\", "a\\", r"(a\)b)", r"(a\:1.2)",
    "(x)", "((x))", "[x]", "[[x]]", "(x:1.5)", "((x:1.5))", "[(x:1.5)]", "[[(x:1.5)]]", "((a) b) c",
    "(a (b (c (d))))", "[a [b [c]]]", "(a [b] c)", "[a (b) c]", "(a:1.1) (b:1.1)", "(a) (b)",
    "((a)(b))", "(a:0)", "(a:0) b", "(a:100)", "(:1.2)", "(:)", "(a:1.2", "a:1.2)", ":", "::", "a:b:c",
    "(a:1.2)(b:1.2)", "(a:1.2) [b:1.2]", "[cat:0.5]", "[cat:dog:0.5]", "[a|b]", "<lora:foo:0.8> a cat",
    "", " ", "   leading and trailing spaces   ", "a, b, c", ",,,,", "(,)", "1girl, solo, (masterpiece:1.2)",
    "(masterpiece, best quality:1.2), 1girl, [[lowres]], (((detailed eyes)))", "photo of a cat (in a hat)",
    "a (cat:1.3) and a (dog:0.7) in the (rain:1.1)", "(red:1.3) (green:0.8) [blue]",
    "(a:1.20000)", "(a:00.5)", "(a:-.5)", "(a:-0)", "(a :1.3)", "(a: 1.3)", "(a:1.3 )", "(a:\t1.3\n)",
    "(a:١٫٢)", "(a:١٢)", "unicode: café (naïve:1.2) 東京", "emoji 🐱 (cat:1.2)", "a (b) \\(c\\) [d] \\[e\\]",
    "(long " + "words " * 20 + ":1.3)", "BREAK BREAK", "((x BREAK y))", "(BREAK:-1)", "a (BREAK:-1) b",
]


def generated_prompts(rng, count):
    atoms = ["cat", "dog", "a", "red", "blue", "house", "hill", "sky", " ", " ", ", ", ",", "(", "(", "((", ")", ")",
             "))", "[", "[", "]", ":1.3)", ": 0.8 )", ":-0.5)", ":2)", "\\(", "\\)", "\\[", "\\]", "\\\\", "\\", ":",
             " BREAK ", "BREAK", "masterpiece", "best quality", "1girl", "\n", "(x:1.2)", "[y]", "((z))"]
    out = []
    for _ in range(count):
        n = rng.randint(1, 18)
        out.append("".join(rng.choice(atoms) for _ in range(n)))
    return out


def long_prompts(rng, count):
    words = ["a", "photo", "of", "cat", "sitting", "on", "the", "chair", "in", "golden", "light", "detailed",
             "masterpiece", "sharp", "focus", "forest", "river", "castle", "dramatic", "clouds", "sunset"]
    out = []
    for k in range(count):
        n = rng.randint(60, 240)
        parts = []
        for i in range(n):
            w = rng.choice(words)
            r = rng.random()
            if r < 0.12:
                w = f"({w}:{rng.choice(['1.2', '0.8', '1.5', '0.5'])})"
            elif r < 0.18:
                w = f"[{w}]"
            parts.append(w)
            if rng.random() < (0.05 if k % 3 else 0.25):
                parts.append(",")
            if rng.random() < 0.01:
                parts.append("BREAK")
        out.append(" ".join(parts))
    # The reference's worked examples: 75 and 76 tokens; a comma 5 before the end (backtrack) and 21
    # before (none); a comma at exactly the 76th token.
    out += ["cat " * 75, "cat " * 76, "cat " * 70 + ", " + "dog " * 9, "cat " * 54 + ", " + "dog " * 25,
            "cat " * 55 + ", " + "dog " * 25, "cat " * 75 + ", dog", "cat " * 74 + ", dog dog", "(cat " * 80,
            "BREAK " + "cat " * 80, "cat " * 150 + "BREAK dog"]
    return out


def write_json(path, obj, compact=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        if compact:
            json.dump(obj, f, separators=(",", ":"), ensure_ascii=False)
        else:
            json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def parser_fixture(tokenizer):
    rng = random.Random(18)
    prompts = HANDWRITTEN + generated_prompts(rng, 120) + long_prompts(rng, 30)
    entries = []
    for p in prompts:
        try:
            parsed = parse_prompt_attention(p)
        except ValueError:
            entries.append({"prompt": p, "error": True})
            continue
        chunks = tokenize_line(tokenizer, p)
        entries.append({"prompt": p, "parsed": parsed,
                        "chunks": [{"ids": ids, "multipliers": m} for ids, m in chunks]})
    write_json(os.path.join(OUT, "parser.json"), entries, compact=True)
    print(f"parser.json: {len(entries)} prompts, {sum(len(e.get('chunks', [])) for e in entries)} chunks, "
          f"{sum(1 for e in entries if e.get('error'))} errors")


LONG = ("a detailed painting of a castle on a hill, golden light, dramatic clouds, a river in the valley, "
        "tall pine trees, (sharp focus:1.2), [blurry], birds in the sky, a winding road, stone walls, banners, "
        "a knight on a horse, sunset colours, mist, reflections in the water, a small village, smoke from chimneys, "
        "masterpiece, best quality, a wooden bridge over the stream, flowers along the banks, a distant mountain range "
        "covered in snow, a flock of sheep on the meadow, (warm atmosphere:0.9), lanterns on the walls")
CASES = {
    "deci_weighted": dict(pipeline="deci", prompts=["a (red:1.3) circle on a [blue] background, ((sharp))"],
                          negative_prompts=["(blurry:1.4), [[text]]"], images_per_prompt=1, steps=10, seed=5,
                          guidance_scale=7.5, guidance_rescale=0.7),
    "deci_long_separate": dict(pipeline="deci", prompts=[LONG], negative_prompts=["ugly"], images_per_prompt=1,
                               steps=10, seed=6, guidance_scale=7.5, guidance_rescale=0.7),
    "deci_long_padded": dict(pipeline="deci", prompts=[LONG], negative_prompts=["ugly"], images_per_prompt=1,
                             steps=10, seed=6, guidance_scale=7.5, guidance_rescale=0.7, pad_cond_uncond=True),
    "deci_batch_break": dict(pipeline="deci", prompts=["a cat BREAK a (dog:1.5) on grass", "a bird"],
                             negative_prompts=["", "(noise:0.8)"], images_per_prompt=1, steps=10, seed=7,
                             guidance_scale=6.0, guidance_rescale=0.0),
    "deci_negative_long_clipskip": dict(pipeline="deci", prompts=["a (lighthouse:1.2) at night"],
                                        negative_prompts=[LONG], images_per_prompt=2, steps=8, seed=8,
                                        guidance_scale=7.5, guidance_rescale=0.7, clip_skip=1),
    "deci_no_guidance_long": dict(pipeline="deci", prompts=[LONG + ", " + LONG], negative_prompts=["ignored"],
                                  images_per_prompt=1, steps=8, seed=9, guidance_scale=1.0, guidance_rescale=0.0),
    "sd_long_separate": dict(pipeline="sd", prompts=[LONG], negative_prompts=["(low quality:1.3)"],
                             images_per_prompt=1, steps=12, seed=10, guidance_scale=7.5, guidance_rescale=0.0),
}


def adjust_text_encoder(text_encoder, dtype):
    for key, offset in ADJUSTMENTS["text_encoder"].items():
        name = key[len("text_model."):]
        param = dict(text_encoder.named_parameters())[name]
        v = torch.from_numpy(det_values(key, list(param.shape))) + torch.tensor(offset, dtype=torch.float32)
        if dtype == "F16":
            v = v.half().float()
        with torch.no_grad():
            param.copy_(v)


def split_unet_calls(unet, batch, uncond_tokens, cond_tokens):
    """A1111's default for cond/uncond of different lengths: two UNet calls, each on its true
    context length (the pipeline passes both zero-padded to the longer one)."""
    forward = unet.forward

    def split(sample, timestep, encoder_hidden_states, **kw):
        if encoder_hidden_states.shape[0] != 2 * batch:
            return forward(sample, timestep, encoder_hidden_states, **kw)
        u = forward(sample[:batch], timestep, encoder_hidden_states[:batch, :uncond_tokens], **kw)[0]
        c = forward(sample[batch:], timestep, encoder_hidden_states[batch:, :cond_tokens], **kw)[0]
        return (torch.cat([u, c]),)

    unet.forward = split
    return forward


def run_case(name, case, parts, tokenizer):
    from diffusers import StableDiffusionPipeline

    te = parts["text_encoder"]
    cond = encode(te, tokenizer, case["prompts"], case.get("clip_skip", 0))
    uncond = encode(te, tokenizer, case["negative_prompts"], case.get("clip_skip", 0))
    n = case["images_per_prompt"]
    guided = case["guidance_scale"] > 1
    pe, ne = cond, uncond
    original_forward = None
    if guided and cond.shape[1] != uncond.shape[1]:
        if case.get("pad_cond_uncond"):
            empty = encode(te, tokenizer, [""], case.get("clip_skip", 0))
            target = max(cond.shape[1], uncond.shape[1])
            pe, ne = pad_with_empty(cond, target, empty), pad_with_empty(uncond, target, empty)
        else:
            target = max(cond.shape[1], uncond.shape[1])
            pe = torch.nn.functional.pad(cond, (0, 0, 0, target - cond.shape[1]))
            ne = torch.nn.functional.pad(uncond, (0, 0, 0, target - uncond.shape[1]))
            original_forward = split_unet_calls(parts["unet"], len(case["prompts"]) * n, uncond.shape[1], cond.shape[1])
    elif not guided:
        ne = None
    comps = dict(parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = StableDiffusionPipeline(**comps)
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator("cpu").manual_seed(case["seed"])
    with torch.no_grad():
        images = pipe(prompt_embeds=pe, negative_prompt_embeds=ne, num_images_per_prompt=n, width=64, height=64,
                      num_inference_steps=case["steps"], guidance_scale=case["guidance_scale"],
                      guidance_rescale=case["guidance_rescale"], generator=g, output_type="np").images
    if original_forward is not None:
        parts["unet"].forward = original_forward
    images = np.ascontiguousarray(images, dtype=np.float32)
    save_file({"images": torch.from_numpy(images), "cond": cond.contiguous(), "uncond": uncond.contiguous()},
              os.path.join(OUT, "expected", f"{name}.safetensors"))
    os.chmod(os.path.join(OUT, "expected", f"{name}.safetensors"), 0o644)
    print(f"{name}: cond {tuple(cond.shape)} uncond {tuple(uncond.shape)} images {images.shape} "
          f"mean {images.mean():.3f} std {images.std():.3f}")


def main():
    from transformers import CLIPTokenizer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    tokenizer = CLIPTokenizer.from_pretrained(mpf.TOKENIZER)
    os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
    parser_fixture(tokenizer)
    # Build the pipeline fixtures' checkpoints in a scratch folder (the committed ones stay as they are).
    with tempfile.TemporaryDirectory() as scratch:
        mpf.OUT = scratch
        parts = {}
        for name in ["deci", "sd"]:
            parts[name] = mpf.build_pipeline(name, mpf.PIPELINES[name])
            adjust_text_encoder(parts[name]["text_encoder"], mpf.PIPELINES[name]["text_encoder_dtype"])
    only = set(sys.argv[1:])
    for name, case in CASES.items():
        if not only or name in only:
            run_case(name, case, parts[case["pipeline"]], tokenizer)
    write_json(os.path.join(OUT, "cases.json"), CASES)
    write_json(os.path.join(OUT, "adjustments.json"), ADJUSTMENTS)


if __name__ == "__main__":
    main()
