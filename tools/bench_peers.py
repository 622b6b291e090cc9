#!/usr/bin/env python3
"""Side-by-side benchmark: the engine against its peers, PyTorch (diffusers modules) and OpenVINO
(the same torch modules converted with openvino.convert_model), on the same workloads in the same
run, with the ratio engine/peer (< 1: the engine is faster). Ratios, not absolute seconds, are
what stays comparable on a noisy shared machine.

    PY=$(tools/venv.sh)
    swift build -c release --product decidiffusion
    $PY tools/bench_peers.py [--sizes 256,512] [--threads N] [--repeats R] [--peers torch,openvino]
                             [--precisions f32,bf16] [--models nas,sd15,vae,clip]
                             [--engine .build/release/decidiffusion | none] [--json-out FILE]

Workloads (random weights; timing does not depend on the values):
  nas   U-Net-NAS denoiser call, batch 2 (guidance), latent side/8, 77x768 text states
  sd15  SD-1.5 UNet, same shapes
  vae   VAE decode, one 4 x side/8 latent -> side x side image
  clip  CLIP text encoder, batch 2 x 77 tokens (the engine encodes the two prompts as two
        batch-1 calls and includes tokenization; size does not apply)

Order, per precision: the engine CLI first (`bench pipeline --json`, its own process, while this
process holds no model), then per model one torch module and one compiled OpenVINO model, timed
alternately (torch, openvino, torch, ...) after a warm-up call each, best of --repeats. The
engine's UNet figure is its per-step time (one batch-2 call plus scheduler and guidance, best of
--repeats runs of --engine-steps steps).

OpenVINO gets the f32 module (converted once per run, kept as IR in a temporary folder) and the
precision as INFERENCE_PRECISION_HINT; on a CPU without native bf16 it may ignore the hint, which
the table shows in its "ov ran" column. torch bf16 means the module and inputs cast to bfloat16;
where torch has no native bf16 kernels (an AVX2-only CPU: its bf16 convolutions run a scalar
reference GEMM, a VAE decode at 256 px takes over 20 minutes on one thread) a short probe at start
measures the bf16/f32 slowdown of a convolution and a linear layer, and torch bf16 rows of
workloads built on that op are skipped when it exceeds --torch-bf16-max-slowdown. A peer whose
warm-up call alone exceeds --max-call-s is reported from that one call (marked ~) without repeats.
"""
import argparse
import gc
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
SPEC = os.path.join(HERE, "..", "..", "shared", "spec")
CONFIGS = [SPEC, os.path.join(HERE, "..", "Resources", "configs")]

# Stable Diffusion's VAE and CLIP ViT-L/14 text encoder (what DeciDiffusion ships), as configs.
VAE_CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32,
                  block_out_channels=[128, 256, 512, 512], act_fn="silu", sample_size=512, scaling_factor=0.18215,
                  down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4)
CLIP_CONFIG = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                   max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768)
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}
MODELS = ["nas", "sd15", "vae", "clip"]
TITLES = {"nas": "U-Net-NAS step b2", "sd15": "SD-1.5 UNet step b2", "vae": "VAE decode", "clip": "CLIP text enc b2x77"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load_config(name):
    for d in CONFIGS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
    raise FileNotFoundError(f"{name} in {CONFIGS}")


class UNetCall(nn.Module):
    """(sample, timestep, encoder_hidden_states) -> noise prediction, a plain tensor either way."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        out = self.unet(sample, timestep, encoder_hidden_states)
        return out if torch.is_tensor(out) else out[0]


class Decode(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z, return_dict=False)[0]


class Encode(nn.Module):
    def __init__(self, text_model):
        super().__init__()
        self.text_model = text_model

    def forward(self, input_ids):
        return self.text_model(input_ids=input_ids, return_dict=False)[0]


def build(model):
    """The f32 torch module of a workload (eval mode), seeded random weights."""
    torch.manual_seed(0)
    if model == "nas":
        from unet_nas_reference import UNetNAS
        m = UNetCall(UNetNAS(load_config("flexible_unet.config.json")))
    elif model == "sd15":
        from diffusers import UNet2DConditionModel
        cfg = load_config("sd15_unet.config.json")
        m = UNetCall(UNet2DConditionModel(**{k: v for k, v in cfg.items() if not k.startswith("_")}))
    elif model == "vae":
        from diffusers import AutoencoderKL
        vae = AutoencoderKL(**VAE_CONFIG)
        vae.encoder = None  # decode only: the encoder is never called
        vae.quant_conv = None
        m = Decode(vae)
    else:
        from transformers import CLIPTextConfig, CLIPTextModel
        m = Encode(CLIPTextModel(CLIPTextConfig(**CLIP_CONFIG)))
    return m.eval()


def inputs(model, size):
    """Example inputs (f32 / int64) of a workload at an image size."""
    g = torch.Generator().manual_seed(0)
    side = size // 8
    if model in ("nas", "sd15"):
        return (torch.randn(2, 4, side, side, generator=g), torch.tensor([999.0, 999.0]),
                torch.randn(2, 77, 768, generator=g))
    if model == "vae":
        return (torch.randn(1, 4, side, side, generator=g),)
    return (torch.randint(0, 49408, (2, 77), generator=g),)


def torch_bf16_slowdown(repeats=3):
    """bf16 time / f32 time of a 3x3 convolution and of a linear layer at small shapes."""
    def best(fn):
        fn()
        return min(timed(fn) for _ in range(repeats))
    out = {}
    for op, make, shape in [("conv", lambda: nn.Conv2d(128, 128, 3, padding=1), (1, 128, 32, 32)),
                            ("linear", lambda: nn.Linear(768, 3072), (154, 768))]:
        torch.manual_seed(0)
        layer, x = make().eval(), torch.randn(*shape)
        f32 = best(lambda: layer(x))
        layer, x = layer.to(torch.bfloat16), x.to(torch.bfloat16)
        out[op] = best(lambda: layer(x)) / f32
    return out


OPS = {"nas": "conv", "sd15": "conv", "vae": "conv", "clip": "linear"}


def cast(xs, dtype):
    return tuple(x.to(dtype) if x.is_floating_point() else x for x in xs)


# ---------------------------------------------------------------------------------------- engine

def run_engine(binary, precision, sizes, models, threads, repeats, steps):
    """{(model, size): seconds} from `decidiffusion bench pipeline --json`."""
    cmd = [binary, "bench", "pipeline", "--json", "--precision", precision, "--measure-steps", str(steps),
           "--repeats", str(repeats), "--threads", str(threads), "--size", *[str(s) for s in sizes]]
    cmd += ["--models", *(["deci"] if set(models) & {"nas", "vae", "clip"} else []), *(["sd15"] if "sd15" in models else [])]
    log("engine: " + " ".join(cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log(proc.stderr[-4000:])
        raise SystemExit(f"engine failed with status {proc.returncode}")
    out = {}
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        s = r["size"]
        if r["model"] == "deci":
            out[("nas", s)] = r["unetStepSeconds"]
            out[("vae", s)] = r["vaeDecodeSeconds"]
            out[("clip", s)] = r["textEncoderSeconds"]
            out[("engine-rss", s)] = r["peakRSSBytes"]
        elif r["model"] == "sd15":
            out[("sd15", s)] = r["unetStepSeconds"]
    log(f"engine {precision}: {time.perf_counter() - t0:.0f} s wall")
    return out


# -------------------------------------------------------------------------------------- openvino

class OpenVINO:
    def __init__(self, threads):
        import openvino as ov
        self.ov = ov
        self.core = ov.Core()
        self.threads = threads
        self.tmp = tempfile.TemporaryDirectory(prefix="bench_peers_ov_")
        self.ir = {}

    @property
    def version(self):
        return self.ov.__version__

    def ir_path(self, model, module, example):
        """IR of the f32 module, converted once per run (saved uncompressed, so the IR owns its
        weights and the torch module may be cast or freed afterwards)."""
        if model not in self.ir:
            t0 = time.perf_counter()
            converted = self.ov.convert_model(module, example_input=example)
            path = os.path.join(self.tmp.name, f"{model}.xml")
            self.ov.save_model(converted, path, compress_to_fp16=False)
            del converted
            gc.collect()
            self.ir[model] = path
            log(f"openvino: converted {model} in {time.perf_counter() - t0:.0f} s")
        return self.ir[model]

    def compile(self, path, example, precision):
        m = self.core.read_model(path)
        m.reshape({m.inputs[i]: self.ov.PartialShape(list(x.shape)) for i, x in enumerate(example)})
        config = {"INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": precision,
                  "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        t0 = time.perf_counter()
        compiled = self.core.compile_model(m, "CPU", config)
        ran = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        ran = {"<Type: 'float32'>": "f32", "<Type: 'bfloat16'>": "bf16", "<Type: 'float16'>": "f16"}.get(ran, ran)
        log(f"openvino: compiled {os.path.basename(path)} {[list(x.shape) for x in example]} hint {precision} -> "
            f"{ran} in {time.perf_counter() - t0:.0f} s")
        return compiled, ran


# ------------------------------------------------------------------------------------------ main

def time_peers(model, size, prec, module, ov, ir, repeats, max_call_s):
    """Best seconds per peer at one size, alternating the peers call by call after a warm-up call
    each; the compiled OpenVINO model lives only in this frame, so it is freed on return."""
    example = inputs(model, size)
    runs = []  # (peer, fn)
    if module is not None:
        targs = cast(example, DTYPES[prec])
        runs.append(("torch", lambda: module(*targs)))
    ov_ran = None
    if ov:
        compiled, ov_ran = ov.compile(ir, example, prec)
        request = compiled.create_infer_request()
        feed = [x.numpy() for x in example]
        runs.append(("openvino", lambda: request.infer(feed, share_inputs=True)))
    best, single = {}, []
    for peer, fn in runs:  # warm-up
        w = timed(fn)
        if w > max_call_s:
            best[peer] = w
            single.append(peer)
    for _ in range(repeats):
        for peer, fn in runs:
            if peer not in single:
                best[peer] = min(best.get(peer, float("inf")), timed(fn))
    return best, single, ov_ran


def vm_hwm_gib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def fmt(x, w=9, p=3):
    return f"{x:{w}.{p}f}" if x is not None else " " * (w - 1) + "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--peers", default="torch,openvino")
    ap.add_argument("--precisions", default="f32,bf16")
    ap.add_argument("--models", default="nas,sd15,vae", help=f"of {','.join(MODELS)}")
    ap.add_argument("--engine", default=os.path.join(HERE, "..", ".build", "release", "decidiffusion"),
                    help="decidiffusion executable, or 'none' to time only the peers")
    ap.add_argument("--engine-steps", type=int, default=1, help="denoising steps per engine timing run")
    ap.add_argument("--json-out", help="append one JSON object per row to this file")
    ap.add_argument("--torch-bf16-max-slowdown", type=float, default=10.0,
                    help="skip torch bf16 for workloads whose op (conv, linear) probes more than this many times "
                         "slower in bf16 than in f32 (0: never skip)")
    ap.add_argument("--max-call-s", type=float, default=120.0,
                    help="a peer whose warm-up call takes longer is reported from that call, without repeats")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    peers = [p for p in a.peers.split(",") if p]
    precisions = a.precisions.split(",")
    models = a.models.split(",")
    for name, got, allowed in [("peer", peers, ["torch", "openvino"]), ("precision", precisions, list(DTYPES)),
                               ("model", models, MODELS)]:
        bad = [x for x in got if x not in allowed]
        if bad:
            ap.error(f"unknown {name} {bad}; choose from {allowed}")
    engine = None if a.engine == "none" else os.path.abspath(a.engine)
    if engine and not os.access(engine, os.X_OK):
        ap.error(f"{engine} not found: swift build -c release --product decidiffusion (or --engine none)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the temporary IR folder is removed
    warnings.filterwarnings("ignore")  # tracer and deprecation warnings from the conversion
    try:
        import transformers
        transformers.logging.set_verbosity_error()
    except ImportError:
        pass
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    slowdown = torch_bf16_slowdown() if "torch" in peers and "bf16" in precisions else {}
    ov = OpenVINO(a.threads) if "openvino" in peers else None
    env = {"threads": a.threads, "repeats": a.repeats, "torch": torch.__version__,
           "openvino": ov.version if ov else None, "cpu": cpu_name(),
           "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "loadavg_start": os.getloadavg()[0]}
    log(f"threads {a.threads}, repeats {a.repeats} (best of), torch {env['torch']} ({env['torch_cpu_capability']}), "
        f"openvino {env['openvino']}, load average {env['loadavg_start']:.2f}")
    if ov:
        log(f"openvino CPU capabilities: {ov.core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')}")
    if slowdown:
        env["torch_bf16_slowdown"] = slowdown
        log("torch bf16/f32 time on a probe: " + ", ".join(f"{k} {v:.1f}x" for k, v in slowdown.items()))

    rows, engine_rss = [], {}
    for prec in precisions:
        eng = run_engine(engine, prec, sizes, models, a.threads, a.repeats, a.engine_steps) if engine else {}
        if eng:
            engine_rss[prec] = max(v for k, v in eng.items() if k[0] == "engine-rss") / 2**30
        for model in models:
            model_sizes = sizes[:1] if model == "clip" else sizes
            torch_note = None
            if prec == "bf16" and a.torch_bf16_max_slowdown > 0 and slowdown.get(OPS[model], 0) > a.torch_bf16_max_slowdown:
                torch_note = (f"skipped: torch bf16 {OPS[model]} runs {slowdown[OPS[model]]:.0f}x slower than f32 on this CPU "
                              "(no native bf16 kernels); --torch-bf16-max-slowdown 0 runs it anyway")
                log(f"torch {model} bf16 {torch_note}")
            run_torch = "torch" in peers and torch_note is None
            module = build(model) if run_torch or (ov and model not in ov.ir) else None
            ir = ov.ir_path(model, module, inputs(model, min(model_sizes))) if ov else None
            if run_torch:
                module = module.to(DTYPES[prec])
            else:
                module = None
                gc.collect()
            for size in model_sizes:
                best, single, ov_ran = time_peers(model, size, prec, module, ov, ir, a.repeats, a.max_call_s)
                row = dict(workload=model, title=TITLES[model], size=None if model == "clip" else size, precision=prec,
                           engine_s=eng.get((model, size)), torch_s=best.get("torch"), openvino_s=best.get("openvino"),
                           openvino_ran=ov_ran, single_call=single, torch_note=torch_note, **env)
                row["engine_over_torch"] = row["engine_s"] / row["torch_s"] if row["engine_s"] and row["torch_s"] else None
                row["engine_over_openvino"] = (row["engine_s"] / row["openvino_s"]
                                               if row["engine_s"] and row["openvino_s"] else None)
                row["loadavg"] = os.getloadavg()[0]
                rows.append(row)
                log(f"{model} {size} {prec}: engine {row['engine_s']}, torch {row['torch_s']}, openvino {row['openvino_s']}")
            del module
            gc.collect()

    print(f"\n{a.threads} threads, best of {a.repeats}; torch {env['torch']}, openvino {env['openvino']}; "
          f"ratio = engine/peer, < 1: engine faster")
    print(f"{'workload':22} {'size':>4} {'prec':4} {'engine s':>9} {'torch s':>9} {'openvino s':>10} {'ov ran':>6} "
          f"{'eng/torch':>9} {'eng/ov':>7}")
    for r in rows:
        size = "-" if r["size"] is None else str(r["size"])
        ran = r["openvino_ran"] or "-"
        if r["openvino_ran"] and r["openvino_ran"] != r["precision"]:
            ran += "*"
        ts, os_ = fmt(r["torch_s"]), fmt(r["openvino_s"], 10)
        if "torch" in r["single_call"]:
            ts = "~" + ts[1:]
        if "openvino" in r["single_call"]:
            os_ = "~" + os_[1:]
        print(f"{r['title']:22} {size:>4} {r['precision']:4} {fmt(r['engine_s'])} {ts} "
              f"{os_} {ran:>6} {fmt(r['engine_over_torch'], 9, 2)} {fmt(r['engine_over_openvino'], 7, 2)}")
    notes = sorted({f"torch {r['workload']} bf16 {r['torch_note']}" for r in rows if r["torch_note"]})
    for n in notes:
        print(n)
    if any(r["single_call"] for r in rows):
        print(f"~ one call (the warm-up took over --max-call-s {a.max_call_s:g} s), not a best of repeats")
    if any(r["openvino_ran"] and r["openvino_ran"] != r["precision"] for r in rows):
        print("* OpenVINO ignored the precision hint (INFERENCE_PRECISION_HINT read back from the compiled model): "
              "this CPU has no native bf16, so its 'bf16' rows ran in that precision.")
    if "clip" in models and engine:
        print("note: the engine's text encoder figure is two batch-1 calls plus tokenization; the peers run one batch-2 call.")
    print(f"load average: {env['loadavg_start']:.2f} at start, {os.getloadavg()[0]:.2f} at end "
          f"(other jobs on this machine share the cores; compare ratios, not seconds)")
    rss = [f"this process {vm_hwm_gib():.1f} GiB"] + [f"engine {prec} {gib:.1f} GiB" for prec, gib in engine_rss.items()]
    print("peak RSS: " + ", ".join(rss))
    if a.json_out:
        with open(a.json_out, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
