"""The Python package against the CLIs: on the fixtures, every output equals what the CLI's --dump
writes, and the decoded results equal its --json; bad inputs raise d2v.Error carrying the CLI's
error message; one model serves several threads.

Tolerance 1e-6 max abs diff: both sides run the same library code on the same machine; only the
build differs (the module links its own static copy), and summation order can move with it in the
last bits of a float32 (|outputs| <= ~10, so 1e-6 is a few ulps).

Needs the CLIs: D2V_BUILD_DIR (default: build/) holds d2v-audio, d2v-text, d2v-vision.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import threading
import wave

import numpy as np
import pytest

import d2v

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = ROOT.parent / "shared" / "data"
BUILD = pathlib.Path(os.environ.get("D2V_BUILD_DIR", ROOT / "build"))
TOLERANCE = 1e-6
THREADS = 2

d2v.set_num_threads(THREADS)

FSDD = [str(SHARED / "speech" / "fsdd" / f) for f in ("3_theo_12.wav", "7_yweweler_3.wav")]  # 8 kHz: resampled
JFK = str(SHARED / "speech" / "jfk.wav")
IMAGES = [str(SHARED / "images" / "coco_000000039769.png"), str(SHARED / "images" / "ade20k_val_00000001.jpg")]


def run_cli(program: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BUILD / program), "-t", str(THREADS), *args], capture_output=True, text=True, timeout=600)


def whole_pass() -> list[str]:
    """d2v-audio's option for one pass over a padded batch (what Model.audio runs), if it chunks by default."""
    return ["--chunk", "0"] if "--chunk" in run_cli("d2v-audio", "--help").stdout else []


def cli_outputs(tmp_path: pathlib.Path, program: str, *args: str) -> tuple[dict[str, np.ndarray], dict]:
    dump = tmp_path / "dump"
    r = run_cli(program, "--json", "--dump", str(dump), *args)
    assert r.returncode == 0, r.stderr
    return {p.stem: np.load(p) for p in dump.glob("*.npy")}, json.loads(r.stdout)


def assert_same_outputs(result: d2v.Result, dumped: dict[str, np.ndarray]) -> None:
    assert sorted(result.outputs) == sorted(dumped)
    for name, want in dumped.items():
        got = result.outputs[name]
        assert got.shape == want.shape, name
        assert got.dtype == want.dtype, name
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE, err_msg=name)


def cli_error(program: str, *args: str) -> str:
    r = run_cli(program, *args)
    assert r.returncode == 1, r.stderr
    prefix = f"{program}: error: "
    assert r.stderr.startswith(prefix), r.stderr
    return r.stderr[len(prefix):].rstrip("\n")


# ---- audio ----

@pytest.mark.parametrize("head", ["ctc", "seqcls", "frame", "xvector", "model_base"])
def test_audio_equals_cli(tmp_path, head):
    model_path = str(FIXTURES / "audio" / head / "model.gguf")
    dumped, doc = cli_outputs(tmp_path, "d2v-audio", *whole_pass(), "-m", model_path, *FSDD)
    model = d2v.Model(model_path)
    assert model.modality == "audio" and model.model_class == doc["model_class"]
    result = model.audio(FSDD)
    assert_same_outputs(result, dumped)
    for item, want in zip(result.items, doc["results"]):
        if "transcript" in want:
            assert item["text"] == want["transcript"]
        if "labels" in want:
            assert [(l[0], l[1]) for l in item["labels"]] == [(l["label"], l["id"]) for l in want["labels"]]
            np.testing.assert_allclose([l[2] for l in item["labels"]], [l["score"] for l in want["labels"]], atol=TOLERANCE)
        if head == "frame":  # the spans spell out the CLI's per-frame labels
            frames = [s["labels"][0][0] for s in item["spans"] for _ in range(s["end"] - s["start"])]
            assert frames == want["frames"]


def read_wav(path: str) -> np.ndarray:
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def test_audio_array_equals_file():
    model = d2v.Model(FIXTURES / "audio" / "ctc" / "model.gguf")
    assert model.sampling_rate == 16000
    from_file = model.audio(JFK)
    from_array = model.audio(read_wav(JFK))
    for name in from_file.outputs:
        np.testing.assert_array_equal(from_array.outputs[name], from_file.outputs[name], err_msg=name)
    assert from_array.items[0]["text"] == from_file.items[0]["text"] != ""


@pytest.mark.parametrize("words", ["zero one two three four five six seven eight nine", "one four"])
def test_audio_word_list_equals_cli(words):
    model_path = str(ROOT / "models" / "digits-ctc.gguf")
    samples = [str(ROOT / "samples" / f) for f in ("three_one_four.wav", "seven.wav")]
    cli = run_cli("d2v-audio", "-m", model_path, "--json", *whole_pass(), "--words", words, *samples)
    assert cli.returncode == 0, cli.stderr
    want = [r["transcript"] for r in json.loads(cli.stdout)["results"]]
    model = d2v.Model(model_path)
    assert [item["text"] for item in model.audio(samples, words=words).items] == want
    assert [item["text"] for item in model.audio(samples, words=words.split()).items] == want
    if words == "one four":
        assert "THREE" not in want[0] and "SEVEN" not in want[1]
    else:
        assert want == ["THREE ONE FOUR", "SEVEN"]
    with pytest.raises(d2v.Error, match="zebra"):
        model.audio(samples, words=["zebra"])
    with pytest.raises(d2v.Error, match="CTC"):
        d2v.Model(str(ROOT / "models" / "digits-classify.gguf")).audio(samples, words=["one"])


def test_threads_share_one_model():
    model = d2v.Model(FIXTURES / "audio" / "ctc" / "model.gguf")
    want = model.audio(JFK).outputs["logits"]
    got: list = [None] * 4

    def work(i: int) -> None:
        got[i] = model.audio(JFK).outputs["logits"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g in got:
        np.testing.assert_array_equal(g, want)


# ---- text ----

TEXT_CASES = {
    "masked_lm": ["-p", "Anarchists <mask> gone online <mask> spread their message."],
    "seqcls_single": ["-p", "The cat sat on the mat.", "--pair", "A cat was sitting."],
    "seqcls_multi": ["-p", "The cat sat on the mat."],
    "seqcls_regression": ["-p", "The cat sat on the mat.", "--pair", "A cat was sitting."],
    "token_classification": ["-p", "George Washington went to Washington"],
    "question_answering": ["--question", "Who went?", "--context", "George Washington went to Washington."],
    "multiple_choice": ["-p", "A man sits down.", "--choice", "He eats.", "--choice", "He flies away."],
    "causal_lm": ["-p", "Once upon a time", "-n", "6"],
    "model_absolute": ["-p", "Hello world", "--pair", "again"],
}


def text_call(args: list[str]) -> dict:
    """The CLI's arguments as keyword arguments of Model.text."""
    kw: dict = {"choices": []}
    names = {"-p": "text", "--pair": "pair", "--question": "question", "--context": "context", "-n": "max_new_tokens"}
    for flag, value in zip(args[::2], args[1::2]):
        if flag == "--choice":
            kw["choices"].append(value)
        else:
            kw[names[flag]] = int(value) if flag == "-n" else value
    return kw


@pytest.mark.parametrize("head", sorted(TEXT_CASES))
def test_text_equals_cli(tmp_path, head):
    model_path = str(FIXTURES / "text" / head / "model.gguf")
    dumped, doc = cli_outputs(tmp_path, "d2v-text", "-m", model_path, *TEXT_CASES[head])
    result = d2v.Model(model_path).text(**text_call(TEXT_CASES[head]))
    assert_same_outputs(result, dumped)
    item = result.items[0]
    if "answer" in doc:
        assert item["text"] == doc["answer"] and item["spans"][0]["start"] == doc["start"]
    if "text" in doc:
        assert item["text"] == doc["text"] and item["token_ids"] == doc["generated_ids"]
    if "words" in doc:
        assert [(s["text"], s["labels"][0][0]) for s in item["spans"]] == [(w["word"], w["label"]) for w in doc["words"]]
    if "masks" in doc:
        assert [[l[1] for l in s["labels"]] for s in item["spans"]] == [[p["token"] for p in m["predictions"]] for m in doc["masks"]]
    if "labels" in doc:
        assert [l[0] for l in item["labels"]] == [l["label"] for l in doc["labels"]]
    if "choices" in doc:
        np.testing.assert_allclose([l[2] for l in item["labels"]], [c["score"] for c in doc["choices"]], atol=TOLERANCE)


# ---- vision ----

@pytest.mark.parametrize("head", ["image_classification", "semantic_segmentation", "model_base"])
def test_vision_equals_cli(tmp_path, head):
    model_path = str(FIXTURES / "vision" / "models" / head / "model.gguf")
    dumped, doc = cli_outputs(tmp_path, "d2v-vision", "-m", model_path, "-o", str(tmp_path / "masks"), *IMAGES)
    model = d2v.Model(model_path)
    result = model.image(IMAGES)
    assert_same_outputs(result, dumped)
    for item, want in zip(result.items, doc["results"]):
        if "labels" in want:
            assert [l[0] for l in item["labels"]] == [l["label"] for l in want["labels"]]
        if "classes" in want:  # the mask's class shares equal the CLI's
            ids, counts = np.unique(item["mask"], return_counts=True)
            assert item["mask"].shape == (want["height"], want["width"])
            shares = dict(zip(ids.tolist(), (counts / item["mask"].size).tolist()))
            for c in want["classes"]:
                assert abs(shares[c["id"]] - c["share"]) < 1e-9
    # decoded RGB arrays give the same outputs as the files
    arrays = model.image([d2v.read_image(p) for p in IMAGES])
    for name in result.outputs:
        np.testing.assert_array_equal(arrays.outputs[name], result.outputs[name], err_msg=name)


# ---- bad input: d2v.Error with the CLI's message ----

def write_wav(path: pathlib.Path, samples: int) -> str:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(samples, dtype="<i2").tobytes())
    return str(path)


def test_errors_carry_the_cli_messages(tmp_path):
    ctc = str(FIXTURES / "audio" / "ctc" / "model.gguf")
    cases = [
        (lambda: d2v.Model(tmp_path / "missing.gguf"), ("d2v-audio", "-m", str(tmp_path / "missing.gguf"), JFK)),
        (lambda: d2v.Model(JFK), ("d2v-audio", "-m", JFK, JFK)),  # not a GGUF file
        (lambda: d2v.Model(ctc).audio(str(tmp_path / "missing.wav")), ("d2v-audio", "-m", ctc, str(tmp_path / "missing.wav"))),
        (lambda: d2v.Model(ctc).audio(str(tmp_path / "short.wav")), ("d2v-audio", "-m", ctc, write_wav(tmp_path / "short.wav", 40))),
    ]
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(pathlib.Path(ctc).read_bytes()[:5000])
    cases.append((lambda: d2v.Model(truncated), ("d2v-audio", "-m", str(truncated), JFK)))
    vision = str(FIXTURES / "vision" / "models" / "image_classification" / "model.gguf")
    corrupt = str(FIXTURES / "vision" / "images" / "bad" / "corrupt.jpg")
    cases.append((lambda: d2v.Model(vision).image(corrupt), ("d2v-vision", "-m", vision, corrupt)))
    for call, cli_args in cases:
        with pytest.raises(d2v.Error) as e:
            call()
        assert str(e.value) == cli_error(*cli_args)


def test_wrong_inputs_raise():
    model = d2v.Model(FIXTURES / "audio" / "ctc" / "model.gguf")
    with pytest.raises(d2v.Error, match="text model"):
        model.text("hello")
    with pytest.raises(d2v.Error, match="1-D"):
        model.audio(np.zeros((2, 2, 2), dtype=np.float32))
    vision = d2v.Model(FIXTURES / "vision" / "models" / "image_classification" / "model.gguf")
    with pytest.raises(d2v.Error, match="RGB"):
        vision.image(np.zeros((4, 4, 4), dtype=np.uint8))


def test_converter_command_is_installed(tmp_path):
    r = subprocess.run(["d2v-convert", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "checkpoint" in r.stdout.lower()
