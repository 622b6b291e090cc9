#!/usr/bin/env python3
"""PyTorch reference for DeciDiffusion's U-Net-NAS ("flexible_unet"), the test oracle of the Swift
`UNetNAS`.

There is no diffusers class for this model, so it is written here from
shared/spec/decidiffusion-v1.md with diffusers' own building blocks (ResnetBlock2D,
Transformer2DModel, Downsample2D, Upsample2D, Timesteps, TimestepEmbedding). Parameter names equal
the checkpoint's keys (`down_blocks.{i}.modules_list.{j}...`, `down_blocks.{i}.downsamplers.0.conv`,
`mid_block.modules_list.{j}`, `mid_block.upsamplers.0.conv`, `up_blocks.{i}.modules_list.{j}`,
`up_blocks.{i}.upsamplers.0.conv`, `conv_in`, `time_embedding.linear_{1,2}`, `conv_norm_out`,
`conv_out`), so `load_state_dict(strict=True)` accepts `flexible_unet/diffusion_pytorch_model.safetensors`.

The model is built from the checkpoint's config.json: the outer keys are read as
`UNet2DConditionModel` reads them (with its defaults: the published file has none, so base width
320 = block_out_channels[0], time embedding 4 x 320, in/out 4 channels, GroupNorm 32 groups eps 1e-5
for the output head); the `configurations` object gives the NAS blocks.

Interpretation where the spec leaves room (the published code behaves the same way):
  * `num_attention_heads` is the head count of every attention (down, mid and up): head_dim = C / 8.
  * Mid-block modules all work at `down_blocks_out_channels[-1]` (in = out, no conv_shortcut).
  * A down block's first module at pair index 0 takes `in` channels; a resnet there maps in -> out.
    Every other module, and an attention at pair 0 (only possible when in == out), is at `out`.
  * Up block i mirrors down block n-1-i: `in` = down_blocks_in_channels[n-1-i], `out` =
    down_blocks_out_channels[n-1-i], `prev_output_channels[i]` is the width arriving from below.
    Resnet j (pair index) takes (j == 0 ? prev : out) + (j == n_res - 1 ? in : out) channels.
  * Inner GroupNorms use 32 groups (the published blocks' fixed default); resnets use `resnet_eps`,
    transformer norms eps 1e-6 (diffusers' Transformer2DModel).
  * mix_block_in_forward false: a stable sort puts every resnet before every attention (mid block
    included, whose leading resnet stays first, so the "apply modules_list[0] first" quirk still
    applies to a resnet).
  * Skips are handed to up blocks the way UNet2DConditionModel.forward slices them: up block i takes
    the newest n_res skips (and, Python slicing, an up block without resnets swallows them all).

Usage as a library:  model = UNetNAS(json.load(open("config.json")))
Check the published parameter count:  python tools/unet_nas_reference.py shared/spec/flexible_unet.config.json
"""
import itertools
import json
import sys

import torch
from torch import nn

from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResnetBlock2D, Downsample2D, Upsample2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel

INNER_GROUPS = 32

# Defaults of diffusers' UNet2DConditionModel for the outer keys that survive in the NAS model.
OUTER_DEFAULTS = {
    "in_channels": 4,
    "out_channels": 4,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "block_out_channels": [320, 640, 1280, 1280],
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "time_embedding_dim": None,
}


def _pairs(n_res, n_att):
    """(has_resnet, has_attention) for each pair index j < max(n_res, n_att)."""
    return list(itertools.zip_longest([True] * n_res, [True] * n_att, fillvalue=False))


def _order(modules, mix):
    # Stable sort: resnets first when the block is not mixed.
    if mix:
        return modules
    return sorted(modules, key=lambda m: 0 if isinstance(m, ResnetBlock2D) else 1)


class _Ctx:
    def __init__(self, c):
        self.temb = c["temb_dim"]
        self.eps = c["resnet_eps"]
        self.act = c["resnet_act_fn"]
        self.heads = c["num_attention_heads"]
        self.cross = c["cross_attention_dim"]
        self.mix = c["mix_block_in_forward"]

    def resnet(self, cin, cout):
        return ResnetBlock2D(in_channels=cin, out_channels=cout, temb_channels=self.temb, eps=self.eps,
                             groups=INNER_GROUPS, non_linearity=self.act)

    def attention(self, ch):
        return Transformer2DModel(num_attention_heads=self.heads, attention_head_dim=ch // self.heads, in_channels=ch,
                                  num_layers=1, cross_attention_dim=self.cross, norm_num_groups=INNER_GROUPS,
                                  use_linear_projection=False)


class NASDownBlock(nn.Module):
    def __init__(self, ctx, cin, cout, n_res, n_att, add_downsample, last):
        super().__init__()
        modules = []
        for j, (has_r, has_a) in enumerate(_pairs(n_res, n_att)):
            width_in = cin if j == 0 else cout
            if has_r:
                modules.append(ctx.resnet(width_in, cout))
            if has_a:
                modules.append(ctx.attention(cout))
        self.modules_list = nn.ModuleList(_order(modules, ctx.mix))
        self.downsamplers = nn.ModuleList([Downsample2D(cout, use_conv=True, out_channels=cout, padding=1, name="op")]) \
            if add_downsample else None
        self.last = last

    def forward(self, h, temb, context):
        skips = []
        for m in self.modules_list:
            if isinstance(m, ResnetBlock2D):
                h = m(h, temb)
                skips.append(h)
            else:
                h = m(h, encoder_hidden_states=context, return_dict=False)[0]
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            if not self.last:
                skips.append(h)
        return h, skips


class NASMidBlock(nn.Module):
    def __init__(self, ctx, ch, n_res, n_att, add_upsample):
        super().__init__()
        modules = [ctx.resnet(ch, ch)]
        for has_r, has_a in _pairs(n_res, n_att):
            if has_a:
                modules.append(ctx.attention(ch))
            if has_r:
                modules.append(ctx.resnet(ch, ch))
        self.modules_list = nn.ModuleList(_order(modules, ctx.mix))
        self.upsamplers = nn.ModuleList([Upsample2D(ch, use_conv=True, out_channels=ch)]) if add_upsample else None

    def forward(self, h, temb, context):
        # The published block applies its first module once more before walking the whole list.
        h = self.modules_list[0](h, temb)
        for m in self.modules_list:
            if isinstance(m, ResnetBlock2D):
                h = m(h, temb)
            else:
                h = m(h, encoder_hidden_states=context, return_dict=False)[0]
        if self.upsamplers is not None:
            h = self.upsamplers[0](h)
        return h


class NASUpBlock(nn.Module):
    def __init__(self, ctx, cin, cout, prev, n_res, n_att, add_upsample):
        super().__init__()
        modules = []
        for j, (has_r, has_a) in enumerate(_pairs(n_res, n_att)):
            skip = cin if j == n_res - 1 else cout
            width_in = prev if j == 0 else cout
            if has_r:
                modules.append(ctx.resnet(width_in + skip, cout))
            if has_a:
                modules.append(ctx.attention(cout))
        self.modules_list = nn.ModuleList(_order(modules, ctx.mix))
        self.num_resnets = n_res
        self.upsamplers = nn.ModuleList([Upsample2D(cout, use_conv=True, out_channels=cout)]) if add_upsample else None

    def forward(self, h, skips, temb, context):
        skips = list(skips)
        for m in self.modules_list:
            if isinstance(m, ResnetBlock2D):
                h = m(torch.cat([h, skips.pop()], dim=1), temb)
            else:
                h = m(h, encoder_hidden_states=context, return_dict=False)[0]
        if self.upsamplers is not None:
            h = self.upsamplers[0](h)
        return h


class UNetNAS(nn.Module):
    """The U-Net-NAS denoiser. `forward(sample NCHW, timesteps [n], context [n, t, d]) -> NCHW`."""

    def __init__(self, config):
        super().__init__()
        outer = dict(OUTER_DEFAULTS)
        outer.update({k: v for k, v in config.items() if k in OUTER_DEFAULTS})
        c = config["configurations"]
        ctx = _Ctx(c)
        base = outer["block_out_channels"][0]
        temb_width = outer["time_embedding_dim"] or 4 * base
        if temb_width != c["temb_dim"]:
            raise ValueError(f"time embedding width {temb_width} != configurations.temb_dim {c['temb_dim']}")
        if c["down_blocks_in_channels"][0] != base:
            raise ValueError("down_blocks_in_channels[0] must equal block_out_channels[0]")

        self.conv_in = nn.Conv2d(outer["in_channels"], base, kernel_size=3, padding=1)
        self.time_proj = Timesteps(base, outer["flip_sin_to_cos"], outer["freq_shift"])
        self.time_embedding = TimestepEmbedding(base, temb_width, act_fn=outer["act_fn"])

        ins, outs = c["down_blocks_in_channels"], c["down_blocks_out_channels"]
        n = len(ins)
        self.down_blocks = nn.ModuleList([
            NASDownBlock(ctx, ins[i], outs[i], c["down_blocks_num_resnets"][i], c["down_blocks_num_attentions"][i],
                         c["add_downsample"][i], last=(i == n - 1))
            for i in range(n)
        ])
        self.mid_block = NASMidBlock(ctx, outs[-1], c["mid_num_resnets"], c["mid_num_attentions"],
                                     c["add_upsample_mid_block"])
        self.up_blocks = nn.ModuleList([
            NASUpBlock(ctx, ins[n - 1 - i], outs[n - 1 - i], c["prev_output_channels"][i], c["up_blocks_num_resnets"][i],
                       c["up_blocks_num_attentions"][i], c["add_upsample"][i])
            for i in range(len(c["up_blocks_num_resnets"]))
        ])
        self.conv_norm_out = nn.GroupNorm(outer["norm_num_groups"], base, eps=outer["norm_eps"])
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(base, outer["out_channels"], kernel_size=3, padding=1)
        self.latent_multiple = 2 ** sum(1 for d in c["add_downsample"] if d)

    def forward(self, sample, timesteps, encoder_hidden_states):
        if any(s % self.latent_multiple for s in sample.shape[-2:]):
            raise ValueError(f"latent sides {tuple(sample.shape[-2:])} must be multiples of {self.latent_multiple}")
        t = timesteps.reshape(-1).to(sample.device)
        if t.numel() == 1:
            t = t.expand(sample.shape[0])
        emb = self.time_embedding(self.time_proj(t).to(sample.dtype))
        h = self.conv_in(sample)
        skips = [h]
        for block in self.down_blocks:
            h, s = block(h, emb, encoder_hidden_states)
            skips += s
        h = self.mid_block(h, emb, encoder_hidden_states)
        for block in self.up_blocks:
            k = block.num_resnets
            # UNet2DConditionModel.forward's slicing, including its k == 0 behaviour.
            mine, skips = skips[-k:], skips[:-k]
            h = block(h, mine, emb, encoder_hidden_states)
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))


def parameter_count(config):
    with torch.device("meta"):
        model = UNetNAS(config)
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "shared/spec/flexible_unet.config.json"
    with open(path) as f:
        cfg = json.load(f)
    with torch.device("meta"):
        m = UNetNAS(cfg)
    total = sum(p.numel() for p in m.parameters())
    print(f"{path}: {total:,} parameters")
    for name in ["conv_in", "time_embedding", "conv_norm_out", "conv_out"]:
        print(f"  {name}: {sum(p.numel() for p in getattr(m, name).parameters()):,}")
    for group in ["down_blocks", "up_blocks"]:
        for i, b in enumerate(getattr(m, group)):
            print(f"  {group}.{i}: {sum(p.numel() for p in b.parameters()):,}")
    print(f"  mid_block: {sum(p.numel() for p in m.mid_block.parameters()):,}")
