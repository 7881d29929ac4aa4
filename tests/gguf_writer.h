// Writing GGUF files in tests: a model file re-written with an edited config, or raw hostile bytes.
#pragma once
#include <cstring>
#include <string>
#include <vector>

#include "d2v/model_file.h"

namespace gguf_test {

// Little-endian byte builder for the GGUF layout (github.com/ggml-org/ggml/blob/master/docs/gguf.md).
struct Bytes {
    std::string data;
    template <typename T>
    Bytes& put(T v) {
        data.append(reinterpret_cast<const char*>(&v), sizeof v);
        return *this;
    }
    Bytes& str(const std::string& s) {
        put<uint64_t>(s.size());
        data += s;
        return *this;
    }
    Bytes& header(uint64_t n_tensors, uint64_t n_kv) {
        data += "GGUF";
        return put<uint32_t>(3).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
    }
    Bytes& kv_string(const std::string& key, const std::string& value) { return str(key).put<uint32_t>(8).str(value); }
    Bytes& kv_u32(const std::string& key, uint32_t value) { return str(key).put<uint32_t>(4).put<uint32_t>(value); }
};

struct TensorBytes {
    std::string name;
    d2v::Shape shape;
    const float* data;  // shape's element count of floats
};

inline uint64_t elements(const d2v::Shape& shape) {
    uint64_t n = 1;
    for (auto d : shape) n *= uint64_t(d);
    return n;
}

// A whole GGUF v3 file: string / uint metadata and float32 tensors, 32-byte aligned.
inline std::string gguf_bytes(const std::vector<std::pair<std::string, d2v::GgufValue>>& kvs, const std::vector<TensorBytes>& tensors) {
    Bytes b;
    b.header(tensors.size(), kvs.size());
    for (const auto& [key, value] : kvs) {
        if (const auto* s = std::get_if<std::string>(&value)) b.kv_string(key, *s);
        else if (const auto* u = std::get_if<uint64_t>(&value)) b.kv_u32(key, uint32_t(*u));
        else throw std::runtime_error("gguf_test::gguf_bytes: unsupported metadata type for " + key);
    }
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        b.str(t.name).put<uint32_t>(uint32_t(t.shape.size()));
        for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) b.put<uint64_t>(uint64_t(*d));
        b.put<uint32_t>(0).put<uint64_t>(offset);
        offset += (elements(t.shape) * 4 + 31) / 32 * 32;
    }
    b.data.resize((b.data.size() + 31) / 32 * 32, '\0');
    for (const auto& t : tensors) {
        b.data.append(reinterpret_cast<const char*>(t.data), elements(t.shape) * 4);
        b.data.resize((b.data.size() + 31) / 32 * 32, '\0');
    }
    return b.data;
}

// The file at `path` with its config JSON replaced by `config` (every tensor and string/uint
// metadata value kept), as GGUF bytes.
inline std::string with_config(const std::string& path, const d2v::Json& config) {
    const d2v::GgufFile in(path);
    std::vector<std::pair<std::string, d2v::GgufValue>> kvs;
    for (const auto& [key, value] : in.metadata()) {
        if (key == "general.alignment") continue;
        kvs.emplace_back(key, key == "d2v.config_json" ? d2v::GgufValue(config.dump()) : value);
    }
    std::vector<TensorBytes> tensors;
    for (const auto& [name, t] : in.tensors()) tensors.push_back({name, t.shape, t.data});
    return gguf_bytes(kvs, tensors);
}

}  // namespace gguf_test
