#!/usr/bin/env python3
"""Generate the Transformers reference fixtures used by the C++ Data2Vec-text tests.

Reference environment (CPU only is enough), the same one as make_fixtures.py:

    python3 -m venv ~/.cache/d2v-ref
    ~/.cache/d2v-ref/bin/pip install torch transformers safetensors numpy gguf tokenizers

Transformers 5 removed position_embedding_type "relative_key" / "relative_key_query" from
Data2VecText, so those two variants are made by Transformers 4.x, installed next to (not into) the
reference venv and sharing its torch:

    ~/.cache/d2v-ref/bin/pip install --target ~/.cache/d2v-tf4-pkgs --no-deps \
        "transformers==4.57.*" "tokenizers<0.23" "huggingface_hub<1.0"

(every other dependency of transformers 4.57 -- numpy, packaging, pyyaml, regex, requests,
safetensors, tqdm, filelock, fsspec -- is already in the venv).  This script runs itself as a
sub-process for them:

    PYTHONPATH=~/.cache/d2v-tf4-pkgs ~/.cache/d2v-ref/bin/python \
        weights_tools/make_text_fixtures.py --tf4-worker JOB.json

and the worker refuses to run unless `transformers.__version__` starts with "4.".  The same worker
also reloads every checkpoint made with Transformers 5 and recomputes its outputs with 4.x; the
largest difference is recorded in each meta.json ("transformers4_crosscheck").  --tf4-path DIR
changes the package folder, --no-tf4 skips everything that needs it.

Run from the repository root:

    ~/.cache/d2v-ref/bin/python weights_tools/make_text_fixtures.py [--only NAME ...]

NAME is "inputs" or a variant name (model_absolute, masked_lm, ...).

Tokenizer: tests/fixtures/text/tokenizer/ (written by make_tokenizer_fixtures.py: a small byte-level
BPE, RoBERTa special tokens <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4), loaded with
RobertaTokenizerFast.from_pretrained; vocab_size = len(tokenizer).  The script waits for
tokenizer.json (--wait-tokenizer seconds).  Its files are copied verbatim into every checkpoint
directory, so convert.py packs exactly them into the GGUF.

What it writes, under tests/fixtures/text/ (the tokenizer folder and tokenizer_cases.jsonl are not
touched):

  inputs/<set>/         input_ids.npy, attention_mask.npy, token_type_ids.npy (int64 [B, T], right
                        padded; [B, C, T] for the multiple-choice set "swag"), position_ids.npy (what
                        Transformers computes from input_ids: cumsum of non-pad tokens + pad_token_id,
                        pad tokens -> pad_token_id), texts.json (the strings, where they come from,
                        the exact tokenizer call, the tokens, label derivations)
  <variant>/model.gguf  tiny randomly initialised model converted with weights_tools/convert.py from
                        a saved Hugging Face checkpoint directory (+ the tokenizer files)
  <variant>/<set>/<field>.npy
                        Transformers outputs (eager attention, eval mode, no_grad) named after the
                        output fields: last_hidden_state, pooler_output, logits, start_logits,
                        end_logits, loss, hidden_states.<i>, attentions.<i>, plus what was fed as
                        labels: labels, start_positions, end_positions
  causal_lm/generate/   prompt_ids.npy, output_ids.npy (greedy generate()), output_ids_default_positions.npy
                        (greedy loop with the forward's own position ids; generate() feeds 0-based
                        position_ids instead -- see meta.json "generate")
  causal_lm_relative_key/generate/
                        prompt_ids.npy, output_ids_uncached.npy / output_ids_cached.npy (greedy
                        generate() of a relative_key decoder with use_cache=False / True; Transformers
                        4.x's cache gives different tokens -- see meta.json "generate_relative_key")
  <variant>/meta.json   model class, inputs, output fields, max_abs of every output, tokenizer calls,
                        config, notes on the loss semantics, versions

Input sets (texts from ../shared/data/text; exact choices in inputs/<set>/texts.json): wiki (a
title, a sentence and a paragraph of wiki_00, max_length 32 so the last is truncated), long (a
paragraph truncated to the full usable length 64 = max_position_embeddings 66 - pad_token_id - 1,
plus a one-word title), mrpc_pairs (3 MRPC sentence pairs, max_length 64, two truncated
longest_first), squad (3 question/context pairs, truncation only_second, max_length 64; the third
answer lies outside the window -> start = end = 0 as in run_qa.py), conll (3 CoNLL-2003 sentences,
words joined by spaces, tags on first sub-tokens), swag (2 examples x 4 endings, run_swag.py style),
masked (2 wiki sentences with whole-word tokens replaced by <mask> in the TEXT, so that the tokenizer
produces the <mask> id exactly at the replaced tokens).

Model config (every variant): hidden 32, 2 layers, 4 heads, intermediate 37, max_position_embeddings
66, type_vocab_size 1, layer_norm_eps 1e-5, gelu, pad/bos/eos 1/0/2.  All parameters are redrawn
(perturb_parameters) so that LayerNorms, biases and embeddings are not at their trivial init.

Facts found while writing this (details in the meta.json notes):
  * generate() feeds position_ids = attention_mask.cumsum(-1) - 1 (0, 1, 2, ...) to Data2VecText
    (Transformers 4.57 and 5.23 alike), while a plain forward uses RoBERTa positions 2, 3, ...; the
    causal_lm fixture stores both greedy results.
  * Transformers 5.23 loads a relative_key checkpoint with only an "UNEXPECTED distance_embedding"
    load report and silently computes ABSOLUTE positions (wrong outputs).
  * With relative_key(_query) (4.x) the absolute position_embeddings exist but are not added.
  * The 5.23 causal LM is causal (checked on every run, recorded in causal_lm/meta.json); had it not
    been, causal_lm would be made by the 4.x worker automatically.

All arrays are C-order float32 (int64 for integer arrays) written with numpy.save.  The script is
deterministic (fixed inputs, one torch.Generator seeded from the variant name).
"""

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import torch
import transformers

from fixture_common import (
    REPO,
    add_common_args,
    checkpoint_root,
    collect_outputs,
    convert_all,
    init_torch_reference,
    linear_layernorm,
    log,
    max_abs_by_field,
    redraw_parameters,
    rel,
    save_fields,
    save_json,
    save_npy,
    save_pretrained_fresh,
    selected_names,
    to_numpy,
)

DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "text"))
OUT = os.path.join(REPO, "tests", "fixtures", "text")
TOKENIZER_DIR = os.path.join(OUT, "tokenizer")
DEFAULT_TF4 = os.path.expanduser("~/.cache/d2v-tf4-pkgs")

PAD_ID = 1
MAX_LEN = 64  # max_position_embeddings 66 - (pad_token_id + 1)

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=66,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    hidden_act="gelu",
    pad_token_id=PAD_ID,
    bos_token_id=0,
    eos_token_id=2,
)

CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
INPUT_ARRAYS = ("input_ids", "attention_mask", "token_type_ids")
TOKENIZER_LOAD = "RobertaTokenizerFast.from_pretrained('tests/fixtures/text/tokenizer')"


# --------------------------------------------------------------------------------------------
# helpers (the generic ones are in fixture_common.py)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_json_objects(path):
    """A JSON document, or several JSON objects written one after another (conll/swag samples)."""
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    dec = json.JSONDecoder()
    objs, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return objs
        obj, i = dec.raw_decode(text, i)
        objs.append(obj)


def versions():
    import tokenizers

    return {
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def variant_seed(name):
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def load_tokenizer(wait_s=0):
    tok_json = os.path.join(TOKENIZER_DIR, "tokenizer.json")
    deadline = time.time() + wait_s
    announced = False
    while not os.path.exists(tok_json):
        if time.time() > deadline:
            raise SystemExit(f"ERROR: {rel(tok_json)} does not exist (waited {wait_s} s)")
        if not announced:
            log(f"waiting for {rel(tok_json)} (up to {wait_s} s) ...")
            announced = True
        time.sleep(10)
    time.sleep(0 if not announced else 5)  # let the writer finish the other files
    from transformers import RobertaTokenizerFast

    tok = RobertaTokenizerFast.from_pretrained(TOKENIZER_DIR)
    expected = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    got = {t: tok.convert_tokens_to_ids(t) for t in expected}
    assert got == expected, f"unexpected special token ids {got}"
    assert tok.pad_token_id == PAD_ID
    return tok


# --------------------------------------------------------------------------------------------
# input sets


def wiki_lines():
    with open(os.path.join(DATA, "wiki_text", "wiki_00"), encoding="utf-8") as f:
        return f.read().split("\n")


def first_sentence(line):
    i = line.index(". ")
    return line[: i + 1]


def np_encoding(enc, keys=INPUT_ARRAYS):
    return {k: np.asarray(enc[k], dtype=np.int64) for k in keys}


def row_tokens(tok, ids, mask=None):
    out = []
    for b, row in enumerate(ids):
        n = int(mask[b].sum()) if mask is not None else len(row)
        out.append(tok.convert_ids_to_tokens([int(i) for i in row[:n]]))
    return out


def set_wiki(tok):
    lines = wiki_lines()
    texts = [lines[1], first_sentence(lines[3]), lines[61]]
    enc = tok(texts, padding=True, truncation=True, max_length=32, return_token_type_ids=True)
    arr = np_encoding(enc)
    lengths = arr["attention_mask"].sum(1).tolist()
    assert arr["input_ids"].shape == (3, 32) and lengths[0] < lengths[1] < 32 == lengths[2], lengths
    return arr, {
        "source": "../shared/data/text/wiki_text/wiki_00 split on '\\n' (0-based line numbers): line 1 (a title), "
        "the first sentence of line 3 (up to and including the first '. '), line 61 (truncated)",
        "texts": texts,
        "tokenizer_call": "tok(texts, padding=True, truncation=True, max_length=32, return_token_type_ids=True)",
        "lengths": lengths,
        "truncated": [False, False, True],
    }, {}


def set_long(tok):
    lines = wiki_lines()
    texts = [lines[41], lines[117]]
    enc = tok(texts, padding=True, truncation=True, max_length=MAX_LEN, return_token_type_ids=True)
    arr = np_encoding(enc)
    lengths = arr["attention_mask"].sum(1).tolist()
    assert arr["input_ids"].shape == (2, MAX_LEN) and lengths[0] == MAX_LEN, lengths
    return arr, {
        "source": "../shared/data/text/wiki_text/wiki_00 lines 41 (a paragraph, truncated to the full usable length "
        f"{MAX_LEN} = max_position_embeddings 66 - pad_token_id 1 - 1: position ids 2..65) and 117 (a title)",
        "texts": texts,
        "tokenizer_call": f"tok(texts, padding=True, truncation=True, max_length={MAX_LEN}, return_token_type_ids=True)",
        "lengths": lengths,
    }, {}


MRPC_ROWS = [5, 1, 2]


def set_mrpc(tok):
    with open(os.path.join(DATA, "mrpc", "dev.tsv"), encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], [rows[i] for i in MRPC_ROWS]
    assert header[3] == "#1 String" and header[4] == "#2 String", header
    first = [r[3] for r in rows]
    second = [r[4] for r in rows]
    enc = tok(first, second, padding=True, truncation=True, max_length=MAX_LEN, return_token_type_ids=True)
    arr = np_encoding(enc)
    return arr, {
        "source": f"../shared/data/text/mrpc/dev.tsv (utf-8-sig, tab separated, no quoting), data rows {MRPC_ROWS} "
        "(1-based after the header line); the first fits in 64 tokens, the other two are truncated (longest_first)",
        "pairs": [[a, b] for a, b in zip(first, second)],
        "mrpc_quality": [int(r[0]) for r in rows],
        "tokenizer_call": f"tok(first, second, padding=True, truncation=True, max_length={MAX_LEN}, "
        "return_token_type_ids=True)  -> <s> A </s></s> B </s>; token_type_ids are all 0 for RoBERTa-style "
        "tokenizers",
        "lengths": arr["attention_mask"].sum(1).tolist(),
    }, {}


SQUAD_EXAMPLES = [7, 9, 0]


def set_squad(tok):
    every = load_json(os.path.join(DATA, "squad", "sample.json"))["data"]
    data = [every[i] for i in SQUAD_EXAMPLES]
    questions = [d["question"] for d in data]
    contexts = [d["context"] for d in data]
    enc = tok(questions, contexts, padding=True, truncation="only_second", max_length=MAX_LEN,
              return_token_type_ids=True, return_offsets_mapping=True)
    arr = np_encoding(enc)
    starts, ends, spans = [], [], []
    for b, d in enumerate(data):
        a_start = d["answers"]["answer_start"][0]
        a_text = d["answers"]["text"][0]
        a_end = a_start + len(a_text)
        assert d["context"][a_start:a_end] == a_text
        seq = enc.sequence_ids(b)
        offs = enc["offset_mapping"][b]
        ctx = [i for i, s in enumerate(seq) if s == 1]
        s_tok = e_tok = 0
        if offs[ctx[0]][0] <= a_start and offs[ctx[-1]][1] >= a_end:
            s_tok = next(i for i in ctx if offs[i][1] > a_start)
            e_tok = max(i for i in ctx if offs[i][0] < a_end)
        starts.append(s_tok)
        ends.append(e_tok)
        spans.append(tok.decode(arr["input_ids"][b, s_tok: e_tok + 1]))
    assert starts[0] > 0 and starts[1] > 0 and starts[2] == ends[2] == 0, (starts, ends)
    return arr, {
        "source": f"../shared/data/text/squad/sample.json, data{SQUAD_EXAMPLES} (question, context, "
        "answers.answer_start[0], answers.text[0]); the answers of the first two lie inside the truncated context, "
        "the third's does not",
        "pairs": [[q, c] for q, c in zip(questions, contexts)],
        "answers": [d["answers"]["text"][0] for d in data],
        "answer_char_start": [d["answers"]["answer_start"][0] for d in data],
        "tokenizer_call": f"tok(questions, contexts, padding=True, truncation='only_second', max_length={MAX_LEN}, "
        "return_token_type_ids=True, return_offsets_mapping=True)",
        "lengths": arr["attention_mask"].sum(1).tolist(),
        "start_positions": starts,
        "end_positions": ends,
        "positions_rule": "as run_qa.py: first context token whose offset end > answer start, last context token whose "
        "offset start < answer end (offsets exclude the leading space, trim_offsets=True); 0 (<s>) if the answer "
        "is not completely inside the truncated context (the third example)",
        "decoded_answer_spans": spans,
    }, {"start_positions": np.asarray(starts, np.int64), "end_positions": np.asarray(ends, np.int64)}
    # (asserted: the first two answers are found, the third is outside the 64-token window)


def set_conll(tok):
    sents = read_json_objects(os.path.join(DATA, "conll", "sample.json"))[:3]
    label_id = {t: i for i, t in enumerate(CONLL_TAGS)}
    texts = [" ".join(s["words"]) for s in sents]
    enc = tok(texts, padding=True, truncation=True, max_length=MAX_LEN, return_token_type_ids=True,
              return_offsets_mapping=True)
    arr = np_encoding(enc)
    labels = np.full(arr["input_ids"].shape, -100, dtype=np.int64)
    first_tokens = []
    for b, s in enumerate(sents):
        offs = enc["offset_mapping"][b]
        mask = enc["attention_mask"][b]
        pos, firsts = 0, []
        for word, tag in zip(s["words"], s["ner"]):
            start = texts[b].index(word, pos)
            pos = start + len(word)
            t = next(i for i, (o, m) in enumerate(zip(offs, mask))
                     if m and o[1] > o[0] and o[0] <= start < o[1])
            assert labels[b, t] == -100
            labels[b, t] = label_id[tag]
            firsts.append(t)
        first_tokens.append(firsts)
    return arr, {
        "source": "../shared/data/text/conll/sample.json (concatenated JSON objects), the first 3 sentences",
        "words": [s["words"] for s in sents],
        "ner": [s["ner"] for s in sents],
        "texts": texts,
        "text_rule": "' '.join(words)",
        "tokenizer_call": f"tok(texts, padding=True, truncation=True, max_length={MAX_LEN}, return_token_type_ids=True, "
        "return_offsets_mapping=True)",
        "lengths": arr["attention_mask"].sum(1).tolist(),
        "label_names": CONLL_TAGS,
        "labels_rule": "each word's tag id at the token whose character offsets contain the word's first character "
        "(its first sub-token); every other token (later sub-tokens, <s>, </s>, padding) gets -100",
        "first_subtoken_index": first_tokens,
    }, {"labels": labels}


def set_swag(tok):
    exs = read_json_objects(os.path.join(DATA, "swag", "sample.json"))[:2]
    first = [e["sent1"] for e in exs for _ in range(4)]
    second = [f"{e['sent2']} {e[f'ending{k}']}" for e in exs for k in range(4)]
    enc = tok(first, second, padding=True, truncation=True, max_length=MAX_LEN, return_token_type_ids=True)
    flat = np_encoding(enc)
    arr = {k: v.reshape(len(exs), 4, -1) for k, v in flat.items()}
    labels = np.asarray([e["label"] for e in exs], dtype=np.int64)
    return arr, {
        "source": "../shared/data/text/swag/sample.json (concatenated JSON objects), the first 2 examples",
        "first": first,
        "second": second,
        "text_rule": "as run_swag.py: first = [sent1] * 4, second = [sent2 + ' ' + ending<k> for k in 0..3]",
        "tokenizer_call": f"tok(first, second, padding=True, truncation=True, max_length={MAX_LEN}, "
        "return_token_type_ids=True) on the 8 flattened pairs, then reshaped to [2, 4, T]",
        "lengths": flat["attention_mask"].sum(1).reshape(len(exs), 4).tolist(),
        "labels": labels.tolist(),
    }, {"labels": labels}


def set_masked(tok):
    lines = wiki_lines()
    originals = [lines[75].split(". ")[0] + ".", lines[83].split(". ")[4] + "."]
    rng = np.random.RandomState(1234)
    masked_texts, expected, labels_rows, picks = [], [], [], []
    for text in originals:
        enc = tok(text, return_offsets_mapping=True)
        ids, offs = enc["input_ids"], enc["offset_mapping"]
        toks = tok.convert_ids_to_tokens(ids)
        # whole-word candidates: one token "Ġword" (alphabetic) followed by a token that starts a new word
        cand = [i for i in range(1, len(ids) - 1)
                if toks[i].startswith("\u0120") and toks[i][1:].isalpha()
                and (toks[i + 1].startswith("\u0120") or not toks[i + 1][:1].isalnum())]
        k = max(2, int(round(0.2 * len(cand))))
        chosen = sorted(rng.choice(cand, size=k, replace=False).tolist())
        pieces, last = [], 0
        for i in chosen:
            s, e = offs[i]
            pieces.append(text[last:s])
            pieces.append(tok.mask_token)
            last = e
        pieces.append(text[last:])
        mtext = "".join(pieces)
        exp = list(ids)
        lab = [-100] * len(ids)
        for i in chosen:
            exp[i] = tok.mask_token_id
            lab[i] = ids[i]
        masked_texts.append(mtext)
        expected.append(exp)
        labels_rows.append(lab)
        picks.append(chosen)
    enc = tok(masked_texts, padding=True, truncation=True, max_length=MAX_LEN, return_token_type_ids=True)
    arr = np_encoding(enc)
    T = arr["input_ids"].shape[1]
    labels = np.full((len(originals), T), -100, dtype=np.int64)
    for b, (exp, lab) in enumerate(zip(expected, labels_rows)):
        n = len(exp)
        assert arr["input_ids"][b, :n].tolist() == exp, (masked_texts[b], arr["input_ids"][b], exp)
        labels[b, :n] = lab
    return arr, {
        "source": "../shared/data/text/wiki_text/wiki_00: line 75 split at '. ', part 0 + '.', and line 83 split at "
        "'. ', part 4 + '.'",
        "original_texts": originals,
        "texts": masked_texts,
        "mask_rule": "candidates = tokens 'Ġword' (alphabetic, one token per word, followed by a token starting a new "
        "word); numpy.random.RandomState(1234).choice(candidates, max(2, round(0.2*len)), replace=False) per "
        "sentence; the word's characters (offsets exclude the space) replaced by '<mask>' in the text. <mask> has "
        "lstrip=True, so ' <mask>' becomes the single id 4 at exactly the replaced token",
        "masked_token_positions": picks,
        "tokenizer_call": f"tok(texts, padding=True, truncation=True, max_length={MAX_LEN}, return_token_type_ids=True)",
        "lengths": arr["attention_mask"].sum(1).tolist(),
        "labels_rule": "original token id at the masked positions, -100 everywhere else",
    }, {"labels": labels}


INPUT_SETS = {
    "wiki": set_wiki,
    "long": set_long,
    "mrpc_pairs": set_mrpc,
    "squad": set_squad,
    "conll": set_conll,
    "swag": set_swag,
    "masked": set_masked,
}


def position_ids_like_transformers(input_ids):
    from transformers.models.data2vec.modeling_data2vec_text import Data2VecTextEmbeddings

    ids = torch.from_numpy(input_ids.reshape(-1, input_ids.shape[-1]))
    pos = Data2VecTextEmbeddings.create_position_ids_from_input_ids(ids, PAD_ID)
    return pos.numpy().reshape(input_ids.shape)


def build_inputs(tok):
    inputs = {}
    for name, fn in INPUT_SETS.items():
        arr, info, labels = fn(tok)
        ids = arr["input_ids"]
        assert ids.shape[-1] <= MAX_LEN
        assert not np.any(arr["token_type_ids"]), "type_vocab_size is 1"
        # right padding, and the pad id occurs only where attention_mask is 0
        assert np.array_equal(ids == PAD_ID, arr["attention_mask"] == 0), name
        arr["position_ids"] = position_ids_like_transformers(ids)
        info["tokens"] = row_tokens(tok, ids.reshape(-1, ids.shape[-1]),
                                    arr["attention_mask"].reshape(-1, ids.shape[-1]))
        info["shape"] = list(ids.shape)
        inputs[name] = dict(arrays=arr, info=info, labels=labels)
    return inputs


def write_inputs(inputs, tok):
    log("inputs")
    for name, inp in inputs.items():
        d = os.path.join(OUT, "inputs", name)
        if os.path.isdir(d):
            shutil.rmtree(d)
        for k, v in inp["arrays"].items():
            save_npy(os.path.join(d, f"{k}.npy"), v)
        info = dict(inp["info"])
        info["tokenizer"] = TOKENIZER_LOAD + f"  (len(tok) = {len(tok)})"
        info["position_ids_note"] = ("position_ids.npy is not fed to the models; it is what Data2VecTextEmbeddings."
                                     "create_position_ids_from_input_ids computes: (cumsum(input_ids != pad) * "
                                     "(input_ids != pad)) + pad_token_id, i.e. 2, 3, ... for tokens and 1 for pads")
        info["versions"] = versions()
        save_json(os.path.join(d, "texts.json"), info)


# --------------------------------------------------------------------------------------------
# variants

VARIANTS = {}


def variant(fn):
    VARIANTS[fn.__name__] = fn
    return fn


# Each variant function returns a dict:
#   cls (class name in transformers), cls_kwargs, config (dict of Data2VecTextConfig kwargs besides TINY),
#   inputs (list of sets), labels: callable(inputs) -> {set: {kwarg: ndarray}},
#   detail: {set: (hidden_states, attentions)}, tf4 (bool: made by Transformers 4.x),
#   extra: callable(model, inputs_arrays, gen) -> (arrays {relpath: ndarray}, info dict), notes (str)


def from_set(set_name, *keys):
    def labels(inputs):
        return {set_name: {k: inputs[set_name]["labels"][k] for k in keys}}

    return labels


@variant
def model_absolute():
    return dict(
        cls="Data2VecTextModel",
        inputs=["wiki", "mrpc_pairs", "long"],
        detail={"wiki": (True, True), "mrpc_pairs": (True, True)},
        notes="Data2VecTextModel with the pooler (dense + tanh on the <s> token of last_hidden_state). Absolute "
        "position embeddings: position ids = pad_token_id + 1 + index among the non-pad tokens, pads get position "
        "pad_token_id (1); the embedding is LayerNorm(word + position + token_type[0]). 'long' uses the full "
        "usable length 64 (position ids up to 65 = max_position_embeddings - 1).",
    )


@variant
def model_no_pooler():
    return dict(
        cls="Data2VecTextModel",
        cls_kwargs={"add_pooling_layer": False},
        inputs=["wiki", "mrpc_pairs"],
        notes="Data2VecTextModel(config, add_pooling_layer=False), like facebook/data2vec-text-base: the checkpoint "
        "has no pooler.* tensors and pooler_output is None.",
    )


def relative_variant(kind):
    return dict(
        cls="Data2VecTextModel",
        config={"position_embedding_type": kind},
        inputs=["wiki", "long"],
        detail={"wiki": (False, True)},
        tf4=True,
        notes=f"position_embedding_type='{kind}' (made with Transformers 4.x; Transformers 5 removed it). Each "
        "self-attention layer has distance_embedding [2*max_position_embeddings-1 = 131, head_size 8]; "
        "distance = l - r (query index minus key index, plain 0-based sequence indices, NOT the RoBERTa "
        "position ids, padding ignored), row = distance + max_position_embeddings - 1. Scores = (q.k "
        + ("+ q.D[l-r]" if kind == "relative_key" else "+ q.D[l-r] + k.D[l-r]")
        + ") / sqrt(head_size) + mask. The absolute position_embeddings table still exists in the "
        "checkpoint but is NOT added (embeddings = LayerNorm(word + token_type)). Transformers 4.x builds the "
        "mask as (1 - attention_mask) * finfo(float32).min.",
    )


@variant
def model_relative_key():
    return relative_variant("relative_key")


@variant
def model_relative_key_query():
    return relative_variant("relative_key_query")


def relative_causal_extra(model, arrays, gen):
    """Greedy generation of a relative_key decoder: Transformers 4.x with and without its KV cache."""
    prompt_ids = torch.from_numpy(arrays["generate"]["prompt_ids"])
    P, steps = prompt_ids.shape[1], 20
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = PAD_ID
    kw = dict(attention_mask=torch.ones_like(prompt_ids), max_new_tokens=steps, do_sample=False, num_beams=1)
    with torch.no_grad():
        uncached = model.generate(prompt_ids, use_cache=False, **kw)
        cached = model.generate(prompt_ids, use_cache=True, **kw)
        # greedy loop of full forward passes; relative_key adds no absolute position, so the position ids
        # (RoBERTa's or generate()'s 0-based ones) cannot change anything
        cur = prompt_ids
        for _ in range(steps):
            cur = torch.cat([cur, model(cur, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)], 1)
        same_with_0_based = torch.equal(model(cur, position_ids=torch.arange(cur.shape[1])[None]).logits,
                                        model(cur).logits)
        # the cached forward (prompt at once, then one token per step) against one full pass, same ids
        full = model(cached, use_cache=False).logits
        logits_uncached = model(uncached, use_cache=False).logits
        out = model(cached[:, :P], use_cache=True)
        past, logits = out.past_key_values, [out.logits]
        for t in range(P, cached.shape[1]):
            out = model(cached[:, t:t + 1], past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits.append(out.logits)
        stepped = torch.cat(logits, 1)
    assert torch.equal(uncached, cur), "generate(use_cache=False) is not the greedy loop of full forward passes"
    info = {"generate_relative_key": {
        "prompt_text": GENERATE_PROMPT,
        "prompt_rule": "[tok.bos_token_id] + tok(prompt_text, add_special_tokens=False)['input_ids'] (no </s>)",
        "output_ids_uncached.npy": f"model.generate(prompt_ids, attention_mask=ones, max_new_tokens={steps}, "
        "do_sample=False, num_beams=1, use_cache=False), eos_token_id None: equals the greedy loop of full "
        "forward passes (checked)",
        "output_ids_cached.npy": "the same call with use_cache=True",
        "logits_uncached.npy": "model(output_ids_uncached, use_cache=False).logits: one full forward pass",
        "new_tokens_uncached": uncached[0, P:].tolist(),
        "new_tokens_cached": cached[0, P:].tolist(),
        "cached_equals_uncached": bool(torch.equal(cached, uncached)),
        "position_ids_change_nothing": bool(same_with_0_based),
        "cached_forward_vs_full_forward_max_abs_logit_diff": {
            "prompt positions (prefill)": float((stepped[:, :P] - full[:, :P]).abs().max()),
            "generated positions (one token per step)": float((stepped[:, P:] - full[:, P:]).abs().max())},
        "why": "Transformers 4.x's relative_key(_query) attention, when use_cache is set, gives every query the "
        "position key_length - 1 (right for one new token, wrong for the prompt's queries at prefill), so the "
        "cached prompt logits, the cached keys/values of later layers and hence the logits of every later step "
        "differ from full forward passes (the greedy tokens may or may not change: new_tokens_*). A plain "
        "forward with use_cache=True (the decoder config's default) is wrong the same way, so this variant's "
        "config sets use_cache=False.",
    }}
    arrays_out = {"generate/prompt_ids": prompt_ids.numpy(), "generate/output_ids_uncached": uncached.numpy(),
                  "generate/output_ids_cached": cached.numpy(), "generate/logits_uncached": logits_uncached.numpy()}
    return arrays_out, info


@variant
def causal_lm_relative_key():
    def labels(inputs):
        a = inputs["wiki"]["arrays"]
        return {"wiki": {"labels": np.where(a["attention_mask"] == 1, a["input_ids"], -100).astype(np.int64)}}

    return dict(
        cls="Data2VecTextForCausalLM",
        config={"is_decoder": True, "position_embedding_type": "relative_key", "use_cache": False},
        inputs=["wiki"],
        labels=labels,
        extra=relative_causal_extra,
        aux_sets=["wiki", "generate"],
        tf4=True,
        notes="Data2VecTextForCausalLM with is_decoder=True and position_embedding_type='relative_key' (made with "
        "Transformers 4.x): causal + padding mask, relative_key scores as in model_relative_key, no absolute "
        "position embedding added. generate/ holds greedy generate() with and without the KV cache: they "
        "differ (see generate_relative_key).",
    )


@variant
def masked_lm():
    return dict(
        cls="Data2VecTextForMaskedLM",
        inputs=["masked"],
        labels=from_set("masked", "labels"),
        notes="Data2VecTextForMaskedLM: lm_head = dense 32->32, gelu (exact erf), layer_norm, decoder 32->vocab "
        "whose weight is TIED to data2vec_text.embeddings.word_embeddings.weight (not saved in the checkpoint; "
        "convert.py copies it) and whose bias is lm_head.bias. Loss = CrossEntropyLoss(mean) over the positions "
        "whose label != -100 (the masked tokens only).",
    )


def causal_extra(model, arrays, gen):
    """Causality check of the reference itself and a greedy generate() run."""
    ids = torch.from_numpy(arrays["wiki"]["input_ids"])
    mask = torch.from_numpy(arrays["wiki"]["attention_mask"])
    lengths = mask.sum(1).tolist()
    with torch.no_grad():
        base = model(ids, attention_mask=mask).logits
        max_earlier, min_changed = 0.0, math.inf
        for b, n in enumerate(lengths):
            mod = ids.clone()
            mod[b, n - 1] = 100 + 37 * b if int(ids[b, n - 1]) != 100 + 37 * b else 101
            out = model(mod, attention_mask=mask).logits
            max_earlier = max(max_earlier, float((out[b, : n - 1] - base[b, : n - 1]).abs().max()))
            others = [i for i in range(ids.shape[0]) if i != b]
            max_earlier = max(max_earlier, float((out[others] - base[others]).abs().max()))
            min_changed = min(min_changed, float((out[b, n - 1] - base[b, n - 1]).abs().max()))
        # the same without an attention mask on the unpadded longest row
        b = int(np.argmax(lengths))
        n = lengths[b]
        one = ids[b: b + 1, :n].clone()
        a = model(one).logits
        one[0, n - 1] = 100 if int(one[0, n - 1]) != 100 else 101
        c = model(one).logits
        max_earlier_nomask = float((a[0, : n - 1] - c[0, : n - 1]).abs().max())

    # greedy generation from a short prompt (made by make_generate_prompt in the main process)
    prompt_ids = torch.from_numpy(arrays["generate"]["prompt_ids"])
    prompt = prompt_ids[0].tolist()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = PAD_ID
    seen_position_ids = []

    def spy(module, args, kwargs):  # records what generate() feeds, without changing forward's signature
        seen_position_ids.append(None if kwargs.get("position_ids") is None else kwargs["position_ids"].tolist())

    margins = {}

    def greedy_loop(positions):
        cur, m = prompt_ids, []
        for _ in range(20):  # full recomputation, no cache, no attention mask
            pos = torch.arange(cur.shape[1]).unsqueeze(0) if positions == "0-based" else None
            last = model(cur, position_ids=pos).logits[:, -1]
            top2 = torch.topk(last[0], 2).values
            m.append(float(top2[0] - top2[1]))
            cur = torch.cat([cur, last.argmax(-1, keepdim=True)], 1)
        margins[positions] = min(m)
        return cur

    with torch.no_grad():
        hook = model.register_forward_pre_hook(spy, with_kwargs=True)
        try:
            out_ids = model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=20,
                                     do_sample=False, num_beams=1)
        finally:
            hook.remove()
        loop_0based = greedy_loop("0-based")
        loop_default = greedy_loop("default")
    assert out_ids.shape == (1, len(prompt) + 20), out_ids.shape
    P = len(prompt)
    info = {
        "reference_is_causal": max_earlier == 0.0 and max_earlier_nomask == 0.0,
        "causality_check": "wiki batch with its attention mask: for each row, the last real token replaced by another "
        "id; max |logits difference| at all earlier positions of that row and at all positions of the other rows = "
        f"{max_earlier!r}; same for the unpadded longest row without attention mask = {max_earlier_nomask!r}; "
        f"min over rows of max |difference| at the changed position itself = {min_changed!r} (must be > 0)",
        "causality_max_abs_diff_earlier_positions": max(max_earlier, max_earlier_nomask),
        "generate": {
            "prompt_text": GENERATE_PROMPT,
            "prompt_rule": "[tok.bos_token_id] + tok(prompt_text, add_special_tokens=False)['input_ids'] (no </s>)",
            "call": "model.generate(prompt_ids, attention_mask=ones, max_new_tokens=20, do_sample=False, num_beams=1) "
            "with model.generation_config.eos_token_id = None (so exactly 20 tokens are produced, nothing stops "
            "or is padded) and pad_token_id = 1; uses the KV cache",
            "output_ids.npy": "what generate() returns",
            "WARNING_position_ids": "generate() does NOT use the RoBERTa position ids of a plain forward call: "
            "GenerationMixin.prepare_inputs_for_generation passes position_ids = attention_mask.cumsum(-1) - 1, "
            "i.e. 0, 1, 2, ... (prefill) and then len-1 for each new token, to every model whose forward() has a "
            "position_ids argument. A forward() without position_ids uses pad_token_id + 1 + i = 2, 3, ... So "
            "generate() == greedy argmax loop with position_ids = arange(len) (output_ids.npy), which differs from "
            "the greedy loop with the model's own positions (output_ids_default_positions.npy).",
            "position_ids_fed_by_generate_first_steps": seen_position_ids[:3],
            "new_tokens": out_ids[0, P:].tolist(),
            "equals_greedy_loop_with_position_ids_0_based": bool(torch.equal(loop_0based, out_ids)),
            "new_tokens_default_positions": loop_default[0, P:].tolist(),
            "output_ids_default_positions.npy": "greedy argmax loop, 20 steps, full recomputation of model(ids) with "
            "the default (RoBERTa, 2-based) position ids and no attention mask",
            "default_positions_equal_generate": bool(torch.equal(loop_default, out_ids)),
            "min_top1_top2_logit_margin": {"generate (0-based positions)": margins["0-based"],
                                           "default positions": margins["default"]},
            "contains_special_ids": sorted({i for i in out_ids[0, P:].tolist() + loop_default[0, P:].tolist() if i < 5}),
        },
    }
    assert min_changed > 0.0
    assert info["generate"]["equals_greedy_loop_with_position_ids_0_based"], "generate() is not the 0-based greedy loop"
    arrays_out = {"generate/prompt_ids": prompt_ids.numpy(), "generate/output_ids": out_ids.numpy(),
                  "generate/output_ids_default_positions": loop_default.numpy()}
    return arrays_out, info


GENERATE_PROMPT = "Anarchism is a political"


def make_generate_prompt(tok):
    prompt = [tok.bos_token_id] + tok(GENERATE_PROMPT, add_special_tokens=False)["input_ids"]
    return {"prompt_ids": np.asarray([prompt], dtype=np.int64)}


@variant
def causal_lm():
    def labels(inputs):
        a = inputs["wiki"]["arrays"]
        lab = np.where(a["attention_mask"] == 1, a["input_ids"], -100).astype(np.int64)
        return {"wiki": {"labels": lab}}

    return dict(
        cls="Data2VecTextForCausalLM",
        config={"is_decoder": True},
        inputs=["wiki"],
        labels=labels,
        extra=causal_extra,
        aux_sets=["wiki", "generate"],
        notes="Data2VecTextForCausalLM, is_decoder=True: self-attention mask = causal AND padding (min float "
        "added). Same LM head as masked_lm (decoder tied to the word embeddings, bias lm_head.bias). labels = "
        "input_ids with pads -> -100; loss = ForCausalLMLoss: logits[:, :-1] against labels[:, 1:] (shifted "
        "inside the model), CrossEntropy mean over the non -100 targets (float32 logits). Position ids are the "
        "RoBERTa ones (from input_ids, 2, 3, ...); during generate() with the KV cache the new token gets "
        "past_length + pad_token_id + 1, i.e. the same as recomputing the whole sequence.",
    )


@variant
def seqcls_single():
    def labels(inputs):
        return {"mrpc_pairs": {"labels": np.asarray([1, 0, 2], dtype=np.int64)}}

    return dict(
        cls="Data2VecTextForSequenceClassification",
        config={"num_labels": 3, "id2label": {0: "not_equivalent", 1: "equivalent", 2: "unrelated"},
                "label2id": {"not_equivalent": 0, "equivalent": 1, "unrelated": 2}},
        inputs=["mrpc_pairs"],
        labels=labels,
        notes="Classification head on the <s> token of last_hidden_state (NOT the pooler; there is no pooler): "
        "dense 32->32, tanh, out_proj 32->3. problem_type is None in the saved config; Transformers infers "
        "'single_label_classification' at run time because num_labels > 1 and the labels are int64 -> "
        "CrossEntropyLoss(mean). Labels [1, 0, 2] are arbitrary.",
    )


@variant
def seqcls_multi():
    def labels(inputs):
        lab = np.asarray([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 1]], dtype=np.float32)
        return {"mrpc_pairs": {"labels": lab}}

    names = ["politics", "finance", "sports", "science"]
    return dict(
        cls="Data2VecTextForSequenceClassification",
        config={"num_labels": 4, "problem_type": "multi_label_classification",
                "id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}},
        inputs=["mrpc_pairs"],
        labels=labels,
        notes="problem_type='multi_label_classification' (saved in the config), num_labels 4: loss = "
        "BCEWithLogitsLoss(mean over all batch*labels elements) with float multi-hot labels.",
    )


@variant
def seqcls_regression():
    def labels(inputs):
        return {"mrpc_pairs": {"labels": np.asarray([3.8, 0.4, 2.5], dtype=np.float32)}}

    return dict(
        cls="Data2VecTextForSequenceClassification",
        config={"num_labels": 1},
        inputs=["mrpc_pairs"],
        labels=labels,
        notes="num_labels 1, problem_type None in the saved config: Transformers infers 'regression' at run time "
        "(num_labels == 1) -> MSELoss(logits.squeeze(), labels.squeeze()), mean. Float labels [3]. (Unlike "
        "Data2VecAudioForSequenceClassification, which always uses CrossEntropy.)",
    )


@variant
def multiple_choice():
    return dict(
        cls="Data2VecTextForMultipleChoice",
        inputs=["swag"],
        labels=from_set("swag", "labels"),
        notes="Data2VecTextForMultipleChoice: input [B, C, T] flattened to [B*C, T]; the base model HAS the "
        "pooler; logits = classifier(pooler_output) (Linear 32->1) reshaped to [B, C]. Loss = CrossEntropyLoss "
        "(mean) over the C choices.",
    )


@variant
def token_classification():
    return dict(
        cls="Data2VecTextForTokenClassification",
        config={"num_labels": len(CONLL_TAGS), "id2label": dict(enumerate(CONLL_TAGS)),
                "label2id": {t: i for i, t in enumerate(CONLL_TAGS)}},
        inputs=["conll"],
        labels=from_set("conll", "labels"),
        notes="Linear 32->9 on every token of last_hidden_state (no pooler), CoNLL-2003 tag names as id2label. "
        "Loss = CrossEntropyLoss(mean) over the tokens whose label != -100 (first sub-token of each word).",
    )


@variant
def question_answering():
    return dict(
        cls="Data2VecTextForQuestionAnswering",
        inputs=["squad"],
        labels=from_set("squad", "start_positions", "end_positions"),
        notes="qa_outputs Linear 32->2 on every token; start_logits = [..., 0], end_logits = [..., 1] (padded "
        "positions are NOT masked). Loss: positions clamped to [0, T], CrossEntropyLoss(ignore_index=T) for "
        "start and end, loss = (start_loss + end_loss) / 2.",
    )


# --------------------------------------------------------------------------------------------
# model construction and running (shared by the main process and the Transformers 4.x worker)


def perturb_parameters(model, gen):
    """Make every parameter informative for the comparison.

    Transformers' init leaves LayerNorm weight=1/bias=0, biases at 0 and every weight at std 0.02.  We
    redraw EVERY parameter: Linear weights ~ N(0, 1/in_features), every bias ~ 0.1*N(0,1), LayerNorm
    weight ~ 1 + 0.2*N(0,1), LayerNorm bias ~ 0.1*N(0,1), Embedding tables (word, position, token type,
    relative distance) ~ 0.5*N(0,1), including their padding_idx rows.  Tied parameters (the LM decoder
    weight/bias) are drawn once, as the module that comes first in model.modules() (the word embeddings).
    Every parameter must be redrawn (lm_head.bias is the decoder bias object in Transformers).
    """

    def rule(module, pname, p, randn):
        if isinstance(module, torch.nn.Embedding):
            return 0.5 * randn(p) if pname == "weight" else None
        return linear_layernorm(module, pname, p, randn)

    redraw_parameters(model, gen, rule, require_all=True)


def build_config(spec, vocab_size):
    cfg = transformers.Data2VecTextConfig(vocab_size=vocab_size, **TINY, **spec.get("config", {}))
    cfg._attn_implementation = "eager"
    return cfg


OUTPUT_FIELDS = ("loss", "logits", "start_logits", "end_logits", "last_hidden_state", "pooler_output")


def run_model(model, spec, arrays, labels, set_name):
    want_hidden, want_attn = spec.get("detail", {}).get(set_name, (False, False))
    kwargs = {k: torch.from_numpy(arrays[set_name][k]) for k in INPUT_ARRAYS}
    for k, v in labels.get(set_name, {}).items():
        kwargs[k] = torch.from_numpy(v)
    if want_hidden:
        kwargs["output_hidden_states"] = True
    if want_attn:
        kwargs["output_attentions"] = True
    with torch.no_grad():
        out = model(**kwargs, return_dict=True)
    fields = collect_outputs(out, OUTPUT_FIELDS, want_hidden, want_attn)
    info = {}
    if want_hidden:
        # what hidden_states.0 is: the embedding output (input of encoder layer 0)
        with torch.no_grad():
            base = getattr(model, "data2vec_text", model)
            emb = base.embeddings(input_ids=kwargs["input_ids"], token_type_ids=kwargs["token_type_ids"])
        info["hidden_states_0_equals_embeddings_output"] = bool(
            np.array_equal(fields["hidden_states.0"], to_numpy(emb)))
        last = fields[f"hidden_states.{len(out.hidden_states) - 1}"]
        info["last_hidden_states_equals_last_hidden_state"] = bool(np.array_equal(last, fields["last_hidden_state"]))
    if "loss" in fields:
        assert np.isfinite(fields["loss"]).all(), f"{set_name}: non-finite loss"
    return fields, info


def compute_variant(name, arrays, labels, vocab_size, ckpt_dir):
    """Build, perturb, save and run one variant with whatever transformers is imported."""
    spec = VARIANTS[name]()
    seed = variant_seed(name)
    torch.manual_seed(seed)
    cfg = build_config(spec, vocab_size)
    cls = getattr(transformers, spec["cls"])
    model = cls(cfg, **spec.get("cls_kwargs", {})).eval()
    gen = torch.Generator().manual_seed(seed)
    perturb_parameters(model, gen)
    tied = None
    if hasattr(model, "lm_head"):
        tied = model.lm_head.decoder.weight.data_ptr() == model.data2vec_text.embeddings.word_embeddings.weight.data_ptr()
        assert tied, "LM decoder weight is not tied to the word embeddings"

    save_pretrained_fresh(model, ckpt_dir)
    saved_config = load_json(os.path.join(ckpt_dir, "config.json"))

    results = {"fields": {}, "info": {}, "extras": {}, "extra_info": {}}
    for set_name in spec["inputs"]:
        fields, info = run_model(model, spec, arrays, labels, set_name)
        results["fields"][set_name] = fields
        results["info"][set_name] = info
    if cfg.problem_type is not None:
        results["problem_type_used"] = cfg.problem_type

    # the saved checkpoint reproduces the in-memory model
    reloaded = cls.from_pretrained(ckpt_dir, attn_implementation="eager", **spec.get("cls_kwargs", {})).eval()
    s0 = spec["inputs"][0]
    f_re, _ = run_model(reloaded, spec, arrays, labels, s0)
    for k, v in results["fields"][s0].items():
        assert np.array_equal(v, f_re[k]), f"{name}: reloaded checkpoint differs in {k}"

    if spec.get("extra"):
        extra_arrays, extra_info = spec["extra"](model, arrays, gen)
        results["extras"] = extra_arrays
        results["extra_info"] = extra_info

    results["config"] = saved_config
    results["seed"] = seed
    results["lm_decoder_tied"] = tied
    results["versions"] = versions()
    results["checkpoint_files"] = sorted(os.listdir(ckpt_dir))
    return results


def recompute_from_checkpoint(name, arrays, labels, ckpt_dir):
    """Outputs of a saved checkpoint (for the cross-version check)."""
    spec = VARIANTS[name]()
    cls = getattr(transformers, spec["cls"])
    model = cls.from_pretrained(ckpt_dir, attn_implementation="eager", **spec.get("cls_kwargs", {})).eval()
    return {s: run_model(model, spec, arrays, labels, s)[0] for s in spec["inputs"]}


# --------------------------------------------------------------------------------------------
# Transformers 4.x worker (sub-process)


def save_tree(base, fields_by_set, extras=None):
    for s, fields in fields_by_set.items():
        for k, v in fields.items():
            save_npy(os.path.join(base, s, f"{k}.npy"), v, quiet=True)
    for k, v in (extras or {}).items():
        save_npy(os.path.join(base, "_extras", f"{k}.npy"), v, quiet=True)


def load_tree(base, names_by_set):
    return {s: {k: np.load(os.path.join(base, s, f"{k}.npy")) for k in names} for s, names in names_by_set.items()}


def dump_arrays(work, arrays, labels, sets):
    for s in sets:
        for k, v in arrays[s].items():
            save_npy(os.path.join(work, "inputs", s, f"{k}.npy"), v, quiet=True)
        for k, v in labels.get(s, {}).items():
            save_npy(os.path.join(work, "labels", s, f"{k}.npy"), v, quiet=True)


def read_arrays(work, sets):
    arrays, labels = {}, {}
    for s in sets:
        d = os.path.join(work, "inputs", s)
        arrays[s] = {f[:-4]: np.load(os.path.join(d, f)) for f in sorted(os.listdir(d))}
        d = os.path.join(work, "labels", s)
        if os.path.isdir(d):
            labels[s] = {f[:-4]: np.load(os.path.join(d, f)) for f in sorted(os.listdir(d))}
    return arrays, labels


def tf4_worker(job_path):
    assert transformers.__version__.startswith("4."), (
        f"the worker needs Transformers 4.x, got {transformers.__version__} from {transformers.__file__}")
    init_torch_reference(disable_progress_bar=False)
    jobs = load_json(job_path)
    for job in jobs:
        name, work = job["variant"], job["work"]
        spec = VARIANTS[name]()
        sets = set(spec["inputs"]) | (set(spec.get("aux_sets", [])) if job["mode"] == "build" else set())
        arrays, labels = read_arrays(work, sorted(sets))
        out = os.path.join(work, "out")
        if job["mode"] == "build":
            res = compute_variant(name, arrays, labels, job["vocab_size"], job["ckpt_dir"])
            save_tree(out, res["fields"], res["extras"])
            res["field_names"] = {s: list(f) for s, f in res["fields"].items()}
            res["extra_names"] = list(res["extras"])
            del res["fields"], res["extras"]
        else:
            fields = recompute_from_checkpoint(name, arrays, labels, job["ckpt_dir"])
            save_tree(out, fields)
            res = {"field_names": {s: list(f) for s, f in fields.items()}, "versions": versions()}
        res["transformers_file"] = transformers.__file__
        save_json(os.path.join(work, "result.json"), res, quiet=True)
        print(f"tf4 worker: {job['mode']} {name} done (transformers {transformers.__version__})", flush=True)


def run_tf4(jobs, tf4_path, root):
    job_path = os.path.join(root, f"tf4_jobs_{len(os.listdir(root))}.json")
    save_json(job_path, jobs, quiet=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = tf4_path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, os.path.abspath(__file__), "--tf4-worker", job_path]
    log(f"PYTHONPATH={tf4_path} {' '.join(cmd)}")
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"Transformers 4.x worker failed (rc={r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}")
    log(r.stdout.strip())
    out = []
    for job in jobs:
        res = load_json(os.path.join(job["work"], "result.json"))
        res["fields"] = load_tree(os.path.join(job["work"], "out"), res.pop("field_names"))
        names = res.pop("extra_names", [])
        res["extras"] = {k: np.load(os.path.join(job["work"], "out", "_extras", f"{k}.npy")) for k in names}
        out.append(res)
    return out


# --------------------------------------------------------------------------------------------
# writing


FIELD_NOTES = (
    "last_hidden_state [B, T, 32] (padded positions kept as Transformers returns them); pooler_output = "
    "tanh(dense(last_hidden_state[:, 0])); hidden_states.0 = embedding output (LayerNorm(word + position + "
    "token_type)), hidden_states.i = output of layer i (the last equals last_hidden_state); attentions.i = "
    "softmax weights [B, heads, T, T] of layer i (padded keys get exactly 0, padded query rows kept). A scalar "
    "loss is saved with shape []. Labels are saved as fed (int64, or float32 for multi-label / regression)."
)


def copy_tokenizer(ckpt_dir):
    for f in sorted(os.listdir(TOKENIZER_DIR)):
        shutil.copyfile(os.path.join(TOKENIZER_DIR, f), os.path.join(ckpt_dir, f))


def write_variant(name, res, inputs, labels, tok, crosscheck):
    spec = VARIANTS[name]()
    vdir = os.path.join(OUT, name)
    if os.path.isdir(vdir):
        for entry in os.listdir(vdir):
            p = os.path.join(vdir, entry)
            if os.path.isdir(p):
                shutil.rmtree(p)
    meta_outputs, max_abs = {}, {}
    for s in spec["inputs"]:
        meta_outputs[s] = save_fields(os.path.join(vdir, s), res["fields"][s]) + save_fields(
            os.path.join(vdir, s), labels.get(s, {}))
        max_abs[s] = max_abs_by_field(res["fields"][s])
    for k, v in res.get("extras", {}).items():
        save_npy(os.path.join(vdir, f"{k}.npy"), v)
        d, f = k.split("/")
        meta_outputs.setdefault(d, []).append(f)

    meta = {
        "model_class": spec["cls"],
        "model_kwargs": spec.get("cls_kwargs", {}),
        "inputs": spec["inputs"],
        "input_arrays_fed": list(INPUT_ARRAYS) + sorted({k for s in spec["inputs"] for k in labels.get(s, {})}),
        "outputs": meta_outputs,
        "max_abs": max_abs,
        "transformers_version": res["versions"]["transformers"],
        "made_with_transformers_4_worker": bool(spec.get("tf4")),
        "tokenizer": TOKENIZER_LOAD + f"  (len(tok) = {len(tok)} = vocab_size); its files are copied into the "
        "checkpoint directory and packed into model.gguf",
        "tokenizer_calls": {s: inputs[s]["info"]["tokenizer_call"] for s in spec["inputs"]},
        "run_info": res["info"],
        "config_notes": spec["notes"],
        "field_notes": FIELD_NOTES,
        "config": res["config"],
        "seed": res["seed"],
        "parameter_init": "Transformers init, then perturb_parameters() (see make_text_fixtures.py) with "
        f"torch.Generator().manual_seed({res['seed']}) (seed = crc32(variant name))",
        "run": "model.eval(), torch.no_grad(), attn_implementation='eager', CPU float32, "
        "model(input_ids=, attention_mask=, token_type_ids=, [labels], return_dict=True)",
        "checkpoint_files": res["checkpoint_files"],
        "versions": res["versions"],
    }
    if res.get("problem_type_used"):
        meta["problem_type_used_at_run_time"] = res["problem_type_used"]
    if res.get("lm_decoder_tied") is not None:
        meta["lm_decoder_weight_tied_to_word_embeddings"] = res["lm_decoder_tied"]
    meta.update(res.get("extra_info", {}))
    if "generate" in meta:
        g = meta["generate"]
        g["new_token_strings"] = tok.convert_ids_to_tokens(g["new_tokens"])
        g["new_token_strings_default_positions"] = tok.convert_ids_to_tokens(g["new_tokens_default_positions"])
    if crosscheck is not None:
        meta["transformers4_crosscheck"] = crosscheck
    save_json(os.path.join(vdir, "meta.json"), meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(ap, VARIANTS)
    ap.add_argument("--wait-tokenizer", type=int, default=1800,
                    help="seconds to wait for tests/fixtures/text/tokenizer/tokenizer.json (default 1800)")
    ap.add_argument("--tf4-path", default=DEFAULT_TF4, help=f"Transformers 4.x packages (default {DEFAULT_TF4})")
    ap.add_argument("--no-tf4", action="store_true", help="skip the relative-position variants and the cross-check")
    ap.add_argument("--no-gguf", action="store_true", help="skip the convert.py step")
    ap.add_argument("--tf4-worker", metavar="JOB", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.tf4_worker:
        tf4_worker(args.tf4_worker)
        return

    assert transformers.__version__.startswith("5."), transformers.__version__
    init_torch_reference()
    names = selected_names(ap, args, VARIANTS)
    variants = [n for n in names if n != "inputs"]
    if args.no_tf4:
        skipped = [n for n in variants if VARIANTS[n]().get("tf4")]
        if skipped:
            log(f"--no-tf4: skipping {skipped}")
        variants = [n for n in variants if n not in skipped]

    tok = load_tokenizer(args.wait_tokenizer)
    inputs = build_inputs(tok)
    if "inputs" in names:
        write_inputs(inputs, tok)
    arrays = {s: {k: v for k, v in inp["arrays"].items() if k in INPUT_ARRAYS} for s, inp in inputs.items()}
    arrays["generate"] = make_generate_prompt(tok)

    ckpt_root, tmp = checkpoint_root(args.keep_checkpoints, "d2v-text-fixture-ckpts-")
    work_root = tempfile.mkdtemp(prefix="d2v-text-fixture-work-")
    try:
        results, labels_of, tf4_build, cross_jobs = {}, {}, [], []
        for n in variants:
            spec = VARIANTS[n]()
            labels_of[n] = spec["labels"](inputs) if spec.get("labels") else {}
            ckpt_dir = os.path.join(ckpt_root, n)
            if spec.get("tf4"):
                work = os.path.join(work_root, "build_" + n)
                dump_arrays(work, arrays, labels_of[n], sorted(set(spec["inputs"]) | set(spec.get("aux_sets", []))))
                tf4_build.append(dict(variant=n, mode="build", work=work, ckpt_dir=ckpt_dir,
                                      vocab_size=len(tok)))
                continue
            log(f"variant {n} (transformers {transformers.__version__})")
            res = compute_variant(n, arrays, labels_of[n], len(tok), ckpt_dir)
            if res.get("extra_info", {}).get("reference_is_causal") is False:
                # Transformers 5 let the causal LM see future tokens: make this variant with 4.x instead
                log(f"  {n}: Transformers {transformers.__version__} is NOT causal; using the 4.x worker")
                if args.no_tf4:
                    raise SystemExit("non-causal reference and --no-tf4")
                work = os.path.join(work_root, "build_" + n)
                dump_arrays(work, arrays, labels_of[n], sorted(set(spec["inputs"]) | set(spec.get("aux_sets", []))))
                tf4_build.append(dict(variant=n, mode="build", work=work, ckpt_dir=ckpt_dir,
                                      vocab_size=len(tok), non_causal_tf5=res["extra_info"]))
                continue
            results[n] = res
            work = os.path.join(work_root, "check_" + n)
            dump_arrays(work, arrays, labels_of[n], spec["inputs"])
            cross_jobs.append(dict(variant=n, mode="load", work=work, ckpt_dir=ckpt_dir))

        if tf4_build and not args.no_tf4:
            for job, res in zip(tf4_build, run_tf4(tf4_build, args.tf4_path, work_root)):
                if job.get("non_causal_tf5"):
                    res.setdefault("extra_info", {})["transformers5_causality_check"] = job["non_causal_tf5"]
                results[job["variant"]] = res

        cross = {}
        if cross_jobs and not args.no_tf4:
            for job, res in zip(cross_jobs, run_tf4(cross_jobs, args.tf4_path, work_root)):
                n = job["variant"]
                diffs = {s: {k: float(np.abs(v - res["fields"][s][k]).max())
                             for k, v in results[n]["fields"][s].items()}
                         for s in results[n]["fields"]}
                worst = max(v for d in diffs.values() for v in d.values())
                cross[n] = {"transformers": res["versions"]["transformers"],
                            "what": "the saved checkpoint reloaded with Transformers 4.x and run on the same inputs",
                            "max_abs_diff_overall": worst, "max_abs_diff": diffs}
                log(f"  cross-check {n}: Transformers {res['versions']['transformers']} max |diff| {worst:.3g}")

        pending = []
        for n in variants:
            log(f"write {n}")
            ckpt_dir = os.path.join(ckpt_root, n)
            copy_tokenizer(ckpt_dir)
            results[n]["checkpoint_files"] = sorted(os.listdir(ckpt_dir))
            write_variant(n, results[n], inputs, labels_of[n], tok, cross.get(n))
            pending.append((n, ckpt_dir, os.path.join(OUT, n, "model.gguf")))
        failed = [] if args.no_gguf else convert_all(pending)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
        if tmp is not None:
            tmp.cleanup()
    if failed:
        log(f"conversion failed for: {failed}")
        sys.exit(1)
    log("done")


if __name__ == "__main__":
    main()
