#include "d2v/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace d2v {
namespace {

// Bytes per element of an accepted tensor type; 0 for any other type.
uint64_t element_bytes(uint32_t type) {
    switch (type) {
        case kGgmlF32: return 4;
        case kGgmlBF16: return 2;
        case kGgmlI8: return 1;
        default: return 0;
    }
}
constexpr uint64_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr uint64_t kMaxNesting = 4;
// A data2vec-large checkpoint has ~400 tensors and our converter writes ~10 metadata keys; these
// caps keep the in-memory directory (~200 bytes per entry) small whatever the header claims.
constexpr uint64_t kMaxTensors = 1u << 16;
constexpr uint64_t kMaxMetadataKeys = 1u << 16;
// Tensor names and metadata keys are short identifiers; a longer one is corruption (and would
// otherwise be echoed into error messages).
constexpr uint64_t kMaxNameLength = 4096;
// Smallest possible encodings, to bound a claimed count by the bytes left in the file:
// key/value = key length (8) + type (4) + 1 byte of value; tensor info = name length (8) + rank (4)
// + one dimension (8) + type (4) + offset (8).
constexpr uint64_t kMinMetadataBytes = 13, kMinTensorInfoBytes = 32;

enum GgufType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

// Bounds-checked little-endian reader over the mapped bytes.
class Cursor {
public:
    Cursor(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T value;
        std::memcpy(&value, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return value;
    }
    std::string read_string(const char* what, uint64_t max_length = UINT64_MAX) {
        uint64_t len = read<uint64_t>(what);
        if (len > max_length) fail(std::string(what) + " is " + std::to_string(len) + " bytes long (at most " + std::to_string(max_length) + ")");
        need(len, what);
        std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
        pos_ += len;
        return s;
    }
    void skip(uint64_t n, const char* what) {
        need(n, what);
        pos_ += n;
    }
    size_t pos() const { return pos_; }
    size_t remaining() const { return size_ - pos_; }
    [[noreturn]] void fail(const std::string& msg) const {
        throw Error(path_ + ": corrupt or truncated GGUF file: " + msg);
    }

private:
    void need(uint64_t n, const char* what) const {
        if (n > size_ - pos_) fail(std::string("unexpected end of file while reading ") + what);
    }
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
    std::string path_;
};

// Bytes per item of a fixed-size type; 0 for strings, arrays and unknown types.
uint64_t fixed_width(uint32_t type) {
    switch (type) {
        case U8: case I8: case BOOL: return 1;
        case U16: case I16: return 2;
        case U32: case I32: case F32: return 4;
        case U64: case I64: case F64: return 8;
        default: return 0;
    }
}

GgufValue read_value(Cursor& c, uint32_t type, uint64_t depth) {
    switch (type) {
        case U8: return uint64_t(c.read<uint8_t>("u8 value"));
        case I8: return int64_t(c.read<int8_t>("i8 value"));
        case U16: return uint64_t(c.read<uint16_t>("u16 value"));
        case I16: return int64_t(c.read<int16_t>("i16 value"));
        case U32: return uint64_t(c.read<uint32_t>("u32 value"));
        case I32: return int64_t(c.read<int32_t>("i32 value"));
        case U64: return c.read<uint64_t>("u64 value");
        case I64: return c.read<int64_t>("i64 value");
        case F32: return double(c.read<float>("f32 value"));
        case F64: return c.read<double>("f64 value");
        case BOOL: {
            uint8_t b = c.read<uint8_t>("bool value");
            if (b > 1) c.fail("bool value is neither 0 nor 1");
            return b == 1;
        }
        case STRING: return c.read_string("string value");
        case ARRAY: {
            if (depth >= kMaxNesting) c.fail("arrays nested too deeply");
            GgufArray array;
            array.item_type = c.read<uint32_t>("array item type");
            array.size = c.read<uint64_t>("array length");
            // Every item takes at least one byte, so a length beyond the bytes left is a lie.
            if (array.size > c.remaining()) c.fail("array length " + std::to_string(array.size) + " exceeds the file");
            if (const uint64_t width = fixed_width(array.item_type)) {
                if (array.size > c.remaining() / width) c.fail("array of " + std::to_string(array.size) + " items exceeds the file");
                c.skip(array.size * width, "array items");
            } else {
                // Strings and nested arrays: walked (each item's length checked), not kept.
                for (uint64_t i = 0; i < array.size; ++i) read_value(c, array.item_type, depth + 1);
            }
            return array;
        }
        default: c.fail("unknown metadata value type " + std::to_string(type));
    }
}

}  // namespace

const char* ggml_type_name(uint32_t type) {
    switch (type) {
        case kGgmlF32: return "F32";
        case kGgmlBF16: return "BF16";
        case kGgmlI8: return "I8";
        default: return "unknown";
    }
}

GgufFile::GgufFile(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw Error(path + ": cannot open model file: " + std::strerror(errno));
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(path + ": not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ < 24) {
        ::close(fd);
        throw Error(path + ": not a GGUF model file (too short: " + std::to_string(size_) + " bytes)");
    }
    mapping_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (mapping_ == MAP_FAILED) {
        mapping_ = nullptr;
        throw Error(path + ": cannot map model file");
    }
    try {
        const auto* bytes = static_cast<const uint8_t*>(mapping_);
        Cursor c(bytes, size_, path);
        if (std::memcmp(bytes, "GGUF", 4) != 0) throw Error(path + ": not a GGUF model file (bad magic)");
        c.read<uint32_t>("magic");
        uint32_t version = c.read<uint32_t>("version");
        if (version != 3) throw Error(path + ": unsupported GGUF version " + std::to_string(version) + " (need 3)");
        uint64_t n_tensors = c.read<uint64_t>("tensor count");
        uint64_t n_kv = c.read<uint64_t>("metadata count");
        if (n_kv > kMaxMetadataKeys || n_kv > c.remaining() / kMinMetadataBytes)
            c.fail("metadata count " + std::to_string(n_kv) + " is implausible for a file of " + std::to_string(size_) + " bytes");
        if (n_tensors > kMaxTensors || n_tensors > c.remaining() / kMinTensorInfoBytes)
            c.fail("tensor count " + std::to_string(n_tensors) + " is implausible for a file of " + std::to_string(size_) + " bytes");

        for (uint64_t i = 0; i < n_kv; ++i) {
            std::string key = c.read_string("metadata key", kMaxNameLength);
            uint32_t type = c.read<uint32_t>("metadata type");
            GgufValue value = read_value(c, type, 0);
            if (!metadata_.emplace(key, std::move(value)).second) c.fail("duplicate metadata key '" + key + "'");
        }
        uint64_t alignment = 32;
        if (auto it = metadata_.find("general.alignment"); it != metadata_.end()) {
            const uint64_t* a = std::get_if<uint64_t>(&it->second);
            if (!a || *a < 8 || (*a & (*a - 1)) != 0 || *a > 4096) c.fail("general.alignment must be a power of two >= 8");
            alignment = *a;
        }

        struct Pending { std::string name; Shape shape; uint32_t type; uint64_t offset; uint64_t n; };
        std::vector<Pending> pending;
        pending.reserve(n_tensors);
        for (uint64_t i = 0; i < n_tensors; ++i) {
            Pending t;
            t.name = c.read_string("tensor name", kMaxNameLength);
            uint32_t n_dims = c.read<uint32_t>("tensor rank");
            if (n_dims == 0 || n_dims > kMaxDims) c.fail("tensor '" + t.name + "' has rank " + std::to_string(n_dims));
            std::vector<uint64_t> ne(n_dims);
            t.n = 1;
            for (auto& d : ne) {
                d = c.read<uint64_t>("tensor dimension");
                if (d == 0 || d > (uint64_t(1) << 40) || t.n > (uint64_t(1) << 40) / d)
                    c.fail("tensor '" + t.name + "' has an implausible dimension");
                t.n *= d;
            }
            t.shape.assign(ne.rbegin(), ne.rend());
            t.type = c.read<uint32_t>("tensor type");
            t.offset = c.read<uint64_t>("tensor offset");
            pending.push_back(std::move(t));
        }
        uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
        if (data_start > size_) c.fail("tensor data section starts past the end of the file");
        for (auto& t : pending) {
            const uint64_t width = element_bytes(t.type);
            if (width == 0)
                throw Error(path + ": tensor '" + t.name + "' has ggml type " + std::to_string(t.type) +
                            "; this version reads F32, BF16 and I8 tensors only (re-run weights_tools/convert.py)");
            if (t.offset % alignment != 0) c.fail("tensor '" + t.name + "' data offset is not aligned");
            uint64_t nbytes = t.n * width;  // t.n <= 2^40, so no overflow
            if (t.offset > size_ - data_start || nbytes > size_ - data_start - t.offset)
                c.fail("tensor '" + t.name + "' data lies outside the file (offset " + std::to_string(t.offset) +
                       ", " + std::to_string(nbytes) + " bytes)");
            GgufTensor out;
            out.name = t.name;
            out.shape = t.shape;
            out.ggml_type = t.type;
            out.n_elements = t.n;
            out.raw = bytes + data_start + t.offset;
            if (t.type == kGgmlF32) out.data = static_cast<const float*>(out.raw);
            if (!tensors_.emplace(t.name, std::move(out)).second) c.fail("duplicate tensor '" + t.name + "'");
        }
    } catch (...) {
        ::munmap(mapping_, size_);
        mapping_ = nullptr;
        throw;
    }
}

GgufFile::~GgufFile() {
    if (mapping_) ::munmap(mapping_, size_);
}

std::string GgufFile::get_string(const std::string& key) const {
    auto it = metadata_.find(key);
    if (it == metadata_.end()) throw Error(path_ + ": metadata key '" + key + "' is missing");
    const auto* s = std::get_if<std::string>(&it->second);
    if (!s) throw Error(path_ + ": metadata key '" + key + "' is not a string");
    return *s;
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& fallback) const {
    return has(key) ? get_string(key) : fallback;
}

uint64_t GgufFile::get_uint(const std::string& key) const {
    auto it = metadata_.find(key);
    if (it == metadata_.end()) throw Error(path_ + ": metadata key '" + key + "' is missing");
    if (const auto* u = std::get_if<uint64_t>(&it->second)) return *u;
    if (const auto* i = std::get_if<int64_t>(&it->second); i && *i >= 0) return uint64_t(*i);
    throw Error(path_ + ": metadata key '" + key + "' is not an unsigned integer");
}

void GgufFile::release_tensor_pages(const GgufTensor& t) const {
    const auto* base = static_cast<const uint8_t*>(mapping_);
    const auto* begin = static_cast<const uint8_t*>(t.raw);
    if (!base || begin < base || begin >= base + size_) return;  // not in our mapping: never touch it
    const uint64_t bytes = t.n_elements * (t.ggml_type == kGgmlF32 ? 4 : t.ggml_type == kGgmlBF16 ? 2 : 1);
    const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
    const uint64_t first = (uint64_t(begin - base) + page - 1) / page * page;  // mapping_ is page-aligned
    const uint64_t last = std::min<uint64_t>(uint64_t(begin - base) + bytes, size_) / page * page;
    if (last > first) ::madvise(const_cast<uint8_t*>(base) + first, last - first, MADV_DONTNEED);
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace d2v
