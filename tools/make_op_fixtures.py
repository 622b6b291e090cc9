"""Writes Fixtures/ops/*.safetensors: inputs, weights and PyTorch's outputs for every kernel.

Tensors keep PyTorch's layouts (NCHW images, [out, in, kh, kw] conv weights); the Swift tests
convert. For the bf16 path each case also stores `expected_bf16`: the same op in float32 on inputs
and weights rounded to bfloat16, which is what a bf16-input / f32-accumulate kernel computes.

Run: tools/regen-fixtures.sh ops   (or: $(tools/venv.sh) tools/make_op_fixtures.py)
"""
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "ops")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)


def bf(t):
    return t.to(torch.bfloat16).to(torch.float32)


def save(name, **tensors):
    save_file({k: v.contiguous().float() for k, v in tensors.items()}, os.path.join(OUT, name + ".safetensors"))


def conv_case(name, n, cin, cout, h, w, k, stride, pad, bias=True, act=None, residual=False, pad_br=0):
    x = torch.randn(n, cin, h, w)
    wt = torch.randn(cout, cin, k, k) / (cin * k * k) ** 0.5
    b = torch.randn(cout) * 0.1 if bias else None

    def run(x, wt):
        if pad_br:
            x = F.pad(x, (0, pad_br, 0, pad_br))
        y = F.conv2d(x, wt, b, stride=stride, padding=pad)
        if act == "silu":
            y = F.silu(y)
        return y

    y, ybf = run(x, wt), run(bf(x), bf(wt))
    t = dict(x=x, weight=wt, expected=y, expected_bf16=ybf)
    if b is not None:
        t["bias"] = b
    if residual:
        r = torch.randn_like(y)
        t.update(residual=r, expected=y + r, expected_bf16=ybf + r)
    save(name, **t)


conv_case("conv3x3", 2, 32, 48, 9, 7, 3, 1, 1)
conv_case("conv1x1", 2, 40, 24, 6, 5, 1, 1, 0)
conv_case("conv3x3_s2", 2, 32, 32, 9, 8, 3, 2, 1)
conv_case("conv3x3_nobias_silu_res", 1, 16, 32, 8, 8, 3, 1, 1, bias=False, act="silu", residual=True)
conv_case("conv3x3_rgb", 1, 3, 16, 10, 10, 3, 1, 1)
conv_case("conv3x3_s2_pad0101", 2, 16, 16, 8, 10, 3, 2, 0, pad_br=1)  # the VAE encoder's downsampler


def linear_case(name, m, fin, fout, act=None, residual=False):
    x = torch.randn(m, fin)
    wt = torch.randn(fout, fin) / fin ** 0.5
    b = torch.randn(fout) * 0.1

    def run(x, wt):
        y = F.linear(x, wt, b)
        if act == "gelu":
            y = F.gelu(y)
        return y

    y, ybf = run(x, wt), run(bf(x), bf(wt))
    t = dict(x=x, weight=wt, bias=b, expected=y, expected_bf16=ybf)
    if residual:
        r = torch.randn_like(y)
        t.update(residual=r, expected=y + r, expected_bf16=ybf + r)
    save(name, **t)


linear_case("linear", 37, 64, 96)
linear_case("linear_gelu_res", 20, 48, 80, act="gelu", residual=True)

# GroupNorm with the resnet's per-(n, c) bias added first, optional SiLU; offset mean to test
# numerical robustness.
x = torch.randn(2, 64, 6, 5) * 3 + 5
g, b = torch.randn(64), torch.randn(64)
pb = torch.randn(2, 64)
y = F.group_norm(x + pb[:, :, None, None], 32, g, b, eps=1e-5)
save("group_norm", x=x, weight=g, bias=b, pre_bias=pb, expected=y, expected_silu=F.silu(y))
x = torch.randn(1, 48, 7, 3)
g, b = torch.randn(48), torch.randn(48)
save("group_norm_eps6", x=x, weight=g, bias=b, expected=F.group_norm(x, 16, g, b, eps=1e-6))

x = torch.randn(3, 11, 72) * 2 + 1
g, b = torch.randn(72), torch.randn(72)
save("layer_norm", x=x, weight=g, bias=b, expected=F.layer_norm(x, (72,), g, b, eps=1e-5))

x = torch.randn(5, 77) * 4
save("softmax", x=x, expected=torch.softmax(x * 0.3, dim=-1))

x = torch.randn(1000) * 4
x[:8] = torch.tensor([0.0, -0.0, 1e-8, -30.0, 30.0, -100.0, 100.0, 3.0])
save("activations", x=x, gelu=F.gelu(x), gelu_tanh=F.gelu(x, approximate="tanh"), silu=F.silu(x),
     quick_gelu=x * torch.sigmoid(1.702 * x))

x = torch.randn(3, 10, 2 * 24)
a, gate = x.chunk(2, dim=-1)
save("geglu", x=x, expected=a * F.gelu(gate))

x = torch.randn(2, 8, 5, 3)
save("upsample", x=x, expected=F.interpolate(x, scale_factor=2.0, mode="nearest"))

a, b2 = torch.randn(2, 6, 4, 3), torch.randn(2, 10, 4, 3)
save("concat", a=a, b=b2, expected=torch.cat([a, b2], dim=1))


def attn_case(name, batch, nq, nk, heads, d, causal=False):
    c = heads * d
    q, k, v = torch.randn(batch, nq, c), torch.randn(batch, nk, c), torch.randn(batch, nk, c)

    sh = lambda t: t.view(batch, -1, heads, d).transpose(1, 2)
    o = F.scaled_dot_product_attention(sh(q), sh(k), sh(v), is_causal=causal).transpose(1, 2).reshape(batch, nq, c)
    # bf16 path: q, k, v and the probabilities are rounded to bf16; products summed in f32.
    s = sh(bf(q)) @ sh(bf(k)).transpose(-1, -2) / d ** 0.5
    if causal:
        s = s.masked_fill(torch.ones(nq, nk, dtype=torch.bool).triu(1), float("-inf"))
    p = torch.softmax(s, dim=-1)
    obf = (bf(p) @ sh(bf(v))).transpose(1, 2).reshape(batch, nq, c)
    save(name, q=q, k=k, v=v, expected=o, expected_bf16=obf)


attn_case("attention_self", 2, 200, 200, 4, 16)
attn_case("attention_cross", 2, 64, 77, 8, 8)
attn_case("attention_odd", 1, 37, 19, 2, 24)
attn_case("attention_causal", 2, 77, 77, 4, 16, causal=True)
print("wrote", sorted(os.listdir(OUT)))
