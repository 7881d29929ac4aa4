#!/usr/bin/env python3
"""Generate the RoBERTa byte-level BPE tokenizer fixtures for the C++ tokenizer tests.

Run from the repository root with the reference environment (transformers + tokenizers):

    ~/.cache/d2v-ref/bin/python weights_tools/make_tokenizer_fixtures.py [--only vocab|cases]

What it writes:

  tests/fixtures/text/tokenizer/
      A small byte-level BPE (vocab_size 2000, min_frequency 2) trained with the `tokenizers`
      package on ../shared/data/text/wiki_text/wiki_00, laid out like FacebookAI/roberta-base:
      vocab.json, merges.txt, tokenizer.json (ByteLevel pre-tokenizer without prefix space,
      ByteLevel decoder, RobertaProcessing post-processor with trim_offsets, special tokens
      <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4 with <mask> lstrip=True), tokenizer_config.json and
      special_tokens_map.json.  `RobertaTokenizerFast.from_pretrained(dir)` loads it.

  tests/fixtures/text/tokenizer_cases.jsonl
      One JSON object per line: source, text, pair, max_length, truncation, input_ids,
      attention_mask, offsets (Python character offsets from return_offsets_mapping=True) and,
      for raw byte inputs, raw_hex (the bytes; text is then bytes.decode("utf-8", "replace")).
      When Transformers refuses the input (only_first/only_second truncation with a sequence too
      short to cut), the ids/mask/offsets are null and "error" holds its message; otherwise
      "decoded" is tokenizer.decode(input_ids, skip_special_tokens=True). Single texts other than
      wiki lines also get "pretokens": the character offsets of the pieces the ByteLevel
      pre-tokenizer's GPT-2 pattern alone cuts the text into (tests the regex whatever the vocab).
      Sources: blns (every line of the Big List of Naughty Strings, empty lines included),
      wiki (every line of wiki_00), germeval (every sentence, tokens joined with spaces),
      mrpc (sentence pairs with/without truncation), mask (<mask> placements), invalid_utf8
      (raw byte strings), roberta_vocab (the llama.cpp RoBERTa vocab test inputs), extra
      (hand-written edge cases), added_flags (extra added tokens with single_word / rstrip /
      normalized=False / overlapping contents, listed in each case's "extra_added_tokens", checked
      against the `tokenizers` backend), pipeline (the other pipelines a tokenizer.json can describe:
      add_prefix_space, untrimmed offsets, TemplateProcessing with type ids, Sequence, ByteLevel or no
      post-processor, no regex; each case's "tokenizer_json_patch" replaces top-level entries of
      tokenizer.json, the reference is `tokenizers` on the patched file, and token_type_ids and
      add_special_tokens are recorded).

Everything is deterministic: the trainer runs on one fixed file and the cases are listed in
file order.
"""

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "text"))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "text")
TOK_DIR = os.path.join(OUT_DIR, "tokenizer")
CASES = os.path.join(OUT_DIR, "tokenizer_cases.jsonl")

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def make_vocab():
    # Single-threaded training keeps the merge order reproducible.
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.implementations import ByteLevelBPETokenizer
    from tokenizers.models import BPE

    trainer = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    trainer.train(
        files=[os.path.join(SHARED, "wiki_text", "wiki_00")],
        vocab_size=2000,
        min_frequency=2,
        special_tokens=SPECIALS,
        show_progress=False,
    )
    os.makedirs(TOK_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        trainer.save_model(tmp)
        with open(os.path.join(tmp, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        with open(os.path.join(tmp, "merges.txt"), encoding="utf-8") as f:
            merges_txt = f.read()
    for i, s in enumerate(SPECIALS):
        assert vocab[s] == i, (s, vocab[s])

    # vocab.json / merges.txt exactly as GPT-2 / RoBERTa checkpoints ship them.
    with open(os.path.join(TOK_DIR, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(TOK_DIR, "merges.txt"), "w", encoding="utf-8") as f:
        f.write(merges_txt)

    # tokenizer.json as in roberta-base: same pipeline, <mask> strips the space on its left.
    merges = [tuple(l.split(" ")) for l in merges_txt.split("\n") if l and not l.startswith("#version")]
    tok = Tokenizer(BPE(vocab=vocab, merges=merges, dropout=None, continuing_subword_prefix="",
                        end_of_word_suffix="", fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)
    tok.add_special_tokens([
        AddedToken("<s>", lstrip=False, rstrip=False, single_word=False, normalized=True, special=True),
        AddedToken("<pad>", lstrip=False, rstrip=False, single_word=False, normalized=True, special=True),
        AddedToken("</s>", lstrip=False, rstrip=False, single_word=False, normalized=True, special=True),
        AddedToken("<unk>", lstrip=False, rstrip=False, single_word=False, normalized=True, special=True),
        AddedToken("<mask>", lstrip=True, rstrip=False, single_word=False, normalized=True, special=True),
    ])
    tj = json.loads(tok.to_str())
    with open(os.path.join(TOK_DIR, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)

    def tok_entry(content, lstrip=False):
        return {"content": content, "lstrip": lstrip, "normalized": True, "rstrip": False,
                "single_word": False, "special": True}

    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(i): tok_entry(s, s == "<mask>") for i, s in enumerate(SPECIALS)},
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "cls_token": "<s>",
        "eos_token": "</s>",
        "errors": "replace",
        "mask_token": "<mask>",
        "model_max_length": 512,
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "tokenizer_class": "RobertaTokenizer",
        "trim_offsets": True,
        "unk_token": "<unk>",
    }
    with open(os.path.join(TOK_DIR, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
    stm = {
        "bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>",
        "mask_token": {"content": "<mask>", "lstrip": True, "normalized": True, "rstrip": False,
                       "single_word": False},
        "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>",
    }
    with open(os.path.join(TOK_DIR, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(stm, f, ensure_ascii=False, indent=2)

    # Sanity: Transformers loads it like roberta-base (<mask> eats the space before it).
    hf = load_hf()
    assert hf.mask_token_id == 4 and hf.pad_token_id == 1 and hf.bos_token_id == 0
    enc = hf("a <mask> b")
    assert enc["input_ids"][2] == 4, enc
    print(f"wrote {TOK_DIR} (vocab {len(vocab)}, merges {len(merges)})")


def load_hf():
    from transformers import RobertaTokenizerFast
    return RobertaTokenizerFast.from_pretrained(TOK_DIR)


# ----------------------------------------------------------------------------------------- cases

def read_lines_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def collect_cases():
    cases = []  # dicts with source, text, pair, max_length, truncation, raw (bytes or None)

    def add(source, text, pair=None, max_length=None, truncation=None, raw=None):
        cases.append(dict(source=source, text=text, pair=pair, max_length=max_length,
                          truncation=truncation, raw=raw))

    # Big List of Naughty Strings: every line (comments and empty lines too), as bytes.
    for i, b in enumerate(read_lines_bytes(os.path.join(SHARED, "naughty", "blns.txt")), 1):
        text = b.decode("utf-8", errors="replace")
        try:
            b.decode("utf-8")
            add(f"blns:{i}", text)
        except UnicodeDecodeError:
            add(f"blns:{i}", text, raw=b)

    # wiki_00: every line.
    for i, b in enumerate(read_lines_bytes(os.path.join(SHARED, "wiki_text", "wiki_00")), 1):
        add(f"wiki:{i}", b.decode("utf-8", errors="replace"))
    # ... and a few multi-line chunks (newlines inside the text).
    with open(os.path.join(SHARED, "wiki_text", "wiki_00"), encoding="utf-8") as f:
        wiki_all = f.read()
    for k, start in enumerate(range(0, 6000, 1500)):
        add(f"wiki_chunk:{k}", wiki_all[start:start + 1500])

    # GermEval: CoNLL-style token-per-line; sentences separated by blank lines.
    sent, n = [], 0
    with open(os.path.join(SHARED, "germeval", "dev.txt"), encoding="utf-8") as f:
        for line in list(f) + [""]:
            line = line.rstrip("\n")
            if not line.strip():
                if sent:
                    n += 1
                    add(f"germeval:{n}", " ".join(sent))
                    sent = []
                continue
            sent.append(line.split()[0] if line.split()[0] != "" else line)

    # MRPC pairs: plain, and truncated at several lengths with each strategy.
    with open(os.path.join(SHARED, "mrpc", "dev.tsv"), encoding="utf-8-sig") as f:
        rows = [l.rstrip("\n").split("\t") for l in f][1:]
    for r, row in enumerate(rows, 1):
        a, b = row[3], row[4]
        add(f"mrpc:{r}", a, pair=b)
        add(f"mrpc:{r}:single", a)
        for ml in (16, 32, 64):
            for strat in ("longest_first", "only_first", "only_second"):
                add(f"mrpc:{r}:{strat}:{ml}", a, pair=b, max_length=ml, truncation=strat)
            add(f"mrpc:{r}:single:{ml}", a, max_length=ml, truncation="longest_first")
        # swapped order, so the longer side changes
        add(f"mrpc:{r}:swapped:24", b, pair=a, max_length=24, truncation="longest_first")

    # <mask> placements.
    for t in [" <mask>", "<mask>", "a<mask>b", "a <mask> b", "a  <mask>  b", "<mask> a", "a <mask>",
              "The capital of France is <mask>.", "<mask><mask>", " <mask> <mask> ", "\t<mask>\n",
              "x\n <mask>", "<s>hello</s>", "a <s> b </s> c", "<pad><unk>", " <s>", "<mask", "mask>",
              "<MASK>", "anarchism<mask>", "  <mask>", "a\u3000<mask>", "a\u00a0<mask>"]:
        add("mask", t)
    add("mask:pair", "Paris is the <mask> of France.", pair=" <mask> answer <mask>")

    # Invalid UTF-8 byte strings.
    invalid = [
        b"\x80", b"abc\x80def", b"\xbf\xbf", b"\xc3", b"caf\xc3", b"\xe2\x82", b"\xe2\x82abc",
        b"\xf0\x9f\x98", b"\xf0\x9f\x98 x", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
        b"\xc1\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\x80\xed\xb0\x80", b"\xff", b"a\xffb",
        b"\xfe\xff", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80",
        b"hello \xe4\xb8 world", b"\xe4\xb8\xad\xe6\x96", b"\xc3\xa9\x80\xc3\xa9", b"\x00\xff\x00",
        b"<mask>\xff", b"\xe2\x28\xa1", b"\xe0\xa0", b"\xf0\x90\x28\xbc",
    ]
    for i, b in enumerate(invalid):
        add(f"invalid_utf8:{i}", b.decode("utf-8", errors="replace"), raw=b)

    # llama.cpp RoBERTa vocab test inputs (texts only; our vocabulary is different).
    with open(os.path.join(SHARED, "roberta-vocab", "ggml-vocab-roberta-bpe.gguf.inp"), "rb") as f:
        inp = f.read().decode("utf-8")
    texts = inp.split("\n__ggml_vocab_test__\n")
    if texts and texts[-1] == "":  # the file ends with a separator
        texts.pop()
    for i, t in enumerate(texts):
        add(f"roberta_vocab:{i}", t)

    # Hand-written edge cases: contractions, digits, whitespace runs, scripts, emoji, controls.
    extra = [
        "", " ", "  ", "\n", "\n\n", " \n ", "\t\t x", "a  b", "a   b  ", "a\n\nb", "x \u00a0 y",
        "I'm you're we've she'll he'd it's don't", "I'M YOU'RE", "'s's 't", "''s", "x's", "1'000",
        "123456789 3.14159 1,000,000", "\u0661\u0662\u0663 \u00bd \u2167", "A\u030a\u212b\u00c5",
        "Hello,\u00a0world!", "\u4f60\u597d\u4e16\u754c", "\u3053\u3093\u306b\u3061\u306f \u30c6\u30b9\u30c8",
        "\U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467", "\u200b\u200c\u200d\ufeff",
        "\x00\x01\x1f\x7f", "\u0085\u2028\u2029", "ab\u0301c", "na\u00efve caf\u00e9",
        "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627", "x" * 300, "ab" * 200 + " " + "z" * 50,
        "   leading", "trailing   ", "mixed \t\n\r whitespace", "Ġ Ċ ĉ", "\ufffd\ufffd",
        "Anarchism anarchism ANARCHISM", "e-mail: foo@bar.com https://x.org/a?b=c#d",
        # Oniguruma's \s is White_Space: NEL (U+0085) is a space, U+001C..U+001F and U+180E are not
        "!\x85", "\x85 ", "a\x85\x85b!", "!\x1c\x1d\x1e\x1f x", "!\u180e", "!\u2028 \u2029",
        "x\u3000<mask>\u3000y", "\u00e9\u0301\u0301 \U0001f600\U0001f600",
    ]
    for i, t in enumerate(extra):
        add(f"extra:{i}", t)
    add("extra:pair_empty", "", pair="")
    add("extra:pair_empty_second", "a b", pair="")
    add("extra:pair_empty_first", "", pair="a b")
    add("extra:pair_ws", "  a  ", pair="  b  ")
    add("extra:pair_trunc_long", "one two three four five six seven eight nine ten " * 3,
        pair="alpha beta", max_length=12, truncation="longest_first")
    add("extra:pair_trunc_eq", "one two three four five", pair="six seven eight nine ten",
        max_length=9, truncation="longest_first")
    add("extra:pair_trunc_odd", "one two three four five", pair="six seven eight nine ten eleven",
        max_length=10, truncation="longest_first")
    return cases


def make_cases():
    from tokenizers import pre_tokenizers
    hf = load_hf()
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    cases = collect_cases()
    n_by_source = {}
    with open(CASES, "w", encoding="utf-8") as out:
        for c in cases:
            kw = dict(return_offsets_mapping=True)
            if c["max_length"] is not None:
                kw.update(max_length=c["max_length"], truncation=c["truncation"])
            error, note = None, None
            try:
                if c["pair"] is None:
                    enc = hf(c["text"], **kw)
                else:
                    enc = hf(c["text"], c["pair"], **kw)
                    # The batch form always keeps the second text; the single call drops an empty
                    # one (Python falsiness of ""). Record what `tokenizers` does, and say so.
                    batch = hf([(c["text"], c["pair"])], **kw)
                    batch = {k: v[0] for k, v in batch.items()}
                    if batch["input_ids"] != enc["input_ids"]:
                        assert c["pair"] == "", c
                        note = ("tokenizer(text, '') ignores an empty second text; this is the batch form "
                                "tokenizer([(text, '')]), as the tokenizers backend encodes the pair")
                        enc = batch
            except Exception as e:  # e.g. only_first with a first text too short to cut
                error = str(e)
                enc = {"input_ids": None, "attention_mask": None, "offset_mapping": None}
            rec = {
                "source": c["source"],
                "text": c["text"],
                "pair": c["pair"],
                "max_length": c["max_length"],
                "truncation": c["truncation"],
                "input_ids": None if error else list(enc["input_ids"]),
                "attention_mask": None if error else list(enc["attention_mask"]),
                "offsets": None if error else [list(o) for o in enc["offset_mapping"]],
            }
            if c["pair"] is None and not c["source"].startswith("wiki"):
                # the GPT-2 pattern alone (no added tokens), as character offsets
                rec["pretokens"] = [list(o) for _, o in pre.pre_tokenize_str(c["text"])]
            if note:
                rec["note"] = note
            if error:
                rec["error"] = error
            else:
                rec["decoded"] = hf.decode(enc["input_ids"], skip_special_tokens=True)
            if c["raw"] is not None:
                rec["raw_hex"] = c["raw"].hex()
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            key = c["source"].split(":")[0]
            n_by_source[key] = n_by_source.get(key, 0) + 1
        n_by_source["added_flags"] = write_added_flag_cases(out)
        n_by_source["pipeline"] = write_pipeline_cases(out, cases)
    print(f"wrote {CASES}: {sum(n_by_source.values())} cases", json.dumps(n_by_source))


# Extra added tokens exercising every flag (RoBERTa itself only has <mask> lstrip=True). The
# reference here is the `tokenizers` backend loaded from tokenizer.json with these entries appended
# (what RobertaTokenizerFast wraps); each case carries the entries in "extra_added_tokens".
EXTRA_ADDED = [
    {"content": "[X]", "single_word": True, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
    {"content": "<r>", "single_word": False, "lstrip": False, "rstrip": True, "normalized": True, "special": False},
    {"content": "<both>", "single_word": False, "lstrip": True, "rstrip": True, "normalized": False, "special": True},
    {"content": "<b", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
    {"content": "<bo", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
    {"content": "ab c", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
    {"content": "\u00e9x", "single_word": True, "lstrip": True, "rstrip": False, "normalized": True, "special": False},
    {"content": "Ġthe", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
]
ADDED_TEXTS = [
    "[X] a[X] [X]b [X], ([X]) _[X] \u00e9[X] 1[X]", "x <r>   y <r>\n\nz<r>", "a  <both>  b<both><both>",
    " <mask>  <both> <r> <mask>", "<both <bo <b <both> <bot", "ab c ab  c xab cy", "x \u00e9x y\u00e9x \u00e9xy  \u00e9x",
    "the Ġthe ĠĠthe", "<b<s><b</s>", "\u3000<both>\u3000", "[X]\u0301 [X]\u00a0", "", "<mask><r><both>[X]",
]


def write_added_flag_cases(out):
    from tokenizers import Tokenizer
    with open(os.path.join(TOK_DIR, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    extra = [dict(e, id=2000 + i) for i, e in enumerate(EXTRA_ADDED)]
    tj["added_tokens"] = tj["added_tokens"] + extra
    tok = Tokenizer.from_str(json.dumps(tj))
    n = 0
    for i, text in enumerate(ADDED_TEXTS):
        for pair in (None, "<r> [X] <both>x"):
            enc = tok.encode(text, pair) if pair is not None else tok.encode(text)
            rec = {
                "source": f"added_flags:{i}" + (":pair" if pair else ""), "text": text, "pair": pair,
                "max_length": None, "truncation": None, "input_ids": enc.ids,
                "attention_mask": enc.attention_mask, "offsets": [list(o) for o in enc.offsets],
                "decoded": tok.decode(enc.ids, skip_special_tokens=True),
                "extra_added_tokens": extra,
            }
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


# Other pipelines a tokenizer.json can describe (RoBERTa's own is the one above): each case carries
# "tokenizer_json_patch", top-level entries that replace the fixture tokenizer.json's, and the
# reference is the `tokenizers` backend loaded from the patched file. The C++ test builds its
# tokenizer from that patched tokenizer.json alone.
def _roberta_post(trim_offsets, add_prefix_space):
    return {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0], "trim_offsets": trim_offsets,
            "add_prefix_space": add_prefix_space}


def _byte_level(add_prefix_space, trim_offsets=True):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": trim_offsets, "use_regex": True}


_TEMPLATE = {
    "type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
               {"SpecialToken": {"id": "</s>", "type_id": 0}}],
    "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
             {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
             {"SpecialToken": {"id": "</s>", "type_id": 1}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                       "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}},
}

PIPELINES = {
    "prefix_space": {"pre_tokenizer": _byte_level(True), "post_processor": _roberta_post(True, True)},
    "prefix_space_untrimmed": {"pre_tokenizer": _byte_level(True), "post_processor": _roberta_post(False, True)},
    "untrimmed": {"post_processor": _roberta_post(False, False)},
    "template": {"post_processor": _TEMPLATE},
    "sequence_post": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [_byte_level(True)]},
                      "post_processor": {"type": "Sequence", "processors": [_byte_level(True), _TEMPLATE]}},
    "byte_level_post": {"post_processor": _byte_level(False)},
    "no_post": {"post_processor": None},
    "no_regex": {"pre_tokenizer": dict(_byte_level(False), use_regex=False)},
}


def write_pipeline_cases(out, cases):
    from tokenizers import Tokenizer
    with open(os.path.join(TOK_DIR, "tokenizer.json"), encoding="utf-8") as f:
        base = json.load(f)
    picked = [c for c in cases if c["source"].split(":")[0] in ("mask", "extra", "invalid_utf8")]
    picked += [c for c in cases if c["source"].startswith("mrpc:") and int(c["source"].split(":")[1]) <= 3]
    picked += [c for c in cases if c["source"].startswith("blns:") and int(c["source"].split(":")[1]) <= 20]
    n = 0
    for name, patch in PIPELINES.items():
        tok = Tokenizer.from_str(json.dumps(dict(base, **patch)))
        for c in picked:
            for add_special in ((True, False) if c["pair"] is not None and c["max_length"] is None else (True,)):
                if c["max_length"] is not None:
                    tok.enable_truncation(c["max_length"], strategy=c["truncation"])
                else:
                    tok.no_truncation()
                rec = {"source": f"pipeline:{name}:{c['source']}" + ("" if add_special else ":plain"),
                       "text": c["text"], "pair": c["pair"], "max_length": c["max_length"],
                       "truncation": c["truncation"], "add_special_tokens": add_special,
                       "tokenizer_json_patch": patch}
                try:
                    enc = tok.encode(c["text"], c["pair"], add_special_tokens=add_special)
                    rec.update(input_ids=enc.ids, attention_mask=enc.attention_mask, token_type_ids=enc.type_ids,
                               offsets=[list(o) for o in enc.offsets])
                except Exception as e:  # only_first / only_second with a side too short to cut
                    rec.update(input_ids=None, attention_mask=None, offsets=None, error=str(e))
                if c["raw"] is not None:
                    rec["raw_hex"] = c["raw"].hex()
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["vocab", "cases"], help="do one step only")
    args = ap.parse_args()
    if args.only in (None, "vocab"):
        make_vocab()
    if args.only in (None, "cases"):
        make_cases()


if __name__ == "__main__":
    sys.exit(main())
