// Test helper: a copy of a GGUF file with some string metadata replaced, added or removed and
// everything else (other metadata, tensor infos, tensor data) kept, so hostile-input tests can
// start from a valid fixture and damage exactly one field. Throws std::runtime_error on a file it
// cannot walk (tests only feed it our own fixtures).
#pragma once
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace gguf_rewrite {

// key -> new string value, or std::nullopt to remove the key.
using StringEdits = std::map<std::string, std::optional<std::string>>;

namespace detail {

constexpr uint32_t kString = 8, kArray = 9;

struct Walker {
    const std::string& bytes;
    size_t pos = 0;

    template <class T>
    T get() {
        if (pos + sizeof(T) > bytes.size()) throw std::runtime_error("gguf_rewrite: truncated file");
        T v;
        std::memcpy(&v, bytes.data() + pos, sizeof(T));
        pos += sizeof(T);
        return v;
    }
    std::string string() {
        const auto n = get<uint64_t>();
        if (n > bytes.size() - pos) throw std::runtime_error("gguf_rewrite: truncated string");
        pos += n;
        return bytes.substr(pos - n, n);
    }
    void skip_value(uint32_t type) {
        static const size_t size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        if (type == kString) {
            string();
        } else if (type == kArray) {
            const auto element = get<uint32_t>();
            const auto count = get<uint64_t>();
            for (uint64_t i = 0; i < count; ++i) skip_value(element);
        } else if (type < 13) {
            pos += size[type];
        } else {
            throw std::runtime_error("gguf_rewrite: unknown value type");
        }
    }
};

template <class T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

inline void put_string(std::string& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    out += s;
}

}  // namespace detail

inline std::string with_strings(const std::string& bytes, const StringEdits& edits) {
    using namespace detail;
    Walker w{bytes};
    if (w.get<uint32_t>() != 0x46554747u) throw std::runtime_error("gguf_rewrite: not a GGUF file");
    const auto version = w.get<uint32_t>();
    const auto n_tensors = w.get<uint64_t>();
    const auto n_kv = w.get<uint64_t>();
    std::string kvs;
    uint64_t kept = 0, alignment = 32;
    StringEdits pending = edits;
    for (uint64_t i = 0; i < n_kv; ++i) {
        const size_t start = w.pos;
        const std::string key = w.string();
        const auto type = w.get<uint32_t>();
        const size_t value_at = w.pos;
        w.skip_value(type);
        if (key == "general.alignment") {
            uint32_t a = 0;
            std::memcpy(&a, bytes.data() + value_at, 4);
            alignment = a;
        }
        auto edit = pending.find(key);
        if (edit == pending.end()) {
            kvs.append(bytes, start, w.pos - start);
            ++kept;
            continue;
        }
        if (edit->second) {
            put_string(kvs, key);
            put<uint32_t>(kvs, kString);
            put_string(kvs, *edit->second);
            ++kept;
        }
        pending.erase(edit);
    }
    for (const auto& [key, value] : pending) {  // keys the file did not have
        if (!value) continue;
        put_string(kvs, key);
        put<uint32_t>(kvs, kString);
        put_string(kvs, *value);
        ++kept;
    }
    const size_t infos_start = w.pos;
    for (uint64_t i = 0; i < n_tensors; ++i) {
        w.string();
        const auto n_dims = w.get<uint32_t>();
        w.pos += 8 * size_t(n_dims) + 4 + 8;
    }
    const size_t old_data = (w.pos + alignment - 1) / alignment * alignment;
    if (old_data > bytes.size()) throw std::runtime_error("gguf_rewrite: truncated tensor infos");

    std::string out;
    put<uint32_t>(out, 0x46554747u);
    put<uint32_t>(out, version);
    put<uint64_t>(out, n_tensors);
    put<uint64_t>(out, kept);
    out += kvs;
    out.append(bytes, infos_start, w.pos - infos_start);
    out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');  // tensor offsets are relative to here
    out.append(bytes, old_data, std::string::npos);
    return out;
}

}  // namespace gguf_rewrite
