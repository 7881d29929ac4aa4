// A converted model file: the GGUF container plus the JSON documents the converter packed into it
// (config.json, preprocessor_config.json, vocab.json), and strict tensor look-up against a table of
// expected names and shapes (one table per architecture, see <modality>/tensor_names.h).
//
// Hostile files: a config can claim any count (num_hidden_layers: 1048576 in a 690 KB file). Tables
// therefore declare repeated blocks (layers, conv layers) with add_repeated(), and validate() checks
// each count against the tensors the file really holds before expanding it, so loading costs memory
// and time in proportion to the file, never to the config's claims.
#pragma once
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "d2v/gguf.h"
#include "d2v/kernels/linear.h"

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
    // One block of tensors (e.g. one encoder layer), given its index.
    using Block = std::function<void(TensorTable&, int64_t index)>;

    void add(std::string name, Shape shape) { specs_.push_back({std::move(name), std::move(shape)}); }
    // `count` copies of a block, `count` coming from the config field `field`. Expanded by validate()
    // only once the file is known to hold enough tensors for them.
    void add_repeated(std::string field, int64_t count, Block block) {
        repeated_.push_back({std::move(field), count, std::move(block)});
    }
    // Tensors a checkpoint may carry that inference does not use (e.g. pre-training only).
    void allow_unused(std::string name) { unused_ok_.insert(std::move(name)); }
    const std::vector<TensorSpec>& specs() const { return specs_; }
    const std::set<std::string>& unused_ok() const { return unused_ok_; }

    // Every spec and unused name, repeated blocks expanded; a block count whose tensors cannot all be
    // in a file of `available_tensors` tensors is an Error naming the config field.
    TensorTable expanded(uint64_t available_tensors) const;

private:
    struct Repeated {
        std::string field;
        int64_t count;
        Block block;
    };
    std::vector<TensorSpec> specs_;
    std::vector<Repeated> repeated_;
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
    // no tensor left over unless the table allows it. The error names the offending tensors (the
    // first kMaxListedProblems of them, then how many more). Reduced-precision files: a 2-D tensor
    // may be BF16, or I8 with its per-row scales in an F32 tensor '<name>.scale' of shape [rows];
    // whether that tensor may be reduced at all is decided by its user (tensor() vs linear_weight()).
    void validate(const TensorTable& table) const;
    // Pointer into the mapped file for an F32 tensor that validate() has checked; a tensor stored in
    // another type is an Error naming it (only Linear weight matrices may be BF16 / I8).
    const float* tensor(const std::string& name) const;
    // A Linear weight matrix in whatever type the file holds it (F32, BF16, I8 + scales). I8 scales
    // must be finite and non-negative.
    WeightData linear_weight(const std::string& name) const;
    // After a Linear has packed (copied) this tensor: release its mapped pages (GgufFile).
    void release_tensor_pages(const std::string& name) const {
        if (const GgufTensor* t = gguf_->find_tensor(name)) gguf_->release_tensor_pages(*t);
    }
    // convert.py --outtype: "f32" (also for files written before it existed), "bf16" or "q8".
    std::string weight_precision() const { return gguf_->get_string_or("d2v.outtype", "f32"); }
    bool has_tensor(const std::string& name) const { return gguf_->find_tensor(name) != nullptr; }
    // Other packed documents (e.g. "d2v.merges_txt", "d2v.tokenizer_json"); empty if absent.
    std::string metadata_string(const std::string& key) const { return gguf_->get_string_or(key, ""); }

    static constexpr size_t kMaxListedProblems = 20;

private:
    std::unique_ptr<GgufFile> gguf_;
    std::string architecture_, model_class_;
    Json config_, preprocessor_, vocab_, tokenizer_config_;
};

// ---- typed config access: a value of the wrong kind is an error naming the field, a missing (or
// null) field takes HF's default. Strict on purpose: nlohmann's get<int64_t>() would turn 32.5 into
// 32 and true into 1 without a word, and Transformers would fail on either.
template <typename T>
T config_cast(const Json& value, const std::string& key);

// A config value for an error message: short, and never a recursive dump of a deep structure.
inline std::string describe(const Json& v) {
    if (v.is_array()) return "a list of " + std::to_string(v.size());
    if (v.is_object()) return "an object";
    const std::string text = v.dump();
    return text.size() <= 80 ? text : text.substr(0, 77) + "...";
}

template <>
inline int64_t config_cast<int64_t>(const Json& v, const std::string& key) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
        throw Error("config field '" + key + "' is out of range: " + describe(v));
    if (!v.is_number_integer()) throw Error("config field '" + key + "' must be an integer, got " + describe(v));
    return v.get<int64_t>();
}

template <>
inline double config_cast<double>(const Json& v, const std::string& key) {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
        throw Error("config field '" + key + "' must be a finite number, got " + describe(v));
    return v.get<double>();
}

template <>
inline bool config_cast<bool>(const Json& v, const std::string& key) {
    if (!v.is_boolean()) throw Error("config field '" + key + "' must be true or false, got " + describe(v));
    return v.get<bool>();
}

template <>
inline std::string config_cast<std::string>(const Json& v, const std::string& key) {
    if (!v.is_string()) throw Error("config field '" + key + "' must be a string, got " + describe(v));
    return v.get<std::string>();
}

template <>
inline std::vector<int64_t> config_cast<std::vector<int64_t>>(const Json& v, const std::string& key) {
    if (!v.is_array()) throw Error("config field '" + key + "' must be a list of integers, got " + describe(v));
    std::vector<int64_t> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) out.push_back(config_cast<int64_t>(v[i], key + "[" + std::to_string(i) + "]"));
    return out;
}

template <typename T>
T config_value(const Json& config, const std::string& key, const T& fallback) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) return fallback;
    return config_cast<T>(*it, key);
}

// Upper bound for any count a config gives (layers, labels, ...): refuses absurd values before
// anything is allocated or looped over. Counts of repeated tensor blocks are further bounded by the
// file (TensorTable::add_repeated).
constexpr int64_t kMaxConfigCount = int64_t(1) << 20;
// Upper bound for any size a config gives (hidden size, vocabulary, ...): 2^24 is 2000x BERT's
// hidden size and 60x the largest vocabularies; it keeps every product of two sizes inside int64.
constexpr int64_t kMaxConfigSize = int64_t(1) << 24;

// An integer field within [min, max], the range in the message.
inline int64_t config_int(const Json& config, const std::string& key, int64_t fallback, int64_t min, int64_t max) {
    const int64_t v = config_value<int64_t>(config, key, fallback);
    if (v < min || v > max)
        throw Error("config field '" + key + "' = " + std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
                    std::to_string(max) + "]");
    return v;
}

// A list of integers, each within [min, max], at most kMaxConfigCount long.
inline std::vector<int64_t> config_ints(const Json& config, const std::string& key, const std::vector<int64_t>& fallback,
                                        int64_t min, int64_t max) {
    std::vector<int64_t> v = config_value<std::vector<int64_t>>(config, key, fallback);
    if (int64_t(v.size()) > kMaxConfigCount) throw Error("config field '" + key + "' has too many entries");
    for (size_t i = 0; i < v.size(); ++i)
        if (v[i] < min || v[i] > max)
            throw Error("config field '" + key + "[" + std::to_string(i) + "]' = " + std::to_string(v[i]) + " is out of range [" +
                        std::to_string(min) + ", " + std::to_string(max) + "]");
    return v;
}

// A finite number within [min, max].
inline double config_number(const Json& config, const std::string& key, double fallback, double min, double max) {
    const double v = config_value<double>(config, key, fallback);
    if (!(v >= min && v <= max))
        throw Error("config field '" + key + "' = " + Json(v).dump() + " is out of range [" + Json(min).dump() + ", " +
                    Json(max).dump() + "]");
    return v;
}

// id2label as a vector indexed by class id (any modality's config).
std::vector<std::string> read_labels(const Json& config);

}  // namespace d2v
