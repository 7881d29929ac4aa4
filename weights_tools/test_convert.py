#!/usr/bin/env python3
"""Self-check for weights_tools/convert.py.

Run with the reference venv (needs torch + transformers to build tiny test
checkpoints; convert.py itself is run in a subprocess where torch,
transformers and safetensors are made unimportable)::

    ~/.cache/d2v-ref/bin/python weights_tools/test_convert.py

Exits non-zero on the first failed check.  ``--tf-h5-only`` runs just the
tf_model.h5 check, which needs only the packages of requirements.txt
(gguf, numpy, h5py) -- use it in a venv built from that file.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERT = os.path.join(HERE, "convert.py")

# convert.py must work without these; block them in the child process.
_CHILD = (
    "import sys, runpy\n"
    "for m in ('torch', 'transformers', 'safetensors'):\n"
    "    sys.modules[m] = None\n"
    "sys.argv = [sys.argv[1]] + sys.argv[2:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)

N_CHECKS = 0


def check(cond, msg):
    global N_CHECKS
    N_CHECKS += 1
    if not cond:
        raise AssertionError(msg)


def run_convert(ckpt, out, *extra, expect_ok=True):
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, CONVERT, ckpt, out, *extra],
        capture_output=True, text=True, timeout=600)
    if os.environ.get("D2V_TEST_VERBOSE"):
        print(f"--- {os.path.basename(ckpt)} {' '.join(extra)} rc={proc.returncode}\n{proc.stderr}", end="")
    if expect_ok:
        check(proc.returncode == 0, f"convert {ckpt} failed (rc {proc.returncode}):\n{proc.stderr}")
    else:
        check(proc.returncode == 1, f"convert {ckpt} should fail with rc 1, got {proc.returncode}:\n{proc.stderr}")
        check("Traceback" not in proc.stderr, f"expected a clean error, got a traceback:\n{proc.stderr}")
        check("error:" in proc.stderr, f"no error message:\n{proc.stderr}")
        check(not os.path.exists(out), f"{out} was written despite the error")
    return proc


def read_gguf(path):
    import gguf
    r = gguf.GGUFReader(path)
    kv = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        kv[name] = field.contents()
    tensors = {}
    for t in r.tensors:
        check(t.tensor_type == gguf.GGMLQuantizationType.F32, f"{t.name} is not F32")
        shape = tuple(int(x) for x in reversed(list(t.shape)))
        arr = np.array(t.data, dtype=np.float32).reshape(shape)
        tensors[t.name] = arr
    names = [t.name for t in r.tensors]
    check(names == sorted(names), "tensors are not in sorted order")
    return kv, tensors


def same_tensors(a, b, what):
    check(list(a) == list(b), f"{what}: tensor names differ: {sorted(set(a) ^ set(b))}")
    for n in a:
        check(a[n].shape == b[n].shape, f"{what}: {n} shape {a[n].shape} vs {b[n].shape}")
        check(a[n].tobytes() == b[n].tobytes(), f"{what}: {n} data differs")


def expected_from_state_dict(sd, prefix=""):
    out = {}
    for k, v in sd.items():
        if not v.is_floating_point():
            continue
        out[prefix + k] = v.detach().float().numpy()
    return out


def compare_expected(got, expected, what, exact=True):
    check(set(got) == set(expected),
          f"{what}: names differ: missing {sorted(set(expected) - set(got))}, "
          f"extra {sorted(set(got) - set(expected))}")
    for n, e in expected.items():
        check(got[n].shape == e.shape, f"{what}: {n} shape {got[n].shape} vs expected {e.shape}")
        if exact:
            check(np.array_equal(got[n], e), f"{what}: {n} values differ")
        else:
            check(np.allclose(got[n], e, rtol=1e-5, atol=1e-6), f"{what}: {n} values differ")


def save_bin_sharded(sd, folder, n_shards=2):
    import torch
    keys = list(sd)
    per = (len(keys) + n_shards - 1) // n_shards
    wm = {}
    for i in range(n_shards):
        fname = f"pytorch_model-{i + 1:05d}-of-{n_shards:05d}.bin"
        part = {k: sd[k] for k in keys[i * per:(i + 1) * per]}
        torch.save(part, os.path.join(folder, fname))
        wm.update({k: fname for k in part})
    with open(os.path.join(folder, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f)


def new_dir(root, name, config_src=None):
    d = os.path.join(root, name)
    os.makedirs(d)
    if config_src:
        shutil.copy(os.path.join(config_src, "config.json"), d)
    return d


class Evil:
    """Pickles to a REDUCE of os.system -- must never run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvilEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import builtins
        return (builtins.eval, (f"open({self.marker!r}, 'w').close()",))


def main():
    os.environ["TQDM_DISABLE"] = "1"
    import torch
    from transformers import (Data2VecAudioConfig, Data2VecAudioForCTC, Data2VecAudioModel,
                              Data2VecTextConfig, Data2VecTextForMaskedLM, Wav2Vec2FeatureExtractor)
    import transformers
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)

    root = tempfile.mkdtemp(prefix="d2v_convert_test_")
    try:
        g = lambda name: os.path.join(root, name + ".gguf")  # noqa: E731

        # ------------------------------------------------------------------
        # 1. base audio model: four input formats -> identical tensors
        # ------------------------------------------------------------------
        acfg = Data2VecAudioConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=2,
            conv_pos_kernel_size=5, num_conv_pos_embedding_groups=2)
        model = Data2VecAudioModel(acfg).eval()
        sd = model.state_dict()

        st = os.path.join(root, "audio_st")
        model.save_pretrained(st, safe_serialization=True)
        Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(st)
        sh = os.path.join(root, "audio_st_sharded")
        model.save_pretrained(sh, safe_serialization=True, max_shard_size="50KB")
        check(os.path.exists(os.path.join(sh, "model.safetensors.index.json")), "sharded save did not shard")
        bn = new_dir(root, "audio_bin", st)
        torch.save(sd, os.path.join(bn, "pytorch_model.bin"))
        bsh = new_dir(root, "audio_bin_sharded", st)
        save_bin_sharded(sd, bsh)

        for d in (st, sh, bn, bsh):
            run_convert(d, g(os.path.basename(d)))
        kv_st, t_st = read_gguf(g("audio_st"))
        compare_expected(t_st, expected_from_state_dict(sd, "data2vec_audio."), "audio safetensors")
        for name in ("audio_st_sharded", "audio_bin", "audio_bin_sharded"):
            kv, t = read_gguf(g(name))
            same_tensors(t_st, t, name)
            check(kv["general.name"] == name, f"general.name {kv['general.name']!r}")
            check(kv["d2v.config_json"] == kv_st["d2v.config_json"], f"{name}: config differs")

        with open(os.path.join(st, "config.json")) as f:
            cfg_json = json.load(f)
        check(kv_st["general.architecture"] == "data2vec-audio", "architecture")
        check(kv_st["general.alignment"] == 64, "alignment")
        check(kv_st["general.name"] == "audio_st", "name")
        check(kv_st["d2v.format_version"] == 1, "format_version")
        check(kv_st["d2v.model_class"] == "Data2VecAudioModel", "model_class")
        check(kv_st["d2v.config_json"] == json.dumps(cfg_json, sort_keys=True), "config_json")
        with open(os.path.join(st, "preprocessor_config.json"), encoding="utf-8") as f:
            pp = json.dumps(json.load(f), ensure_ascii=False, separators=(",", ":"))
        check(kv_st.get("d2v.preprocessor_json") == pp, "preprocessor_json")
        check("d2v.vocab_json" not in kv_st and "d2v.merges_txt" not in kv_st, "absent files must not add keys")

        # gguf-dump lists the file
        dump = subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_dump", g("audio_st")],
                              capture_output=True, text=True, timeout=300)
        check(dump.returncode == 0 and "data2vec_audio.encoder.layers.1.attention.q_proj.weight" in dump.stdout,
              f"gguf-dump failed:\n{dump.stdout[-2000:]}\n{dump.stderr[-2000:]}")

        # ------------------------------------------------------------------
        # 2. head model (CTC): names kept, --model-class override / checks
        # ------------------------------------------------------------------
        ctc = Data2VecAudioForCTC(Data2VecAudioConfig(**{**acfg.to_dict(), "vocab_size": 12})).eval()
        ctc_dir = os.path.join(root, "audio_ctc")
        ctc.save_pretrained(ctc_dir)
        vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "é": 5}
        with open(os.path.join(ctc_dir, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, indent=2, ensure_ascii=False)
        run_convert(ctc_dir, g("ctc"))
        kv, t = read_gguf(g("ctc"))
        compare_expected(t, expected_from_state_dict(ctc.state_dict()), "ctc")
        check("lm_head.weight" in t and "lm_head.decoder.bias" not in t, "ctc head names")
        check(kv["d2v.model_class"] == "Data2VecAudioForCTC", "ctc model_class")
        check(kv["d2v.vocab_json"] == json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), "vocab_json")
        run_convert(ctc_dir, g("ctc_tf"), "--model-class", "TFData2VecAudioForCTC")
        check(read_gguf(g("ctc_tf"))[0]["d2v.model_class"] == "Data2VecAudioForCTC", "TF prefix not stripped")
        p = run_convert(ctc_dir, g("ctc_bad"), "--model-class", "Data2VecTextModel", expect_ok=False)
        check("does not belong" in p.stderr, p.stderr)

        # ------------------------------------------------------------------
        # 3. text MaskedLM: tied weights, f16 / bf16 storage, int buffers dropped
        # ------------------------------------------------------------------
        tcfg = Data2VecTextConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=37, max_position_embeddings=64)
        mlm = Data2VecTextForMaskedLM(tcfg).eval()
        txt = os.path.join(root, "text_mlm_f16")
        mlm.half().save_pretrained(txt)
        mlm.float()
        with open(os.path.join(txt, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\nĠ t\nh é\n")
        with open(os.path.join(txt, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump({"Ġ": 0, "t": 1, "h": 2, "é": 3, "Ġt": 4, "hé": 5}, f, ensure_ascii=False)
        run_convert(txt, g("text_f16"))
        kv, t = read_gguf(g("text_f16"))
        exp = expected_from_state_dict(mlm.half().state_dict())
        mlm.float()
        exp.pop("lm_head.decoder.weight")                        # tied weights are stored once
        exp["lm_head.decoder.bias"] = exp.pop("lm_head.bias")
        compare_expected(t, exp, "text f16")
        check(kv["general.architecture"] == "data2vec-text", "text arch")
        check(kv["d2v.merges_txt"] == "#version: 0.2\nĠ t\nh é\n", "merges_txt")

        tb = new_dir(root, "text_bf16_bin", txt)
        for fname in ("vocab.json", "merges.txt"):
            shutil.copy(os.path.join(txt, fname), tb)
        sd_bf16 = {k: v.to(torch.bfloat16) for k, v in mlm.state_dict().items()}
        sd_bf16["data2vec_text.embeddings.position_ids"] = torch.arange(64).expand((1, -1))
        torch.save(sd_bf16, os.path.join(tb, "pytorch_model.bin"))
        p = run_convert(tb, g("text_bf16"))
        check("position_ids" in p.stderr and "dropped" in p.stderr, "dropped buffer not reported")
        _, t = read_gguf(g("text_bf16"))
        exp = expected_from_state_dict(sd_bf16)
        exp.pop("lm_head.decoder.weight", None)
        exp["lm_head.decoder.bias"] = exp.pop("lm_head.bias")
        compare_expected(t, exp, "text bf16")

        # ------------------------------------------------------------------
        # 4. gamma/beta renaming, weight-norm folding, strided/offset views
        # ------------------------------------------------------------------
        sd_old = {k: v.clone() for k, v in sd.items()}
        sd_old["encoder.layer_norm.gamma"] = sd_old.pop("encoder.layer_norm.weight")
        sd_old["encoder.layer_norm.beta"] = sd_old.pop("encoder.layer_norm.bias")
        v = torch.randn(32, 16, 5)
        gg = torch.rand(1, 1, 5) + 0.5
        v2 = torch.randn(32, 16, 5)
        g2 = torch.rand(32, 1, 1) + 0.5
        sd_old["encoder.pos_conv_embed.conv.weight_g"] = gg
        sd_old["encoder.pos_conv_embed.conv.weight_v"] = v
        sd_old["encoder.extra_conv.parametrizations.weight.original0"] = g2
        sd_old["encoder.extra_conv.parametrizations.weight.original1"] = v2
        big = torch.randn(8, 6)
        sd_old["encoder.extra.transposed"] = big.t()           # non-contiguous view
        sd_old["encoder.extra.sliced"] = big[2:5, 1::2]          # storage offset + strides
        sd_old["encoder.extra.scalar"] = torch.tensor(3.5)
        old = new_dir(root, "audio_old_names", st)
        torch.save(sd_old, os.path.join(old, "pytorch_model.bin"))
        p = run_convert(old, g("old"))
        check("folded weight norm" in p.stderr, "weight-norm folding not reported")
        _, t = read_gguf(g("old"))
        exp = expected_from_state_dict(sd, "data2vec_audio.")
        P = "data2vec_audio."
        exp[P + "encoder.pos_conv_embed.conv.weight"] = torch._weight_norm(v, gg, 2).numpy()
        exp[P + "encoder.extra_conv.weight"] = torch._weight_norm(v2, g2, 0).numpy()
        exp[P + "encoder.extra.transposed"] = big.t().numpy()
        exp[P + "encoder.extra.sliced"] = big[2:5, 1::2].numpy()
        exp[P + "encoder.extra.scalar"] = np.array([3.5], dtype=np.float32)
        compare_expected(t, exp, "old names / weight norm", exact=False)
        for n in ("encoder.extra.transposed", "encoder.extra.sliced", "encoder.layer_norm.weight"):
            check(np.array_equal(t[P + n], exp[P + n]), f"{n} must be bit-exact")

        # ------------------------------------------------------------------
        # 5. malicious pickles are refused and never executed
        # ------------------------------------------------------------------
        marker = os.path.join(root, "PWNED")

        def evil_case(name, write):
            d = new_dir(root, name, st)
            write(os.path.join(d, "pytorch_model.bin"))
            p = run_convert(d, g(name), expect_ok=False)
            check(not os.path.exists(marker), f"{name}: malicious pickle was EXECUTED")
            return p

        def zip_with_pickle(payload):
            def write(path):
                with zipfile.ZipFile(path, "w") as z:
                    z.writestr("archive/data.pkl", payload)
                    z.writestr("archive/byteorder", "little")
                    z.writestr("archive/version", "3\n")
            return write

        p = evil_case("evil_system", zip_with_pickle(pickle.dumps(Evil(marker), protocol=2)))
        check("refusing to unpickle" in p.stderr and "system" in p.stderr, p.stderr)
        p = evil_case("evil_eval_p4", zip_with_pickle(pickle.dumps({"w": EvilEval(marker)}, protocol=4)))
        check("refusing to unpickle builtins.eval" in p.stderr, p.stderr)
        # a genuine torch.save archive with the payload hidden next to real tensors
        p = evil_case("evil_in_state_dict",
                      lambda path: torch.save({"w": torch.zeros(2), "x": Evil(marker)}, path))
        check("refusing to unpickle" in p.stderr, p.stderr)
        # legacy (non-zip) pickle file
        p = evil_case("evil_legacy", lambda path: open(path, "wb").write(pickle.dumps(Evil(marker))))
        check("legacy" in p.stderr, p.stderr)
        check(not os.path.exists(marker), "malicious pickle was executed")

        # ------------------------------------------------------------------
        # 6. truncated / corrupt inputs
        # ------------------------------------------------------------------
        tr = new_dir(root, "truncated_st", st)
        with open(os.path.join(st, "model.safetensors"), "rb") as f:
            data = f.read()
        with open(os.path.join(tr, "model.safetensors"), "wb") as f:
            f.write(data[:-100])
        p = run_convert(tr, g("tr"), expect_ok=False)
        check("truncated" in p.stderr, p.stderr)
        with open(os.path.join(tr, "model.safetensors"), "wb") as f:
            f.write(data[:8 + 20])                                  # header cut short
        p = run_convert(tr, g("tr"), expect_ok=False)
        check("truncated" in p.stderr, p.stderr)
        with open(os.path.join(tr, "model.safetensors"), "wb") as f:
            f.write((2 ** 63).to_bytes(8, "little") + data[8:])     # absurd header length
        run_convert(tr, g("tr"), expect_ok=False)
        with open(os.path.join(tr, "model.safetensors"), "wb") as f:
            f.write(data[:5])
        run_convert(tr, g("tr"), expect_ok=False)

        trb = new_dir(root, "truncated_bin", st)
        with open(os.path.join(bn, "pytorch_model.bin"), "rb") as f:
            bdata = f.read()
        with open(os.path.join(trb, "pytorch_model.bin"), "wb") as f:
            f.write(bdata[: len(bdata) // 2])
        run_convert(trb, g("trb"), expect_ok=False)
        # intact zip whose storage blob is shorter than the tensor that views it
        with zipfile.ZipFile(os.path.join(bn, "pytorch_model.bin")) as zin, \
                zipfile.ZipFile(os.path.join(trb, "pytorch_model.bin"), "w") as zout:
            for info in zin.infolist():
                blob = zin.read(info)
                if info.filename.endswith("/data/0"):
                    blob = blob[:4]
                zout.writestr(info.filename, blob)
        p = run_convert(trb, g("trb"), expect_ok=False)
        check("exceeds the storage" in p.stderr, p.stderr)

        shm = os.path.join(root, "sharded_missing")
        shutil.copytree(sh, shm)
        os.unlink(os.path.join(shm, "model-00002-of-00002.safetensors"))
        p = run_convert(shm, g("shm"), expect_ok=False)
        check("missing" in p.stderr, p.stderr)

        # ------------------------------------------------------------------
        # 7. bad folders / configs
        # ------------------------------------------------------------------
        run_convert(os.path.join(root, "does_not_exist"), g("x"), expect_ok=False)
        nocfg = new_dir(root, "no_config")
        shutil.copy(os.path.join(st, "model.safetensors"), nocfg)
        p = run_convert(nocfg, g("x"), expect_ok=False)
        check("config.json" in p.stderr, p.stderr)
        bert = new_dir(root, "bert")
        shutil.copy(os.path.join(st, "model.safetensors"), bert)
        with open(os.path.join(bert, "config.json"), "w") as f:
            json.dump({"model_type": "bert", "architectures": ["BertModel"]}, f)
        p = run_convert(bert, g("x"), expect_ok=False)
        check("unsupported model_type 'bert'" in p.stderr, p.stderr)
        noarch = new_dir(root, "no_arch")
        shutil.copy(os.path.join(st, "model.safetensors"), noarch)
        with open(os.path.join(noarch, "config.json"), "w") as f:
            json.dump({k: v for k, v in cfg_json.items() if k != "architectures"}, f)
        p = run_convert(noarch, g("x"), expect_ok=False)
        check("--model-class" in p.stderr, p.stderr)
        run_convert(noarch, g("noarch_ok"), "--model-class", "Data2VecAudioModel")
        noweights = new_dir(root, "no_weights", st)
        p = run_convert(noweights, g("x"), expect_ok=False)
        check("no weights" in p.stderr, p.stderr)

        # ------------------------------------------------------------------
        # 8. tf_model.h5 (only when h5py is available)
        # ------------------------------------------------------------------
        try:
            import h5py  # noqa: F401
        except ImportError:
            print("note: h5py not installed, tf_model.h5 check skipped")
        else:
            check_tf_h5(root, g)

        print(f"test_convert.py: all {N_CHECKS} checks passed")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_tf_h5(root, g):
    """Synthetic Keras-style weights file following transformers' TF naming."""
    import h5py
    d = os.path.join(root, "vision_tf")
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"model_type": "data2vec-vision", "architectures": ["TFData2VecVisionForImageClassification"],
                   "hidden_size": 8}, f)
    rng = np.random.default_rng(0)
    top = "tf_data2_vec_vision_for_image_classification"
    w = {
        f"{top}/data2vec_vision/embeddings/cls_token:0": rng.standard_normal((1, 1, 8)),
        f"{top}/data2vec_vision/embeddings/patch_embeddings/projection/kernel:0": rng.standard_normal((4, 4, 3, 8)),
        f"{top}/data2vec_vision/encoder/layer_._0/attention/attention/query/kernel:0": rng.standard_normal((8, 8)),
        f"{top}/data2vec_vision/encoder/layer_._0/layernorm_before/gamma:0": rng.standard_normal(8),
        f"{top}/data2vec_vision/encoder/layer_._0/layernorm_before/beta:0": rng.standard_normal(8),
        f"{top}/classifier/kernel:0": rng.standard_normal((8, 5)),
        f"{top}/classifier/bias:0": rng.standard_normal(5),
    }
    layers = {"data2vec_vision": [k for k in w if "/data2vec_vision/" in k],
              "classifier": [k for k in w if "/classifier/" in k]}
    with h5py.File(os.path.join(d, "tf_model.h5"), "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in layers]
        for layer, names in layers.items():
            grp = f.create_group(layer)
            grp.attrs["weight_names"] = [n.encode() for n in names]
            for n in names:
                grp.create_dataset(n, data=w[n].astype(np.float32))
    run_convert(d, g("vision_tf"))
    kv, t = read_gguf(g("vision_tf"))
    check(kv["d2v.model_class"] == "Data2VecVisionForImageClassification", kv["d2v.model_class"])
    P = "data2vec_vision."
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    exp = {
        P + "embeddings.cls_token": f32(w[f"{top}/data2vec_vision/embeddings/cls_token:0"]),
        P + "embeddings.patch_embeddings.projection.weight":
            f32(w[f"{top}/data2vec_vision/embeddings/patch_embeddings/projection/kernel:0"]).transpose(3, 2, 0, 1),
        P + "encoder.layer.0.attention.attention.query.weight":
            f32(w[f"{top}/data2vec_vision/encoder/layer_._0/attention/attention/query/kernel:0"]).T,
        P + "encoder.layer.0.layernorm_before.weight": f32(w[f"{top}/data2vec_vision/encoder/layer_._0/layernorm_before/gamma:0"]),
        P + "encoder.layer.0.layernorm_before.bias": f32(w[f"{top}/data2vec_vision/encoder/layer_._0/layernorm_before/beta:0"]),
        "classifier.weight": f32(w[f"{top}/classifier/kernel:0"]).T,
        "classifier.bias": f32(w[f"{top}/classifier/bias:0"]),
    }
    compare_expected(t, exp, "tf h5")


def main_tf_h5_only():
    """``--tf-h5-only``: runs with just requirements.txt installed (no torch)."""
    root = tempfile.mkdtemp(prefix="d2v_convert_test_")
    try:
        check_tf_h5(root, lambda name: os.path.join(root, name + ".gguf"))
        print(f"test_convert.py: tf_model.h5 check passed ({N_CHECKS} checks)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    try:
        main_tf_h5_only() if "--tf-h5-only" in sys.argv[1:] else main()
    except AssertionError as e:
        print(f"test_convert.py: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
