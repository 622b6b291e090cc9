"""Writes Fixtures/models/text_encoder/: tiny random-weight CLIP text encoders and transformers'
CLIPTextModel outputs for them, the reference for Tests/DeciModelsTests/CLIPTextModelTests.swift.

Each case folder is a checkpoint component folder (config.json + weights, as in a diffusers
`text_encoder/`) plus `reference.safetensors` holding the token ids (int64 [batch, tokens]),
`last_hidden_state` and `clip_skip_<k>`: what diffusers' encode_prompt uses for clip_skip=k, i.e.
final_layer_norm(hidden_states[-(k + 1)]). No attention mask is passed, as diffusers does for
CLIP configs without `use_attention_mask`, so padding tokens are attended causally.

Cases:
  quick_gelu_f32/   3 layers, quick_gelu, float32 weights under `text_model.` (the layout real
                    checkpoints have), plus reference_gelu_new.safetensors: the same weights run
                    with hidden_act gelu_new (tanh approximation).
  gelu_fp16/        2 layers, gelu (erf), float16 weights in model.fp16.safetensors with the keys
                    transformers 5 writes (no `text_model.` prefix); the reference runs in float32
                    on the float16 values.

Run:  $(tools/venv.sh) tools/make_text_encoder_fixtures.py
      $(tools/venv.sh) tools/make_text_encoder_fixtures.py --full [DIR]
      $(tools/venv.sh) tools/make_text_encoder_fixtures.py --bench [DIR]
The second writes a full-size (CLIP ViT-L/14 text tower) random-weight checkpoint and reference
to DIR (default ~/.cache/decidiffusion/full/text_encoder; not committed, ~250 MB) for the opt-in
DECI_FULL=1 test, and prints torch's float32 time for one batch-2 x 77 forward; the third only
times torch on that checkpoint again (to compare with the Swift test's timing).
"""
import json
import os
import sys
import time

import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Fixtures", "models", "text_encoder")


def random_weights(model, gen):
    """Weights at scales that make attention peaky and every term matter, unlike the 0.02-std
    initialisation, which leaves the softmax nearly uniform."""
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("position_ids"):
            sd[k] = v
            continue
        shape = v.shape
        if "layer_norm" in k:
            t = (1 + 0.2 * torch.randn(shape, generator=gen)) if k.endswith("weight") else 0.1 * torch.randn(shape, generator=gen)
        elif "embedding" in k:
            t = 0.5 * torch.randn(shape, generator=gen)
        elif k.endswith("bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        else:
            gain = 2.0 if ("q_proj" in k or "k_proj" in k) else 1.0
            t = gain * torch.randn(shape, generator=gen) / shape[1] ** 0.5
        sd[k] = t
    return sd


def token_ids(lengths, tokens, vocab, bos, eos, pads, gen):
    """Rows shaped like tokenizer output: BOS, words, EOS, then padding to `tokens`, one row per
    prompt length, pad ids cycling through `pads`."""
    batch = len(lengths)
    ids = torch.empty(batch, tokens, dtype=torch.int64)
    for b in range(batch):
        n = lengths[b]
        row = torch.randint(0, vocab - 2, (tokens,), generator=gen)
        row[0] = bos
        row[n - 1] = eos
        row[n:] = pads[b % len(pads)]
        ids[b] = row
    return ids


def references(model, ids, num_layers, skips):
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
        hs = out.hidden_states
        assert len(hs) == num_layers + 1
        ref = {"input_ids": ids, "last_hidden_state": out.last_hidden_state}
        for k in skips:
            ref[f"clip_skip_{k}"] = model.final_layer_norm(hs[-(k + 1)])
    return {k: v.contiguous() for k, v in ref.items()}


def build(config_dict, gen, dtype):
    config = CLIPTextConfig(**config_dict)
    model = CLIPTextModel(config).eval()
    sd = random_weights(model, gen)
    # Round through the stored dtype so the float32 reference sees exactly the stored values.
    stored = {k: (v if k.endswith("position_ids") else v.to(dtype)) for k, v in sd.items()}
    model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in stored.items()})
    return config, model, stored


def write_case(name, config_dict, dtype, prefix, weights_name, lengths, extra_acts=(), seed=0):
    gen = torch.Generator().manual_seed(seed)
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    config, model, stored = build(config_dict, gen, dtype)
    c = config_dict
    # The checkpoint: transformers' own config.json, weights under the chosen key layout; the
    # position_ids buffer is written, as transformers 4 did into the public checkpoints, since
    # loaders must tolerate it.
    config.save_pretrained(folder)
    tensors = {prefix + k: v.contiguous() for k, v in stored.items()}
    tensors[prefix + "embeddings.position_ids"] = torch.arange(c["max_position_embeddings"])[None]
    save_file(tensors, os.path.join(folder, weights_name))
    ids = token_ids(lengths, c["max_position_embeddings"], c["vocab_size"], c["bos_token_id"], c["eos_token_id"],
                    [c["eos_token_id"], 0], gen)
    skips = list(range(1, c["num_hidden_layers"] + 1))
    save_file(references(model, ids, c["num_hidden_layers"], skips), os.path.join(folder, "reference.safetensors"))
    for act in extra_acts:
        other = CLIPTextModel(CLIPTextConfig(**{**config_dict, "hidden_act": act})).eval()
        other.load_state_dict(model.state_dict())
        save_file(references(other, ids, c["num_hidden_layers"], [1]), os.path.join(folder, f"reference_{act}.safetensors"))
    print(name, {k: list(v.shape) for k, v in tensors.items() if "layers" not in k or ".0." in k})


def tiny_config(layers, act):
    return dict(vocab_size=1000, hidden_size=64, intermediate_size=176, num_hidden_layers=layers, num_attention_heads=4,
                max_position_embeddings=77, hidden_act=act, layer_norm_eps=1e-5, projection_dim=32,
                bos_token_id=998, eos_token_id=999, pad_token_id=999)


def write_tiny():
    write_case("quick_gelu_f32", tiny_config(3, "quick_gelu"), torch.float32, "text_model.", "model.safetensors",
               lengths=[9, 77], extra_acts=["gelu_new"], seed=1)
    write_case("gelu_fp16", tiny_config(2, "gelu"), torch.float16, "", "model.fp16.safetensors",
               lengths=[31, 5], seed=2)


def write_full(folder):
    """CLIP ViT-L/14 text tower (SD 1.x / DeciDiffusion text_encoder), float16 weights."""
    config_dict = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                       projection_dim=768, bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
    gen = torch.Generator().manual_seed(3)
    os.makedirs(folder, exist_ok=True)
    config, model, stored = build(config_dict, gen, torch.float16)
    config.save_pretrained(folder)
    save_file({"text_model." + k: v.contiguous() for k, v in stored.items()}, os.path.join(folder, "model.safetensors"))
    ids = token_ids([12, 40], 77, 49408, 49406, 49407, [49407, 0], gen)
    save_file(references(model, ids, 12, [1]), os.path.join(folder, "reference.safetensors"))
    params = sum(v.numel() for k, v in stored.items() if not k.endswith("position_ids"))
    print(f"full-size text encoder: {params} parameters -> {folder}")
    bench(model, ids)


def bench(model, ids, runs=5):
    """torch float32 time of one batch-2 x 77 forward (min and median of `runs` after a warm-up)."""
    with torch.no_grad():
        model(input_ids=ids)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(input_ids=ids)
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"torch f32 batch 2 x 77 forward: min {times[0]:.3f} s, median {times[len(times) // 2]:.3f} s "
          f"({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    full_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser("~/.cache/decidiffusion/full/text_encoder")
    if len(sys.argv) > 1 and sys.argv[1] == "--full":
        write_full(full_dir)
    elif len(sys.argv) > 1 and sys.argv[1] == "--bench":
        from safetensors.torch import load_file
        bench(CLIPTextModel.from_pretrained(full_dir, dtype=torch.float32).eval(),
              load_file(os.path.join(full_dir, "reference.safetensors"))["input_ids"])
    else:
        write_tiny()
