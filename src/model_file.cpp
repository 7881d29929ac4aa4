#include "d2v/model_file.h"

#include <cmath>

namespace d2v {
namespace {

// Bound on each packed JSON document: nlohmann's in-memory form takes up to ~10x the text, so this
// caps what a file can make us allocate while staying far above real checkpoints (a config with
// ImageNet-22k's 21841 labels is ~0.6 MB; RoBERTa's vocab.json 0.8 MB; large tokenizers ~10 MB).
constexpr size_t kMaxConfigJsonBytes = size_t(16) << 20;
constexpr size_t kMaxVocabJsonBytes = size_t(64) << 20;

// Collects load problems; lists the first few, counts the rest (a hostile config can make millions).
class ProblemList {
public:
    void add(const std::string& problem) {
        if (count_++ < ModelFile::kMaxListedProblems) text_ += "\n  " + problem;
    }
    bool empty() const { return count_ == 0; }
    std::string text() const {
        if (count_ <= ModelFile::kMaxListedProblems) return text_;
        return text_ + "\n  ... and " + std::to_string(count_ - ModelFile::kMaxListedProblems) + " more";
    }

private:
    std::string text_;
    size_t count_ = 0;
};

void expand_into(const TensorTable& from, TensorTable& into);

}  // namespace

TensorTable TensorTable::expanded(uint64_t available_tensors) const {
    TensorTable out;
    out.specs_ = specs_;
    out.unused_ok_ = unused_ok_;
    for (const auto& r : repeated_) {
        if (r.count < 0) throw Error("config field '" + r.field + "' = " + std::to_string(r.count) + " is negative");
        if (r.count == 0) continue;
        // Build one block to learn its size: count blocks need count * size distinct tensors.
        TensorTable one;
        r.block(one, 0);
        const TensorTable first = one.expanded(available_tensors);
        const uint64_t per_block = first.specs_.size();
        if (per_block > 0 && uint64_t(r.count) > available_tensors / per_block)
            throw Error("config field '" + r.field + "' = " + std::to_string(r.count) + " needs " + std::to_string(per_block) +
                        " tensors per entry, more than the " + std::to_string(available_tensors) +
                        " tensors the file holds (does the config match the weights?)");
        expand_into(first, out);
        for (int64_t i = 1; i < r.count; ++i) {
            TensorTable block;
            r.block(block, i);
            expand_into(block.expanded(available_tensors), out);
        }
    }
    return out;
}

namespace {
void expand_into(const TensorTable& from, TensorTable& into) {
    for (const auto& spec : from.specs()) into.add(spec.name, spec.shape);
    for (const auto& name : from.unused_ok()) into.allow_unused(name);
}
}  // namespace

ModelFile::ModelFile(const std::string& path) : gguf_(std::make_unique<GgufFile>(path)) {
    if (!gguf_->has("d2v.config_json") || !gguf_->has("general.architecture"))
        throw Error(path + ": GGUF file was not written by weights_tools/convert.py (no d2v.config_json); "
                           "convert the Hugging Face checkpoint with it first");
    architecture_ = gguf_->get_string("general.architecture");
    model_class_ = gguf_->get_string_or("d2v.model_class", "");
    // Both are identifiers echoed into messages ("holds a 'X' model (Y)"): a long one is not ours.
    if (architecture_.size() > 64 || model_class_.size() > 128)
        throw Error(path + ": general.architecture / d2v.model_class is implausibly long; not a model file of ours");
    uint64_t version = gguf_->get_uint("d2v.format_version");
    if (version != 1) throw Error(path + ": d2v.format_version " + std::to_string(version) + " is not supported");
    auto parse = [&](const char* key, Json& out, size_t max_bytes) {
        if (!gguf_->has(key)) return;
        const std::string text = gguf_->get_string(key);
        if (text.size() > max_bytes)
            throw Error(path + ": metadata '" + key + "' is " + std::to_string(text.size()) + " bytes, more than the " +
                        std::to_string(max_bytes) + " this reader accepts");
        try {
            out = Json::parse(text);
        } catch (const Json::exception& e) {
            throw Error(path + ": metadata '" + key + "' is not valid JSON: " + e.what());
        }
    };
    parse("d2v.config_json", config_, kMaxConfigJsonBytes);
    if (!config_.is_object()) throw Error(path + ": d2v.config_json is not a JSON object");
    parse("d2v.preprocessor_json", preprocessor_, kMaxConfigJsonBytes);
    parse("d2v.vocab_json", vocab_, kMaxVocabJsonBytes);
    parse("d2v.tokenizer_config_json", tokenizer_config_, kMaxConfigJsonBytes);
}

void ModelFile::require_architecture(const std::string& expected, const std::string& program) const {
    if (architecture_ != expected)
        throw Error(path() + " holds a '" + architecture_ + "' model (" + model_class_ + "); " + program + " needs a '" +
                    expected + "' model");
}

void ModelFile::validate(const TensorTable& compact) const {
    const TensorTable table = compact.expanded(gguf_->tensors().size());
    ProblemList problems;
    std::set<std::string> expected;
    for (const auto& spec : table.specs()) {
        expected.insert(spec.name);
        const GgufTensor* t = gguf_->find_tensor(spec.name);
        if (!t) {
            problems.add("missing tensor '" + spec.name + "' " + shape_to_string(spec.shape));
            continue;
        }
        if (t->shape != spec.shape)
            problems.add("tensor '" + spec.name + "' has shape " + shape_to_string(t->shape) + ", config implies " +
                         shape_to_string(spec.shape));
        if (t->ggml_type != kGgmlF32 && t->shape.size() < 2)
            problems.add("tensor '" + spec.name + "' is " + ggml_type_name(t->ggml_type) +
                         "; only weight matrices and conv kernels may be stored in reduced precision");
        if (t->ggml_type == kGgmlI8) {
            // Its per-row scales travel with it.
            const std::string scale_name = spec.name + ".scale";
            expected.insert(scale_name);
            const GgufTensor* s = gguf_->find_tensor(scale_name);
            if (!s)
                problems.add("I8 tensor '" + spec.name + "' has no scale tensor '" + scale_name + "'");
            else if (s->ggml_type != kGgmlF32)
                problems.add("scale tensor '" + scale_name + "' is " + ggml_type_name(s->ggml_type) + ", must be F32");
            else if (s->shape != Shape{t->shape[0]})
                problems.add("scale tensor '" + scale_name + "' has shape " + shape_to_string(s->shape) + ", must be [" +
                             std::to_string(t->shape[0]) + "] (one per row of '" + spec.name + "')");
        }
    }
    for (const auto& [name, t] : gguf_->tensors())
        if (!expected.count(name) && !table.unused_ok().count(name))
            problems.add("unexpected tensor '" + name + "' " + shape_to_string(t.shape) + " (does the config match the weights?)");
    if (!problems.empty()) throw Error(path() + ": weights do not match " + model_class_ + " config:" + problems.text());
}

const float* ModelFile::tensor(const std::string& name) const {
    const GgufTensor* t = gguf_->find_tensor(name);
    if (!t) throw Error(path() + ": missing tensor '" + name + "'");
    if (t->ggml_type != kGgmlF32 || !t->data)
        throw Error(path() + ": tensor '" + name + "' is stored as " + ggml_type_name(t->ggml_type) +
                    "; it must be F32 (only the transformer layers' weight matrices may be reduced precision)");
    return t->data;
}

WeightData ModelFile::linear_weight(const std::string& name) const {
    const GgufTensor* t = gguf_->find_tensor(name);
    if (!t) throw Error(path() + ": missing tensor '" + name + "'");
    // Any rank from 2 (a conv kernel used through im2col is [out, in, k...]: its rows are its output
    // channels); validate() has refused reduced-precision tensors of rank 0 or 1.
    if (t->shape.size() < 2) throw Error(path() + ": weight '" + name + "' is not a matrix or kernel");
    switch (t->ggml_type) {
        case kGgmlF32: return {WeightType::F32, t->raw, nullptr};
        case kGgmlBF16: return {WeightType::BF16, t->raw, nullptr};
        case kGgmlI8: {
            // validate() has checked presence, type and shape; checked again so no caller can skip it.
            const GgufTensor* s = gguf_->find_tensor(name + ".scale");
            if (!s || s->ggml_type != kGgmlF32 || s->shape != Shape{t->shape[0]})
                throw Error(path() + ": I8 tensor '" + name + "' lacks a valid F32 scale tensor '" + name + ".scale' [" +
                            std::to_string(t->shape[0]) + "]");
            for (uint64_t i = 0; i < s->n_elements; ++i)
                if (!(s->data[i] >= 0.f && std::isfinite(s->data[i])))
                    throw Error(path() + ": scale tensor '" + name + ".scale' holds a negative or non-finite value at row " +
                                std::to_string(i));
            return {WeightType::I8, t->raw, s->data};
        }
        default: throw Error(path() + ": tensor '" + name + "' has unsupported type " + ggml_type_name(t->ggml_type));
    }
}

std::vector<std::string> read_labels(const Json& j) {
    // id2label is {"0": "name", ...}; num_labels alone (no id2label) means LABEL_i names.
    std::vector<std::string> labels;
    if (auto it = j.find("id2label"); it != j.end() && it->is_object() && !it->empty()) {
        labels.resize(it->size());
        std::vector<bool> seen(labels.size());
        for (auto& [key, value] : it->items()) {
            size_t id = 0;
            size_t used = 0;
            try {
                id = std::stoul(key, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used == 0 || used != key.size()) throw Error("config id2label has a non-numeric key '" + key.substr(0, 64) + "'");
            if (id >= labels.size() || seen[id]) throw Error("config id2label ids are not 0..n-1");
            seen[id] = true;
            if (!value.is_string()) throw Error("config id2label['" + key + "'] is not a string");
            labels[id] = value.get<std::string>();
        }
    } else {
        const int64_t n = config_int(j, "num_labels", 2, 1, kMaxConfigCount);
        for (int64_t i = 0; i < n; ++i) labels.push_back("LABEL_" + std::to_string(i));
    }
    return labels;
}

}  // namespace d2v
