// Reading a byte-level BPE tokenizer from vocab.json + merges.txt and/or tokenizer.json, plus
// tokenizer_config.json, the way RobertaTokenizerFast (Transformers 4.x) sees them:
//  * tokenizer.json, when present, describes the pipeline `tokenizers` runs: model (BPE), normalizer,
//    pre_tokenizer, post_processor, added_tokens. Components we do not implement are refused by
//    name rather than run differently. Its "truncation" / "padding" are not read: those are run-time
//    options here (EncodeOptions, pad_to_longest).
//  * tokenizer_config.json's add_prefix_space / trim_offsets, when given, replace those of a
//    top-level ByteLevel pre-tokenizer and RobertaProcessing / ByteLevel post-processor (what
//    RobertaTokenizerFast.__init__ does); its special-token names pick bos/eos/pad/unk/mask.
//  * Without tokenizer.json: RoBERTa's pipeline (ByteLevel without prefix space, <s> A </s> and
//    <s> A </s></s> B </s>, trimmed offsets, <mask> lstrip=True).
// Transformers 5's RobertaTokenizer rebuilds the pre- and post-processor from tokenizer_config
// instead of reading them from tokenizer.json; the two agree on every file Transformers writes.
#include "tokenizer_spec.h"

#include <algorithm>

#include "d2v/tensor.h"

namespace d2v::text {

namespace {

[[noreturn]] void fail(const std::string& message) { throw Error("tokenizer: " + message); }

std::string shown(const Json& j) {
    std::string s = j.dump();
    return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

// obj[key] as T; absent or null gives the fallback, a wrong type an error naming `where.key`.
template <class T>
T field(const Json& obj, const char* key, const T& fallback, const std::string& where) {
    if (!obj.is_object()) return fallback;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    try {
        return it->get<T>();
    } catch (const Json::exception&) {
        fail(where + "." + key + " has the wrong type: " + shown(*it));
    }
}

const Json& member(const Json& obj, const char* key) {
    static const Json null_json;
    if (!obj.is_object()) return null_json;
    auto it = obj.find(key);
    return it == obj.end() ? null_json : *it;
}

std::string type_of(const Json& component, const std::string& where) {
    if (!component.is_object()) fail(where + " is not a JSON object: " + shown(component));
    return field<std::string>(component, "type", "", where);
}

// A special token named in tokenizer_config.json: a string, an AddedToken object, or null (none).
std::string token_name(const Json& config, const char* key, const char* fallback) {
    const Json& v = member(config, key);
    if (!config.is_object() || !config.contains(key)) return fallback;
    if (v.is_null()) return "";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object()) return field<std::string>(v, "content", "", std::string("tokenizer_config.") + key);
    fail(std::string("tokenizer_config.") + key + " has the wrong type: " + shown(v));
}

AddedToken parse_added(const Json& j, const std::string& where) {
    if (!j.is_object()) fail(where + " is not an object: " + shown(j));
    AddedToken a;
    a.content = field<std::string>(j, "content", "", where);
    if (a.content.size() > kMaxTokenBytes)
        fail(where + ".content is " + std::to_string(a.content.size()) + " bytes long (at most " +
             std::to_string(kMaxTokenBytes) + ")");
    a.single_word = field<bool>(j, "single_word", false, where);
    a.lstrip = field<bool>(j, "lstrip", false, where);
    a.rstrip = field<bool>(j, "rstrip", false, where);
    a.normalized = field<bool>(j, "normalized", true, where);
    a.special = field<bool>(j, "special", false, where);
    return a;
}

void check_model(const Json& model) {
    const std::string type = field<std::string>(model, "type", "BPE", "tokenizer.json model");
    if (type != "BPE") fail("tokenizer.json model.type '" + type + "' is not supported (only byte-level BPE)");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
        if (!field<std::string>(model, k, "", "tokenizer.json model").empty())
            fail(std::string("tokenizer.json model.") + k + " is not supported (not a byte-level BPE)");
    if (field<bool>(model, "byte_fallback", false, "tokenizer.json model"))
        fail("tokenizer.json model.byte_fallback is not supported");
    if (field<double>(model, "dropout", 0.0, "tokenizer.json model") > 0)
        fail("tokenizer.json model.dropout is not supported at inference");
    if (field<bool>(model, "fuse_unk", false, "tokenizer.json model") &&
        !field<std::string>(model, "unk_token", "", "tokenizer.json model").empty())
        fail("tokenizer.json model.fuse_unk with an unk_token is not supported");
}

void check_normalizer(const Json& normalizer) {
    if (normalizer.is_null()) return;
    const std::string type = type_of(normalizer, "tokenizer.json normalizer");
    if (type == "Sequence" && member(normalizer, "normalizers").is_array() && member(normalizer, "normalizers").empty())
        return;
    fail("tokenizer.json normalizer '" + type + "' is not supported (a byte-level BPE without normalizer only)");
}

// ByteLevel, alone or as the only member of a Sequence.
void read_pre_tokenizer(const Json& pre, TokenizerSpec& spec) {
    if (pre.is_null()) fail("tokenizer.json pre_tokenizer is null; a byte-level BPE needs the ByteLevel pre-tokenizer");
    std::string type = type_of(pre, "tokenizer.json pre_tokenizer");
    const Json* byte_level = &pre;
    if (type == "Sequence") {
        const Json& list = member(pre, "pretokenizers");
        if (!list.is_array() || list.size() != 1)
            fail("tokenizer.json pre_tokenizer Sequence is supported only with a single ByteLevel member");
        byte_level = &list[0];
        type = type_of(*byte_level, "tokenizer.json pre_tokenizer.pretokenizers[0]");
    }
    if (type != "ByteLevel") fail("tokenizer.json pre_tokenizer '" + type + "' is not supported (only ByteLevel)");
    // `tokenizers`' defaults for fields a file leaves out
    spec.add_prefix_space = field<bool>(*byte_level, "add_prefix_space", true, "tokenizer.json pre_tokenizer");
    spec.use_regex = field<bool>(*byte_level, "use_regex", true, "tokenizer.json pre_tokenizer");
}

int64_t find(const TokenizerSpec& spec, const std::string& token) {
    auto it = spec.token_to_id.find(token);
    return it == spec.token_to_id.end() ? -1 : it->second;
}

PostProcessorSpec roberta_template(int64_t cls, int64_t sep, bool trim_offsets, bool add_prefix_space) {
    PostProcessorSpec p;
    p.single = {{cls, -1, 0}, {-1, 0, 0}, {sep, -1, 0}};
    p.pair = {{cls, -1, 0}, {-1, 0, 0}, {sep, -1, 0}, {sep, -1, 0}, {-1, 1, 0}, {sep, -1, 0}};
    p.second_type_id = 0;  // RobertaProcessing sets every type id to 0
    p.trim_offsets = trim_offsets;
    p.keep_first_prefix_space = add_prefix_space;
    return p;
}

PostProcessorSpec plain_template() {  // no post-processor: the sequences as they are
    PostProcessorSpec p;
    p.single = {{-1, 0, 0}};
    p.pair = {{-1, 0, 0}, {-1, 1, 1}};
    p.second_type_id = 1;
    return p;
}

// RobertaProcessing's / BertProcessing's ["name", id]
int64_t named_id(const Json& pp, const char* key, const std::string& where) {
    const Json& v = member(pp, key);
    if (!v.is_array() || v.size() != 2 || !v[0].is_string() || !v[1].is_number_integer())
        fail(where + "." + key + " is not [\"token\", id]: " + shown(v));
    return v[1].get<int64_t>();
}

std::vector<PostProcessorSpec::Item> read_template(const Json& items, const Json& specials, const std::string& where) {
    if (!items.is_array()) fail(where + " is not an array");
    std::vector<PostProcessorSpec::Item> out;
    for (const Json& item : items) {
        if (!item.is_object() || item.size() != 1) fail(where + " has a malformed piece: " + shown(item));
        const std::string kind = item.begin().key();
        const Json& body = item.begin().value();
        const std::string id = field<std::string>(body, "id", "", where);
        const int64_t type_id = field<int64_t>(body, "type_id", 0, where);
        if (type_id < 0 || type_id > 255) fail(where + " has type_id " + std::to_string(type_id));
        if (kind == "Sequence") {
            if (id != "A" && id != "B") fail(where + " names sequence '" + id + "' (A or B)");
            out.push_back({-1, id == "A" ? 0 : 1, type_id});
        } else if (kind == "SpecialToken") {
            const Json& st = member(specials, id.c_str());
            const Json& ids = member(st, "ids");
            if (!ids.is_array() || ids.empty() || ids.size() > 16)
                fail(where + " uses special token '" + id + "', which special_tokens does not list with ids");
            for (const Json& i : ids) {
                if (!i.is_number_integer()) fail(where + " special token '" + id + "' has a non-integer id");
                out.push_back({i.get<int64_t>(), -1, type_id});
            }
        } else {
            fail(where + " has a piece of unknown kind '" + kind + "'");
        }
    }
    return out;
}

// The post-processor of tokenizer.json; `adds_specials` tells whether one already added tokens.
void read_post_processor(const Json& pp, PostProcessorSpec& out, bool& adds_specials, const std::string& where,
                         bool nested = false) {
    if (pp.is_null()) return;
    const std::string type = type_of(pp, where);
    const bool trim = field<bool>(pp, "trim_offsets", true, where);
    const bool prefix = field<bool>(pp, "add_prefix_space", true, where);
    if (type == "ByteLevel") {  // trims offsets, adds nothing
        if (adds_specials) fail(where + ": a ByteLevel step after the special tokens are added is not supported");
        out.trim_offsets = trim;
        out.keep_first_prefix_space = prefix;
        return;
    }
    if (adds_specials) fail(where + ": two post-processors that add special tokens are not supported");
    adds_specials = true;
    if (type == "RobertaProcessing") {
        out = roberta_template(named_id(pp, "cls", where), named_id(pp, "sep", where), trim, prefix);
    } else if (type == "TemplateProcessing") {
        const Json& specials = member(pp, "special_tokens");
        out.single = read_template(member(pp, "single"), specials, where + ".single");
        out.pair = read_template(member(pp, "pair"), specials, where + ".pair");
        for (const auto* t : {&out.single, &out.pair})
            for (int s : {0, 1}) {
                const auto n = std::count_if(t->begin(), t->end(), [&](const auto& i) { return i.sequence == s; });
                if (n != (s == 0 || t == &out.pair ? 1 : 0))
                    fail(where + (t == &out.single ? ".single" : ".pair") + " must hold $A once" +
                         (t == &out.pair ? " and $B once" : " and no $B"));
            }
    } else if (type == "Sequence") {
        if (nested) fail(where + ": a Sequence inside a Sequence is not supported");
        adds_specials = false;
        const Json& list = member(pp, "processors");
        if (!list.is_array()) fail(where + ".processors is not an array");
        for (size_t i = 0; i < list.size(); ++i)
            read_post_processor(list[i], out, adds_specials, where + ".processors[" + std::to_string(i) + "]", true);
    } else {
        fail(where + " '" + type + "' is not supported (RobertaProcessing, TemplateProcessing, ByteLevel, Sequence)");
    }
}

std::vector<std::pair<std::string, std::string>> read_merges(const std::string& merges_txt, const Json& model) {
    std::vector<std::pair<std::string, std::string>> merges;
    auto split = [&](const std::string& line, size_t number, const char* what) {
        const size_t sp = line.find(' ');
        if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
            fail(std::string(what) + " " + std::to_string(number) + " is not 'a b': '" + line.substr(0, 80) + "'");
        merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    };
    auto check_count = [&](const char* what) {
        if (merges.size() > kMaxMerges) fail(std::string(what) + " holds more than " + std::to_string(kMaxMerges) + " merges");
    };
    if (!merges_txt.empty()) {
        size_t pos = 0, number = 0;
        while (pos < merges_txt.size()) {
            size_t nl = merges_txt.find('\n', pos);
            if (nl == std::string::npos) nl = merges_txt.size();
            std::string line = merges_txt.substr(pos, nl - pos);
            pos = nl + 1;
            ++number;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty() || line.rfind("#version", 0) == 0) continue;
            split(line, number, "merges.txt line");
            check_count("merges.txt");
        }
        return merges;
    }
    const Json& list = member(model, "merges");
    if (!list.is_array()) fail("no merges (merges.txt or tokenizer.json model.merges)");
    if (list.size() > kMaxMerges) fail("tokenizer.json model.merges holds more than " + std::to_string(kMaxMerges) + " merges");
    size_t number = 0;
    for (const Json& m : list) {  // "a b" (tokenizers < 0.20) or ["a", "b"]
        ++number;
        if (m.is_string())
            split(m.get<std::string>(), number, "tokenizer.json merge");
        else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
            merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
        else
            fail("tokenizer.json merge " + std::to_string(number) + " is neither \"a b\" nor [\"a\", \"b\"]: " + shown(m));
    }
    return merges;
}

}  // namespace

TokenizerSpec read_tokenizer_spec(const Json& vocab_in, const std::string& merges_txt, const Json& tokenizer_json,
                                  const Json& tokenizer_config) {
    if (!tokenizer_json.is_null() && !tokenizer_json.is_object()) fail("tokenizer.json is not a JSON object");
    if (!tokenizer_config.is_null() && !tokenizer_config.is_object()) fail("tokenizer_config.json is not a JSON object");
    if (!vocab_in.is_null() && !vocab_in.is_object()) fail("vocab.json is not a JSON object");
    const bool have_tj = tokenizer_json.is_object();
    const Json& tj = tokenizer_json;
    const Json& cfg = tokenizer_config;
    const Json& model = member(tj, "model");
    if (have_tj && !model.is_null() && !model.is_object()) fail("tokenizer.json model is not a JSON object");

    TokenizerSpec spec;
    check_model(model);
    check_normalizer(member(tj, "normalizer"));
    spec.ignore_merges = field<bool>(model, "ignore_merges", false, "tokenizer.json model");
    spec.model_unk = field<std::string>(model, "unk_token", "", "tokenizer.json model");
    if (have_tj) read_pre_tokenizer(member(tj, "pre_tokenizer"), spec);
    const bool cfg_prefix = cfg.is_object() && cfg.contains("add_prefix_space") && !cfg["add_prefix_space"].is_null();
    if (cfg_prefix && (!have_tj || type_of(member(tj, "pre_tokenizer"), "tokenizer.json pre_tokenizer") == "ByteLevel"))
        spec.add_prefix_space = field<bool>(cfg, "add_prefix_space", false, "tokenizer_config");

    const std::string bos = token_name(cfg, "bos_token", "<s>"), eos = token_name(cfg, "eos_token", "</s>"),
                      pad = token_name(cfg, "pad_token", "<pad>"), unk = token_name(cfg, "unk_token", "<unk>"),
                      mask = token_name(cfg, "mask_token", "<mask>"), cls = token_name(cfg, "cls_token", "<s>"),
                      sep = token_name(cfg, "sep_token", "</s>");

    // Added tokens: tokenizer.json's list, then tokenizer_config's added_tokens_decoder (whose flags
    // win for the same content), then any named special token still missing (<mask> lstrip=True as
    // RoBERTa's).
    std::vector<AddedToken>& added = spec.added;
    std::unordered_map<std::string, size_t> added_index;  // content -> position in `added`
    auto put = [&](AddedToken a) {
        auto [it, fresh] = added_index.emplace(a.content, added.size());
        if (fresh)
            added.push_back(std::move(a));
        else
            added[it->second] = std::move(a);
    };
    const std::pair<const Json*, std::string> sources[] = {{&member(tj, "added_tokens"), "tokenizer.json added_tokens"},
                                                           {&member(cfg, "added_tokens_decoder"), "tokenizer_config added_tokens_decoder"}};
    for (const auto& [list_ptr, where] : sources) {
        const Json& list = *list_ptr;
        if (list.is_null()) continue;
        if (!list.is_array() && !list.is_object()) fail(where + " is neither a list nor an object");
        if (list.size() > kMaxVocabEntries) fail(where + " holds more than " + std::to_string(kMaxVocabEntries) + " tokens");
        for (const Json& j : list) put(parse_added(j, where));
    }
    std::vector<std::string> named = {bos, eos, unk, sep, pad, cls, mask};
    const Json& extra_specials = member(cfg, "additional_special_tokens");
    if (extra_specials.is_array()) {
        if (extra_specials.size() > kMaxVocabEntries) fail("tokenizer_config additional_special_tokens is too long");
        for (const Json& j : extra_specials)
            named.push_back(j.is_string() ? j.get<std::string>() : parse_added(j, "tokenizer_config additional_special_tokens").content);
    }
    for (const std::string& name : named) {
        if (name.empty() || added_index.count(name)) continue;
        AddedToken a;
        a.content = name;
        a.special = true;
        if (name == mask) {  // RoBERTa's <mask> takes the space before it
            const Json& mj = member(cfg, "mask_token");
            if (mj.is_object()) a = parse_added(mj, "tokenizer_config mask_token");
            a.lstrip = field<bool>(mj, "lstrip", true, "tokenizer_config mask_token");
            a.special = true;
        }
        put(std::move(a));
    }

    // Vocabulary: vocab.json, else tokenizer.json's model.vocab. Ids are dense in practice; one at or
    // beyond (entries + added tokens) can only be a damaged file, and would make the id tables huge.
    const Json* vocab = &vocab_in;
    if (!vocab->is_object() || vocab->empty()) {
        vocab = &member(model, "vocab");
        if (!vocab->is_object()) fail("no vocabulary (vocab.json or tokenizer.json model.vocab)");
    }
    if (vocab->size() > kMaxVocabEntries)
        fail("the vocabulary holds " + std::to_string(vocab->size()) + " tokens (at most " + std::to_string(kMaxVocabEntries) + ")");
    const int64_t id_limit = int64_t(vocab->size() + added.size());
    spec.vocab.reserve(vocab->size());
    for (auto it = vocab->begin(); it != vocab->end(); ++it) {
        const std::string& token = it.key();
        if (token.size() > kMaxTokenBytes)
            fail("vocabulary token '" + token.substr(0, 40) + "...' is " + std::to_string(token.size()) + " bytes long (at most " +
                 std::to_string(kMaxTokenBytes) + ")");
        if (!it.value().is_number_integer()) fail("vocabulary token '" + token + "' has no integer id: " + shown(it.value()));
        const int64_t id = it.value().is_number_unsigned() && it.value().get<uint64_t>() > uint64_t(INT64_MAX)
                               ? INT64_MAX
                               : it.value().get<int64_t>();
        if (id < 0 || id >= id_limit)
            fail("vocabulary token '" + token + "' has id " + it.value().dump() + ", outside 0.." + std::to_string(id_limit - 1) +
                 " (" + std::to_string(vocab->size()) + " entries + " + std::to_string(added.size()) + " added tokens)");
        spec.vocab.emplace_back(token, id);
        spec.token_to_id[token] = id;
    }

    for (auto& [a, b] : read_merges(merges_txt, model)) {
        const int64_t ia = find(spec, a), ib = find(spec, b), ic = find(spec, a + b);
        if (ia < 0 || ib < 0) fail("merge '" + a + " " + b + "' uses a token missing from the vocabulary");
        if (ic < 0) fail("merge '" + a + " " + b + "' makes a token missing from the vocabulary");
        spec.merges.emplace_back(std::move(a), std::move(b));
    }

    // Ids as `tokenizers` gives them when it adds the tokens in order: the id the content already
    // has (vocabulary or an earlier added token), else the next free id after the vocabulary. The
    // ids written in tokenizer.json are not used (`tokenizers` only warns when they differ).
    const int64_t model_size = int64_t(vocab->size());
    int64_t max_added = -1;
    for (auto& a : added) {
        if (a.content.empty()) continue;
        a.id = find(spec, a.content);
        if (a.id < 0)
            a.id = max_added < 0 ? model_size : (max_added >= model_size || model_size == 0) ? max_added + 1 : model_size;
        max_added = std::max(max_added, a.id);
        spec.token_to_id[a.content] = a.id;
    }
    added.erase(std::remove_if(added.begin(), added.end(), [](const AddedToken& a) { return a.content.empty(); }), added.end());

    spec.bos = find(spec, bos);
    spec.eos = find(spec, eos);
    spec.pad = find(spec, pad);
    spec.unk = find(spec, unk);
    spec.mask = find(spec, mask);
    spec.cls = find(spec, cls);
    spec.sep = find(spec, sep);

    // Post-processor: tokenizer.json's, else RoBERTa's with cls_token / sep_token by name.
    if (have_tj) {
        spec.post = plain_template();
        bool adds_specials = false;
        const Json& pp = member(tj, "post_processor");
        read_post_processor(pp, spec.post, adds_specials, "tokenizer.json post_processor");
        const std::string type = pp.is_null() ? "" : type_of(pp, "tokenizer.json post_processor");
        if (type == "RobertaProcessing" || type == "ByteLevel") {
            if (cfg_prefix) spec.post.keep_first_prefix_space = spec.add_prefix_space;
            spec.post.trim_offsets = field<bool>(cfg, "trim_offsets", spec.post.trim_offsets, "tokenizer_config");
        }
        if (type == "RobertaProcessing") {
            spec.cls = spec.post.single.front().special_id;
            spec.sep = spec.post.single.back().special_id;
        }
    } else {
        if (spec.cls < 0 || spec.sep < 0)
            fail("the cls / sep tokens ('" + cls + "', '" + sep + "') are not in the vocabulary");
        spec.post = roberta_template(spec.cls, spec.sep, field<bool>(cfg, "trim_offsets", true, "tokenizer_config"),
                                     spec.add_prefix_space);
    }
    int64_t id_end = 0;  // added tokens may go a little past id_limit, at most one id each
    for (const auto& [token, id] : spec.token_to_id) id_end = std::max(id_end, id + 1);
    std::vector<char> is_token(size_t(id_end), 0);
    for (const auto& [token, id] : spec.token_to_id) is_token[size_t(id)] = 1;
    for (const auto* t : {&spec.post.single, &spec.post.pair})
        for (const auto& item : *t)
            if (item.sequence < 0 && (item.special_id < 0 || item.special_id >= id_end || !is_token[size_t(item.special_id)]))
                fail("the post-processor adds id " + std::to_string(item.special_id) + ", which is not a token id");
    return spec;
}

}  // namespace d2v::text
