"""Side-by-side benchmark: data2vec.cpp vs PyTorch eager vs ONNX Runtime, same weights, same input, same threads.

    ~/.cache/d2v-ref/bin/python weights_tools/bench.py audio    # base Data2VecAudioModel on jfk.wav (11 s)
    ~/.cache/d2v-ref/bin/python weights_tools/bench.py text     # base Data2VecTextModel, 128 and 512 tokens
    ~/.cache/d2v-ref/bin/python weights_tools/bench.py vision   # base ForImageClassification 224^2, ForSemanticSegmentation 640^2

Each builds the model from Transformers' default (base-size) config with seeded random weights,
saves and converts it with convert.py, times PyTorch (torch.no_grad, eager mode, default attention),
ONNX Runtime and `d2v-bench` for each thread count, batch 1, and prints the three medians and the
ratios PyTorch time / ours and ORT time / ours (> 1 means we are faster). It also checks that the
C++ output (audio) and ORT's output (every case) equal PyTorch's on that input (max abs diff).
`--tiny` swaps the base configs for small ones (same inputs) to try the script out quickly.

ONNX Runtime: the model is exported with torch.onnx.export (fixed input shapes, batch 1) and run
on the CPUExecutionProvider with intra_op_num_threads = threads, inter_op_num_threads = 1 and
ORT_ENABLE_ALL; timed with the same one warm-up run + median as PyTorch. It is optional: without
onnxruntime installed the ORT column is skipped. Tested with torch 2.15.0, transformers 5.23.0,
onnxruntime 1.32.0, onnx 1.23.2, onnxscript 0.7.2:

    ~/.cache/d2v-ref/bin/pip install onnxruntime onnx onnxscript

Needs the reference venv (torch + transformers); it is not part of the build or the tests.
"""
import argparse
import copy
import json
import os
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

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.join(REPO, "..", "shared", "data")
# --tiny: a few small layers instead of base size, to check the script itself in seconds.
TINY = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37)


def median_ms(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def time_torch(fn, threads, runs):
    torch.set_num_threads(threads)
    with torch.no_grad():
        return median_ms(fn, runs)


def time_ours(build, gguf, threads, runs, extra):
    out = subprocess.run([os.path.join(build, "d2v-bench"), "-m", gguf, "-t", str(threads), "-n", str(runs)] + extra,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def convert(ckpt, gguf):
    # the benchmarks feed token ids: a text model needs no tokenizer here
    subprocess.run([sys.executable, os.path.join(HERE, "convert.py"), ckpt, gguf, "--allow-no-tokenizer"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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


def ort_session(path, threads):
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def time_case(args, tmp, rows, case, model, inputs, gguf, extra, runs):
    """Times PyTorch, ORT and d2v-bench on one model and input for every thread count; appends the rows."""
    sessions = {}
    if onnxruntime is not None:
        path = os.path.join(tmp, f"{case.replace(' ', '_')}.onnx")
        attention = export_onnx(model, inputs, path)
        sessions = {t: ort_session(path, t) for t in args.threads}
        sess = sessions[args.threads[0]]
        feeds = {i.name: inputs[i.name].numpy() for i in sess.get_inputs()}  # the exporter may drop unused inputs
        with torch.no_grad():
            ref = model(**inputs)[0].numpy()
        diff = np.abs(sess.run(None, feeds)[0] - ref).max()
        print(f"{case}: ONNX Runtime ({attention} attention exported) output {ref.shape}, max abs diff vs PyTorch = {diff:.3g}")
    for t in args.threads:
        pt = time_torch(lambda: model(**inputs), t, runs)
        ort = median_ms(lambda: sessions[t].run(None, feeds), runs) if sessions else None
        rows.append((case, t, pt, ort, time_ours(args.build, gguf, t, runs, extra)["median_ms"]))


def report(name, rows, args):
    print(f"\n{name}{' (--tiny config)' if args.tiny else ''}")
    print(f"{'case':>22} {'threads':>7} {'pytorch ms':>11} {'ort ms':>9} {'d2v ms':>9} {'ratio pt/d2v':>13} {'ratio ort/d2v':>14}")
    for case, t, pt, ort, ours in rows:
        ort_ms, ort_ratio = ("-", "-") if ort is None else (f"{ort:.1f}", f"{ort / ours:.2f}")
        print(f"{case:>22} {t:>7} {pt:>11.1f} {ort_ms:>9} {ours:>9.1f} {pt / ours:>13.2f} {ort_ratio:>14}")


def bench_audio(args, tmp):
    import soundfile
    from transformers import Data2VecAudioConfig, Data2VecAudioModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    model = Data2VecAudioModel(Data2VecAudioConfig(**sized(args, tiny=dict(conv_dim=(32,) * 7)))).eval()
    audio = os.path.join(SHARED, "speech", "jfk.wav")
    wave, rate = soundfile.read(audio, dtype="float32")
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    inputs = dict(extractor(wave, sampling_rate=rate, return_tensors="pt"))
    ckpt, gguf = os.path.join(tmp, "audio"), os.path.join(tmp, "audio.gguf")
    model.save_pretrained(ckpt)
    extractor.save_pretrained(ckpt)
    convert(ckpt, gguf)
    with torch.no_grad():
        ref = model(**inputs).last_hidden_state[0].numpy()
    dump = os.path.join(tmp, "audio-dump")
    subprocess.run([os.path.join(args.build, "d2v-audio"), "-m", gguf, "--dump", dump, audio], check=True, stdout=subprocess.DEVNULL)
    ours = np.load(os.path.join(dump, "last_hidden_state.npy"))[0]
    print(f"audio parity: last_hidden_state {ours.shape}, max abs diff vs PyTorch = {np.abs(ours - ref).max():.3g}")
    rows = []
    time_case(args, tmp, rows, "jfk.wav 11 s", model, inputs, gguf, [audio], args.runs)
    report("Data2VecAudioModel (base: 768 hidden, 12 layers), batch 1", rows, args)


def bench_text(args, tmp):
    from transformers import Data2VecTextConfig, Data2VecTextModel

    torch.manual_seed(0)
    # facebook/data2vec-text-base's shape: RoBERTa vocabulary, 514 positions, one token type, eps 1e-5.
    config = Data2VecTextConfig(**sized(args, vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5))
    model = Data2VecTextModel(config).eval()
    ckpt, gguf = os.path.join(tmp, "text"), os.path.join(tmp, "text.gguf")
    model.save_pretrained(ckpt)
    convert(ckpt, gguf)
    rows = []
    for tokens in (128, 512):
        ids = torch.tensor([[3 + i % 1000 for i in range(tokens)]])
        inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids))
        time_case(args, tmp, rows, f"{tokens} tokens", model, inputs, gguf, ["--tokens", str(tokens)], args.runs)
    report("Data2VecTextModel (base: 768 hidden, 12 layers), batch 1", rows, args)


def bench_vision(args, tmp):
    from transformers import (Data2VecVisionConfig, Data2VecVisionForImageClassification,
                              Data2VecVisionForSemanticSegmentation)

    rows = []
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
        ckpt, gguf = os.path.join(tmp, name.split()[0]), os.path.join(tmp, name.split()[0] + ".gguf")
        model.save_pretrained(ckpt)
        convert(ckpt, gguf)
        inputs = dict(pixel_values=torch.full((1, 3, size, size), 0.1))
        time_case(args, tmp, rows, name, model, inputs, gguf, ["--image-size", str(size)], runs)
    report("Data2VecVision (base: patch 16, 768 hidden, 12 layers; UperNet head for segmentation), batch 1", rows, args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modality", choices=["audio", "text", "vision"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--tiny", action="store_true", help="small configs instead of base size (same inputs), to test the script")
    args = ap.parse_args()
    ort = f"onnxruntime {onnxruntime.__version__}" if onnxruntime else "onnxruntime not installed: ORT column skipped"
    print(f"torch {torch.__version__}; {ort}; data2vec.cpp backend: see d2v-bench's 'backend' field")
    with tempfile.TemporaryDirectory() as tmp:
        {"audio": bench_audio, "text": bench_text, "vision": bench_vision}[args.modality](args, tmp)


if __name__ == "__main__":
    main()
