// A converted model file: the GGUF container plus the JSON documents the converter packed into it
// (config.json, preprocessor_config.json, vocab.json), and strict tensor look-up against a table of
// expected names and shapes (one table per architecture, see <modality>/tensor_names.h).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "d2v/gguf.h"

namespace d2v {

using Json = nlohmann::json;

struct TensorSpec {
    std::string name;
    Shape shape;
};

// The full list of tensors an architecture + config expects. Built by each model family's
// tensor table; the loader refuses a file with a missing, extra or mis-shaped tensor.
class TensorTable {
public:
    void add(std::string name, Shape shape) { specs_.push_back({std::move(name), std::move(shape)}); }
    // Tensors a checkpoint may carry that inference does not use (e.g. pre-training only).
    void allow_unused(std::string name) { unused_ok_.insert(std::move(name)); }
    const std::vector<TensorSpec>& specs() const { return specs_; }
    const std::set<std::string>& unused_ok() const { return unused_ok_; }

private:
    std::vector<TensorSpec> specs_;
    std::set<std::string> unused_ok_;
};

class ModelFile {
public:
    explicit ModelFile(const std::string& path);

    const std::string& path() const { return gguf_->path(); }
    const std::string& architecture() const { return architecture_; }  // "data2vec-audio", ...
    const std::string& model_class() const { return model_class_; }    // "Data2VecAudioForCTC", ...
    const Json& config() const { return config_; }
    // Optional packed documents; null when the checkpoint had none.
    const Json& preprocessor() const { return preprocessor_; }
    const Json& vocab() const { return vocab_; }
    const Json& tokenizer_config() const { return tokenizer_config_; }

    // Refuse a file of another modality, naming what it is and what the caller needed.
    void require_architecture(const std::string& expected, const std::string& program) const;
    // Check the file's tensors against the table: every expected tensor present with the exact shape,
    // no tensor left over unless the table allows it. The error names every offending tensor.
    void validate(const TensorTable& table) const;
    // Pointer into the mapped file for a tensor that validate() has checked.
    const float* tensor(const std::string& name) const;
    bool has_tensor(const std::string& name) const { return gguf_->find_tensor(name) != nullptr; }
    // Other packed documents (e.g. "d2v.merges_txt", "d2v.tokenizer_json"); empty if absent.
    std::string metadata_string(const std::string& key) const { return gguf_->get_string_or(key, ""); }

private:
    std::unique_ptr<GgufFile> gguf_;
    std::string architecture_, model_class_;
    Json config_, preprocessor_, vocab_, tokenizer_config_;
};

// ---- typed config access: a wrong type is an error naming the field, a missing field takes HF's default.
template <typename T>
T config_value(const Json& config, const std::string& key, const T& fallback) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) return fallback;
    try {
        return it->get<T>();
    } catch (const std::exception&) {
        throw Error("config field '" + key + "' has an unexpected type: " + it->dump());
    }
}

// Upper bound for any count a config gives (layers, labels, ...): refuses absurd values before
// anything is allocated or looped over.
constexpr int64_t kMaxConfigCount = int64_t(1) << 20;

// id2label as a vector indexed by class id (any modality's config).
inline std::vector<std::string> read_labels(const Json& j) {
    // id2label is {"0": "name", ...}; num_labels alone (no id2label) means LABEL_i names.
    std::vector<std::string> labels;
    if (auto it = j.find("id2label"); it != j.end() && it->is_object() && !it->empty()) {
        labels.resize(it->size());
        for (auto& [key, value] : it->items()) {
            size_t id = 0;
            try {
                id = std::stoul(key);
            } catch (const std::exception&) {
                throw Error("config id2label has a non-numeric key '" + key + "'");
            }
            if (id >= labels.size()) throw Error("config id2label ids are not 0..n-1");
            if (!value.is_string()) throw Error("config id2label['" + key + "'] is not a string");
            labels[id] = value.get<std::string>();
        }
    } else {
        int64_t n = config_value<int64_t>(j, "num_labels", 2);
        if (n < 1 || n > kMaxConfigCount) throw Error("config: num_labels " + std::to_string(n) + " is out of range");
        for (int64_t i = 0; i < n; ++i) labels.push_back("LABEL_" + std::to_string(i));
    }
    return labels;
}

inline ModelFile::ModelFile(const std::string& path) : gguf_(std::make_unique<GgufFile>(path)) {
    if (!gguf_->has("d2v.config_json") || !gguf_->has("general.architecture"))
        throw Error(path + ": GGUF file was not written by weights_tools/convert.py (no d2v.config_json); "
                           "convert the Hugging Face checkpoint with it first");
    architecture_ = gguf_->get_string("general.architecture");
    model_class_ = gguf_->get_string_or("d2v.model_class", "");
    uint64_t version = gguf_->get_uint("d2v.format_version");
    if (version != 1) throw Error(path + ": d2v.format_version " + std::to_string(version) + " is not supported");
    auto parse = [&](const char* key, Json& out) {
        if (!gguf_->has(key)) return;
        try {
            out = Json::parse(gguf_->get_string(key));
        } catch (const Json::exception& e) {
            throw Error(path + ": metadata '" + key + "' is not valid JSON: " + e.what());
        }
    };
    parse("d2v.config_json", config_);
    if (!config_.is_object()) throw Error(path + ": d2v.config_json is not a JSON object");
    parse("d2v.preprocessor_json", preprocessor_);
    parse("d2v.vocab_json", vocab_);
    parse("d2v.tokenizer_config_json", tokenizer_config_);
}

inline void ModelFile::require_architecture(const std::string& expected, const std::string& program) const {
    if (architecture_ != expected)
        throw Error(path() + " holds a '" + architecture_ + "' model (" + model_class_ + "); " + program +
                    " needs a '" + expected + "' model");
}

inline void ModelFile::validate(const TensorTable& table) const {
    std::string problems;
    std::set<std::string> expected;
    for (const auto& spec : table.specs()) {
        expected.insert(spec.name);
        const GgufTensor* t = gguf_->find_tensor(spec.name);
        if (!t)
            problems += "\n  missing tensor '" + spec.name + "' " + shape_to_string(spec.shape);
        else if (t->shape != spec.shape)
            problems += "\n  tensor '" + spec.name + "' has shape " + shape_to_string(t->shape) + ", config implies " +
                        shape_to_string(spec.shape);
    }
    for (const auto& [name, t] : gguf_->tensors())
        if (!expected.count(name) && !table.unused_ok().count(name))
            problems += "\n  unexpected tensor '" + name + "' " + shape_to_string(t.shape) +
                        " (does the config match the weights?)";
    if (!problems.empty()) throw Error(path() + ": weights do not match " + model_class_ + " config:" + problems);
}

inline const float* ModelFile::tensor(const std::string& name) const {
    const GgufTensor* t = gguf_->find_tensor(name);
    if (!t) throw Error(path() + ": missing tensor '" + name + "'");
    return t->data;
}

}  // namespace d2v
