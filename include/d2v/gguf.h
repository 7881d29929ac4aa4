// Read-only, memory-mapped GGUF reader (format: github.com/ggml-org/ggml/blob/master/docs/gguf.md).
// Every count, length, offset and size is checked against the file before use, so a truncated or
// corrupted file gives a d2v::Error naming what is wrong — never an out-of-bounds read. Memory is
// bounded by the bytes the file really holds, not by the counts its header claims: metadata arrays are
// checked but not expanded (no key we read is an array), and key/tensor counts are capped.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "d2v/tensor.h"

namespace d2v {

// A metadata array: its item type and length only. Expanding one into values costs ~40 bytes per
// file byte (a 16 MB u8 array would take 640 MB), and no key we read holds an array.
struct GgufArray {
    uint32_t item_type = 0;
    uint64_t size = 0;
};
using GgufValue = std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray>;

// The ggml tensor types this reader accepts: F32 everywhere; BF16 and I8 only for the weight
// matrices that reduced-precision files (convert.py --outtype bf16 / q8) store that way.
enum GgmlType : uint32_t { kGgmlF32 = 0, kGgmlI8 = 24, kGgmlBF16 = 30 };
const char* ggml_type_name(uint32_t type);

struct GgufTensor {
    std::string name;
    Shape shape;              // numpy / PyTorch order (GGUF stores it reversed)
    uint32_t ggml_type = kGgmlF32;
    const float* data = nullptr;  // F32 tensors only (null for the others: use `raw`)
    const void* raw = nullptr;    // every type: n_elements items of ggml_type, inside the mapping
    uint64_t n_elements = 0;
};

class GgufFile {
public:
    explicit GgufFile(const std::string& path);
    ~GgufFile();
    GgufFile(const GgufFile&) = delete;
    GgufFile& operator=(const GgufFile&) = delete;

    const std::string& path() const { return path_; }
    bool has(const std::string& key) const { return metadata_.count(key) != 0; }
    // Typed metadata access; a missing key or a value of another type is an Error naming the key.
    std::string get_string(const std::string& key) const;
    uint64_t get_uint(const std::string& key) const;
    std::string get_string_or(const std::string& key, const std::string& fallback) const;

    const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
    const std::map<std::string, GgufTensor>& tensors() const { return tensors_; }
    const GgufTensor* find_tensor(const std::string& name) const;
    // Drops this process's mapped pages lying wholly inside a tensor's data (madvise MADV_DONTNEED),
    // once a copy (e.g. a Linear's packed weights) has taken its place: they stop counting towards
    // RSS. Safe because the mapping is private, read-only and file-backed: a later read faults the
    // same bytes back in from the file. Any other address range is ignored.
    void release_tensor_pages(const GgufTensor& tensor) const;

private:
    std::string path_;
    void* mapping_ = nullptr;
    size_t size_ = 0;
    std::map<std::string, GgufValue> metadata_;
    std::map<std::string, GgufTensor> tensors_;
};

}  // namespace d2v
