"""Side-by-side benchmark: data2vec.cpp vs PyTorch eager, ONNX Runtime and OpenVINO, same weights, same input, same threads.

    ~/.cache/d2v-ref/bin/python weights_tools/bench.py audio    # base Data2VecAudioModel on jfk.wav (11 s)
    ~/.cache/d2v-ref/bin/python weights_tools/bench.py text     # base Data2VecTextModel, 128 and 512 tokens
    ~/.cache/d2v-ref/bin/python weights_tools/bench.py vision   # base ForImageClassification 224^2, ForSemanticSegmentation 640^2
    ~/.cache/d2v-ref/bin/python weights_tools/bench.py text --contention   # goal 2: ours beside one busy process

Each builds the model from Transformers' default (base-size) config with seeded random weights,
saves and converts it with convert.py (f32, and bf16 / q8 where convert.py has --outtype), and for
each thread count, batch 1, times: PyTorch (torch.no_grad, eager mode, default attention), ONNX
Runtime, OpenVINO at f32 and at its default precision, and `d2v-bench --serve` for each of our
files. The runs are interleaved (one run of every engine per round, median over the rounds) so that
a change in machine load hits all columns alike. It prints the medians, the ratios their time / ours
(> 1 means we are faster), our achieved GFLOP/s with its share of the host's matmul peak, and our
peak RSS beside the model file size. It also checks that the C++ output (audio) and ORT's and
OpenVINO's outputs (every case) equal PyTorch's on that input (max abs diff).
`--tiny` swaps the base configs for small ones (same inputs) to try the script out quickly.

FLOPs are counted analytically from the config (matrix products, convolutions, attention; the
multiply-add counts 2; norms, activations and softmax are left out) and checked against PyTorch's
FlopCounterMode on the same forward. The segmentation count leaves out the auxiliary FCN head, which
only feeds the training loss: we skip it, Transformers runs it, and the ONNX export drops it.

The host part: `lscpu`'s model name and the ISA flags that decide the kernels, the ISA oneDNN
reports (DNNL_VERBOSE=1), and oneDNN's matmul peak (`d2v-bench --matmul-peak`, 1024x1024x4096 with
prepacked weights) at f32, bf16 and u8*s8 for each thread count.

ONNX Runtime: the model is exported with torch.onnx.export (fixed input shapes, batch 1) and run on
the CPUExecutionProvider with intra_op_num_threads = threads, inter_op_num_threads = 1 and
ORT_ENABLE_ALL. OpenVINO: the same ONNX file on the CPU device with INFERENCE_NUM_THREADS = threads
and PERFORMANCE_HINT = LATENCY; once with INFERENCE_PRECISION_HINT = f32 and once with its default,
whose precision the compiled model reports (bf16 on CPUs with AVX512_BF16 or AMX). Both are
optional: a missing package skips its columns. Tested with torch 2.15.0, transformers 5.24,
onnxruntime 1.32.0, openvino 2026.4.1, onnx 1.23.2, onnxscript 0.7.2:

    ~/.cache/d2v-ref/bin/pip install onnxruntime openvino onnx onnxscript

--contention (goal 2 of the performance issue): times our f32 file only, idle at 1 and 2 threads,
then again while one busy process runs (`stress-ng --cpu 1` if installed, else a spinning Python
process that the script starts and always stops): as our programs run (short OpenMP spin,
examples/omp_policy.cpp, and the per-pass thread count, src/threads.cpp), with the thread count
fixed (D2V_ADAPTIVE_THREADS=0), and with libgomp's default spin and fixed threads.

Needs the reference venv (torch + transformers); it is not part of the build or the tests.
"""
import argparse
import copy
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

try:
    import onnxruntime
except ImportError:
    onnxruntime = None
try:
    import openvino
except ImportError:
    openvino = None

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.join(REPO, "..", "shared", "data")
# --tiny: a few small layers instead of base size, to check the script itself in seconds.
TINY = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37)
# Our reduced-precision files, by convert.py --outtype name; the matmul peak each is measured against.
OUTTYPES = {"f32": "f32", "bf16": "bf16", "q8": "s8"}
ISA_FLAGS = ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "avx512_fp16")
PAUSE_S = 0.05  # between engines: lets the last one's spinning worker threads go to sleep


def fmt(x, spec=".1f", missing="n/a"):
    return missing if x is None else format(x, spec)


def ratio(theirs, ours):
    return None if theirs is None or ours is None else theirs / ours


# ---------------------------------------------------------------- host

def host_report(build, threads):
    """Prints the CPU, its ISA flags and oneDNN's ISA; returns the matmul peaks {(dtype, threads): GFLOP/s}."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s*(.+)", lscpu)
    flags = set((re.search(r"Flags:\s*(.+)", lscpu) or re.search("()", "")).group(1).split())
    print(f"CPU: {model.group(1).strip() if model else '?'}, {os.cpu_count()} logical CPUs; "
          + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ISA_FLAGS))
    bench = os.path.join(build, "d2v-bench")
    verbose = subprocess.run([bench, "--matmul-peak", "-t", "1"], capture_output=True, text=True,
                             env={**os.environ, "DNNL_VERBOSE": "1"})
    info = [l for l in verbose.stdout.splitlines() if re.match(r"(dnnl|onednn)_verbose,info", l)]
    print("oneDNN: " + "; ".join(l.split(",", 2)[2] for l in info[:3]))
    peaks = {}
    for dtype in OUTTYPES.values():
        for t in threads:
            out = subprocess.run([bench, "--matmul-peak", "--dtype", dtype, "-t", str(t)], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"matmul peak {dtype}: n/a ({out.stderr.strip()})")
                continue
            r = json.loads(out.stdout)
            peaks[(dtype, t)] = r["gflops"]
            print(f"matmul peak {dtype:>4} {t} thread(s): {r['gflops']:7.1f} GFLOP/s "
                  f"({r['m']}x{r['k']}x{r['n']}, oneDNN {r['onednn_version']} {r['impl']}, ISA {r['onednn_isa']})")
    return peaks


# ---------------------------------------------------------------- FLOPs

def encoder_flops(layers, tokens, hidden, inter):
    """Transformer layers: Q, K, V, output projections, the two FFN products, scores and context."""
    L, H = tokens, hidden
    return layers * (8 * L * H * H + 4 * L * H * inter + 4 * L * L * H)


def text_flops(c, tokens):
    pooler = 2 * c.hidden_size * c.hidden_size  # dense on the first token
    return encoder_flops(c.num_hidden_layers, tokens, c.hidden_size, c.intermediate_size) + pooler


def audio_flops(c, samples):
    flops, length, channels = 0, samples, 1
    for dim, kernel, stride in zip(c.conv_dim, c.conv_kernel, c.conv_stride):
        length = (length - kernel) // stride + 1
        flops += 2 * length * channels * dim * kernel
        channels = dim
    H = c.hidden_size
    flops += 2 * length * channels * H  # feature projection
    flops += c.num_conv_pos_embeddings * 2 * length * H * (H // c.num_conv_pos_embedding_groups) * c.conv_pos_kernel_size
    return flops + encoder_flops(c.num_hidden_layers, length, H, c.intermediate_size)


def vision_flops(c, size, segmentation):
    """Patch embedding + encoder + the classifier, or the FPN necks + UperNet head (no auxiliary head)."""
    H, grid = c.hidden_size, size // c.patch_size
    flops = 2 * grid * grid * H * c.num_channels * c.patch_size ** 2
    flops += encoder_flops(c.num_hidden_layers, grid * grid + 1, H, c.intermediate_size)
    if not segmentation:
        return flops + 2 * H * c.num_labels
    g4, g2 = 4 * grid, 2 * grid
    flops += 2 * (grid * grid + g2 * g2) * H * H * 4  # fpn1: two 2x2 stride-2 transposed convs
    flops += 2 * grid * grid * H * H * 4  # fpn2: one
    top = (grid // 2) ** 2  # fpn4: max-pooled
    C = H  # UperNet channels = hidden size in Transformers' head
    flops += sum(2 * s * s * H * C for s in c.pool_scales)  # pyramid pooling 1x1 convs
    flops += 2 * top * (H + len(c.pool_scales) * C) * C * 9  # PSP bottleneck 3x3
    for side in (g4, g2, grid):
        flops += 2 * side * side * H * C  # lateral 1x1
        flops += 2 * side * side * C * C * 9  # FPN 3x3
    flops += 2 * g4 * g4 * 4 * C * C * 9  # FPN bottleneck 3x3 over the 4 levels concatenated
    return flops + 2 * g4 * g4 * C * c.num_labels


def torch_flops(model, inputs):
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(**inputs)
    return counter.get_total_flops()


# ---------------------------------------------------------------- engines

class Ours:
    """One `d2v-bench --serve` process at one thread count (oneDNN fixes a primitive's thread count when
    it creates it): the model stays loaded, each call times one forward."""

    def __init__(self, build, gguf, extra, threads, env=None):
        self.proc = subprocess.Popen([os.path.join(build, "d2v-bench"), "-m", gguf, "-t", str(threads), "--serve"] + extra,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"d2v-bench failed on {os.path.basename(gguf)}: {self.proc.stderr.read().strip()}")
        self.final = None

    def ms(self):
        self.proc.stdin.write("1\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["ms"][0]

    def close(self):
        """Ends the process; returns its last line (peak RSS, model size, OpenMP environment)."""
        if self.final is None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.final = json.loads(self.proc.stdout.readline())
            self.proc.wait()
        return self.final or {}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def convert(ckpt, gguf, outtype=None):
    """convert.py; returns False (and says why) when it refuses the outtype."""
    # the benchmarks feed token ids: a text model needs no tokenizer here
    cmd = [sys.executable, os.path.join(HERE, "convert.py"), ckpt, gguf, "--allow-no-tokenizer"]
    out = subprocess.run(cmd + (["--outtype", outtype] if outtype else []), capture_output=True, text=True)
    if out.returncode != 0:
        if outtype in (None, "f32"):
            raise RuntimeError(f"convert.py failed: {out.stderr.strip()}")
        print(f"convert.py --outtype {outtype}: failed ({out.stderr.strip().splitlines()[-1:]}); column n/a")
        return False
    return True


def convert_all(ckpt, base):
    """{outtype: gguf path or None}: f32 always, bf16 and q8 where convert.py knows --outtype."""
    helptext = subprocess.run([sys.executable, os.path.join(HERE, "convert.py"), "--help"], capture_output=True, text=True).stdout
    has_outtype = "--outtype" in helptext
    files = {}
    for outtype in OUTTYPES:
        path = f"{base}.{outtype}.gguf"
        if outtype == "f32":
            convert(ckpt, path, "f32" if has_outtype else None)
            files[outtype] = path
        else:
            files[outtype] = path if has_outtype and convert(ckpt, path, outtype) else None
    return files


def sized(args, tiny=None, **kwargs):
    """Config kwargs: as given, or shrunk with --tiny (TINY plus the modality's own `tiny` fields)."""
    return {**kwargs, **TINY, **(tiny or {})} if args.tiny else kwargs


class FirstOutput(torch.nn.Module):
    """The model's first output (last_hidden_state or logits) as a plain tensor, for the exporter."""

    def __init__(self, model, names):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors):
        return self.model(**dict(zip(self.names, tensors)))[0]


def export_onnx(model, inputs, path):
    """Exports with torch.onnx.export's default (dynamo) exporter; returns the attention exported.
    On the vision models it fails in torch 2.15 (a view of SDPA's permuted output) and the TorchScript
    exporter cannot take the segmentation head's adaptive pooling (20 -> 3, 6), so there a copy of the
    model with eager attention is exported: same weights, same computation (the parity check shows it)."""
    def export(m):
        torch.onnx.export(FirstOutput(m, list(inputs)).eval(), tuple(inputs.values()), path,
                          input_names=list(inputs), output_names=["output"], verbose=False)
    try:
        export(model)
        return model.config._attn_implementation
    except Exception as e:
        print(f"ONNX export failed ({type(e).__name__}); exporting a copy with eager attention")
    eager = type(model)._from_config(copy.deepcopy(model.config), attn_implementation="eager").eval()
    eager.load_state_dict(model.state_dict())
    export(eager)
    return "eager"


def ort_runner(path, threads, inputs):
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = onnxruntime.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feeds = {i.name: inputs[i.name].numpy() for i in sess.get_inputs()}  # the exporter may drop unused inputs
    return lambda: sess.run(None, feeds)[0]


def openvino_runner(core, path, threads, inputs, f32):
    """A compiled model's forward and the precision it actually infers in."""
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if f32:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    request = compiled.create_infer_request()
    feeds = {i.get_any_name(): inputs[i.get_any_name()].numpy() for i in compiled.inputs}
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # "f32", "bf16", "f16"
    return (lambda: request.infer(feeds)[0]), precision


def timed_ms(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def time_case(args, tmp, case, model, inputs, files, extra, runs, flops, peaks):
    """Times every engine on one model and input for every thread count, interleaved; returns one row per thread count."""
    with torch.no_grad():
        reference = model(**inputs)[0].numpy()
    onnx_path = os.path.join(tmp, f"{case.replace(' ', '_')}.onnx")
    if onnxruntime is not None or openvino is not None:
        print(f"{case}: ONNX export with {export_onnx(model, inputs, onnx_path)} attention")
    rows = []
    for t in args.threads:
        engines = {"pytorch": lambda: model(**inputs)}
        if onnxruntime is not None:
            engines["ort"] = ort_runner(onnx_path, t, inputs)
        precision = None
        if openvino is not None:
            core = openvino.Core()
            engines["ov f32"], _ = openvino_runner(core, onnx_path, t, inputs, f32=True)
            default, precision = openvino_runner(core, onnx_path, t, inputs, f32=False)
            if precision != "f32":  # else it is the f32 column again
                engines["ov default"] = default
        if t == args.threads[0]:
            for name in ("ort", "ov f32", "ov default"):
                if name in engines:
                    diff = np.abs(np.asarray(engines[name]()) - reference).max()
                    label = f"{name} ({precision})" if name == "ov default" else name
                    print(f"{case}: {label} output {reference.shape}, max abs diff vs PyTorch = {diff:.3g}")
        ours = {}
        try:
            for outtype, gguf in files.items():
                if gguf is not None:
                    try:
                        ours[outtype] = Ours(args.build, gguf, extra, t)
                        engines[f"d2v {outtype}"] = ours[outtype].ms
                    except RuntimeError as e:
                        print(f"ours {outtype}: n/a ({e})")
            times = {name: [] for name in engines}
            torch.set_num_threads(t)
            with torch.no_grad():
                for round_ in range(runs + 1):  # round 0 warms every engine up
                    for name, fn in engines.items():
                        ms = fn() if name.startswith("d2v") else timed_ms(fn)
                        if round_ > 0:
                            times[name].append(ms)
                        time.sleep(PAUSE_S)
            rss = {}
            for outtype, proc in ours.items():
                final = proc.close()
                rss[outtype] = (final.get("peak_rss_mb"), final.get("model_mb"))
        finally:
            for proc in ours.values():
                proc.kill()
        med = {name: statistics.median(v) for name, v in times.items()}
        rows.append(dict(case=case, threads=t, ms=med, flops=flops, peaks=peaks, ov_precision=precision, rss=rss))
        del engines  # the sessions and compiled models of this thread count
    return rows


def report(title, rows, args):
    print(f"\n{title}{' (--tiny config)' if args.tiny else ''}, median of {args.runs} interleaved runs")
    cols = ["pytorch", "ort", "ov f32", "ov default", "d2v f32", "d2v bf16", "d2v q8"]
    print(f"{'case':>18} {'thr':>3} " + " ".join(f"{c + ' ms':>13}" for c in cols))
    for r in rows:
        cells = [fmt(r["ms"].get(c)) for c in cols]
        if r["ov_precision"]:
            cells[3] = f"{cells[3]} ({r['ov_precision']})" if "ov default" in r["ms"] else f"= f32"
        print(f"{r['case']:>18} {r['threads']:>3} " + " ".join(f"{c:>13}" for c in cells))
    print("\nratios their time / ours (> 1: we are faster); OpenVINO's default precision is compared with our bf16")
    print(f"{'case':>18} {'thr':>3} {'pt/d2v':>8} {'ort/d2v':>8} {'ov32/d2v':>9} {'ovdef/bf16':>11} {'bf16 speed-up':>14} {'q8 speed-up':>12}")
    for r in rows:
        m = r["ms"]
        ours = m.get("d2v f32")
        cells = [ratio(m.get("pytorch"), ours), ratio(m.get("ort"), ours), ratio(m.get("ov f32"), ours),
                 ratio(m.get("ov default"), m.get("d2v bf16")), ratio(ours, m.get("d2v bf16")), ratio(ours, m.get("d2v q8"))]
        print(f"{r['case']:>18} {r['threads']:>3} " + " ".join(f"{fmt(c, '.2f'):>{w}}" for c, w in zip(cells, (8, 8, 9, 11, 14, 12))))
    print("\nours: achieved GFLOP/s and share of the oneDNN matmul peak of the same type and threads")
    print(f"{'case':>18} {'thr':>3} {'GFLOP':>8} " + " ".join(f"{o + ' GFLOP/s':>13} {'of peak':>8}" for o in OUTTYPES))
    for r in rows:
        cells = []
        for outtype, peak_type in OUTTYPES.items():
            ms = r["ms"].get(f"d2v {outtype}")
            rate = r["flops"] / (ms * 1e6) if ms else None
            peak = r["peaks"].get((peak_type, r["threads"]))
            cells += [f"{fmt(rate):>13}", f"{fmt(rate and peak and 100 * rate / peak, '.0f'):>7}%"]
        print(f"{r['case']:>18} {r['threads']:>3} {r['flops'] / 1e9:>8.2f} " + " ".join(cells))
    print("\nthe fp32 goal (>= 1.5x PyTorch, >= 1.3x ONNX Runtime, level with OpenVINO f32): the time it asks"
          "\nfor and the share of the f32 matmul peak that time would take (over 100 %: beyond what this host's"
          "\nmatrix products can do, unless the FLOPs can be cut; segmentation's Winograd convs already do fewer)")
    print(f"{'case':>18} {'thr':>3} {'ours ms':>9} {'asked ms':>9} {'set by':>8} {'ours of peak':>13} {'asked of peak':>14}")
    for r in rows:
        m, peak = r["ms"], r["peaks"].get(("f32", r["threads"]))
        asks = {engine: m[engine] / factor for engine, factor in (("pytorch", 1.5), ("ort", 1.3), ("ov f32", 1.0)) if m.get(engine)}
        if not asks or not m.get("d2v f32"):
            continue
        by = min(asks, key=asks.get)
        share = lambda ms: peak and 100 * r["flops"] / (ms * 1e6) / peak
        print(f"{r['case']:>18} {r['threads']:>3} {m['d2v f32']:>9.1f} {asks[by]:>9.1f} {by:>8} "
              f"{fmt(share(m['d2v f32']), '.0f'):>12}% {fmt(share(asks[by]), '.0f'):>13}%")
    print("\nours: peak RSS of the process (load + warm-up + timed runs) beside the model file")
    for r in rows:
        cells = [f"{o} {fmt(rss, '.0f')} MB RSS / {fmt(size, '.0f')} MB file" for o, (rss, size) in r["rss"].items()]
        print(f"{r['case']:>18} {r['threads']:>3}: " + "; ".join(cells))


# ---------------------------------------------------------------- contention (goal 2)

SPINNER = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    sum(range(100000))\n"


def start_busy_process():
    """One CPU-bound process: stress-ng where installed, else a Python loop that also ends with us."""
    if shutil.which("stress-ng"):
        return subprocess.Popen(["stress-ng", "--cpu", "1", "--quiet"]), "stress-ng --cpu 1"
    return subprocess.Popen([sys.executable, "-c", SPINNER]), "a spinning Python process"


def contention(args, cases):
    """cases: (name, gguf, extra). Ours f32 at 1 and 2 threads, idle and beside one busy process."""
    # ours: short spin + per-pass thread count (src/threads.cpp); then without the adaptive count, and
    # with neither (libgomp's default spin, fixed threads)
    policies = {"ours": {}, "fixed threads": {"D2V_ADAPTIVE_THREADS": "0"},
                "libgomp default": {"GOMP_SPINCOUNT": "300000", "D2V_ADAPTIVE_THREADS": "0"}}
    results = {}
    what = None
    for name, gguf, extra in cases:
        for t in (1, 2):
            procs, busy = {}, None
            try:
                for policy, env in policies.items():
                    procs[policy] = Ours(args.build, gguf, extra, t, env=env)
                for state in ("idle", "busy"):
                    if state == "busy":
                        busy, what = start_busy_process()
                        time.sleep(0.5)
                    for proc in procs.values():
                        proc.ms()  # warm-up
                    times = {policy: [] for policy in procs}
                    for _ in range(args.runs):  # interleaved
                        for policy, proc in procs.items():
                            time.sleep(PAUSE_S)
                            times[policy].append(proc.ms())
                    for policy in procs:
                        results[(name, policy, state, t)] = statistics.median(times[policy])
            finally:
                if busy is not None:
                    busy.terminate()
                    busy.wait()
                for proc in procs.values():
                    proc.kill()
    print(f"\ncontention: ours f32, median of {args.runs}; busy = {what} beside ours ({os.cpu_count()} CPUs), "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'case':>18} {'policy':>16} {'idle 1t ms':>11} {'idle 2t ms':>11} {'busy 1t ms':>11} {'busy 2t ms':>11} {'busy 2t / idle 1t':>18} {'busy 2t / busy 1t':>18}")
    for name, _, _ in cases:
        for policy in policies:
            r = [results[(name, policy, s, t)] for s in ("idle", "busy") for t in (1, 2)]
            print(f"{name:>18} {policy:>16} " + " ".join(f"{x:>11.1f}" for x in r) + f" {r[3] / r[0]:>18.2f} {r[3] / r[2]:>18.2f}")


# ---------------------------------------------------------------- models

def check_flops(case, flops, model, inputs):
    counted = torch_flops(model, inputs)
    print(f"{case}: {flops / 1e9:.2f} GFLOP analytic (PyTorch's FlopCounterMode: {counted / 1e9:.2f})")


def bench_audio(args, tmp, peaks):
    import soundfile
    from transformers import Data2VecAudioConfig, Data2VecAudioModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    model = Data2VecAudioModel(Data2VecAudioConfig(**sized(args, tiny=dict(conv_dim=(32,) * 7)))).eval()
    audio = os.path.join(SHARED, "speech", "jfk.wav")
    wave, rate = soundfile.read(audio, dtype="float32")
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    inputs = dict(extractor(wave, sampling_rate=rate, return_tensors="pt"))
    ckpt = os.path.join(tmp, "audio")
    model.save_pretrained(ckpt)
    extractor.save_pretrained(ckpt)
    files = convert_all(ckpt, ckpt)
    case = "jfk.wav 11 s"
    if args.contention:
        return contention(args, [(case, files["f32"], [audio])])
    with torch.no_grad():
        ref = model(**inputs).last_hidden_state[0].numpy()
    dump = os.path.join(tmp, "audio-dump")
    subprocess.run([os.path.join(args.build, "d2v-audio"), "-m", files["f32"], "--dump", dump, audio], check=True,
                   stdout=subprocess.DEVNULL)
    ours = np.load(os.path.join(dump, "last_hidden_state.npy"))[0]
    print(f"audio parity: last_hidden_state {ours.shape}, max abs diff vs PyTorch = {np.abs(ours - ref).max():.3g}")
    flops = audio_flops(model.config, inputs["input_values"].shape[1])
    check_flops(case, flops, model, inputs)
    rows = time_case(args, tmp, case, model, inputs, files, [audio], args.runs, flops, peaks)
    report("Data2VecAudioModel (base: 768 hidden, 12 layers), batch 1", rows, args)


def bench_text(args, tmp, peaks):
    from transformers import Data2VecTextConfig, Data2VecTextModel

    torch.manual_seed(0)
    # facebook/data2vec-text-base's shape: RoBERTa vocabulary, 514 positions, one token type, eps 1e-5.
    config = Data2VecTextConfig(**sized(args, vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5))
    model = Data2VecTextModel(config).eval()
    ckpt = os.path.join(tmp, "text")
    model.save_pretrained(ckpt)
    files = convert_all(ckpt, ckpt)
    if args.contention:
        return contention(args, [(f"{n} tokens", files["f32"], ["--tokens", str(n)]) for n in (128, 512)])
    rows = []
    for tokens in (128, 512):
        ids = torch.tensor([[3 + i % 1000 for i in range(tokens)]])
        inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids))
        case, flops = f"{tokens} tokens", text_flops(config, tokens)
        check_flops(case, flops, model, inputs)
        rows += time_case(args, tmp, case, model, inputs, files, ["--tokens", str(tokens)], args.runs, flops, peaks)
    report("Data2VecTextModel (base: 768 hidden, 12 layers), batch 1", rows, args)


def bench_vision(args, tmp, peaks):
    from transformers import (Data2VecVisionConfig, Data2VecVisionForImageClassification,
                              Data2VecVisionForSemanticSegmentation)

    rows, contended = [], []
    cases = [
        ("classify 224x224", Data2VecVisionForImageClassification,
         dict(use_relative_position_bias=True, num_labels=1000), 224, args.runs),
        ("segment 640x640", Data2VecVisionForSemanticSegmentation,
         dict(use_relative_position_bias=True, image_size=640, num_labels=150), 640, max(1, args.runs // 2)),
    ]
    tiny = dict(out_indices=[1, 2, 3, 4], decoder_hidden_size=32, auxiliary_channels=32)
    for name, cls, kwargs, size, runs in cases:
        torch.manual_seed(0)
        model = cls(Data2VecVisionConfig(**sized(args, tiny, **kwargs))).eval()
        ckpt = os.path.join(tmp, name.split()[0])
        model.save_pretrained(ckpt)
        files = convert_all(ckpt, ckpt)
        extra = ["--image-size", str(size)]
        if args.contention:
            contended.append((name, files["f32"], extra))
            continue
        inputs = dict(pixel_values=torch.full((1, 3, size, size), 0.1))
        flops = vision_flops(model.config, size, cls is Data2VecVisionForSemanticSegmentation)
        check_flops(name, flops, model, inputs)
        rows += time_case(args, tmp, name, model, inputs, files, extra, runs, flops, peaks)
    if args.contention:
        return contention(args, contended)
    report("Data2VecVision (base: patch 16, 768 hidden, 12 layers; UperNet head for segmentation), batch 1", rows, args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modality", choices=["audio", "text", "vision"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--tiny", action="store_true", help="small configs instead of base size (same inputs), to test the script")
    ap.add_argument("--contention", action="store_true", help="goal 2: ours idle vs beside one busy process, 1 and 2 threads")
    args = ap.parse_args()
    # SIGTERM ends the script through the same finally blocks as Ctrl-C: no busy process is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    versions = [f"torch {torch.__version__}",
                f"onnxruntime {onnxruntime.__version__}" if onnxruntime else "onnxruntime not installed: ORT column skipped",
                f"openvino {openvino.__version__}" if openvino else "openvino not installed: OpenVINO columns skipped"]
    print("; ".join(versions) + f"; load average {os.getloadavg()[0]:.2f}")
    peaks = {} if args.contention else host_report(args.build, args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        {"audio": bench_audio, "text": bench_text, "vision": bench_vision}[args.modality](args, tmp, peaks)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
