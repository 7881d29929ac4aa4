// Minimal .npy (format 1.0) reader/writer: float32 / int64 / int32 / float64, C order.
#pragma once
#include <cstring>
#include <fstream>

#include "d2v/ndarray.h"

namespace d2v {

inline void write_npy(const std::string& path, const NdArray& a) {
    std::string shape = "(";
    for (size_t i = 0; i < a.shape.size(); ++i) shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 ? "," : (i + 1 < a.shape.size() ? ", " : ""));
    shape += ")";
    std::string header = std::string("{'descr': '") + (a.is_integer ? "<i8" : "<f4") +
                         "', 'fortran_order': False, 'shape': " + shape + ", }";
    const size_t unpadded = 10 + header.size() + 1;
    header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
    std::ofstream f(path, std::ios::binary);
    if (!f) throw Error("cannot write " + path);
    const uint16_t header_len = uint16_t(header.size());
    f.write("\x93NUMPY\x01\x00", 8);
    f.write(reinterpret_cast<const char*>(&header_len), 2);
    f.write(header.data(), std::streamsize(header.size()));
    if (a.is_integer) {
        for (float v : a.data) {
            const int64_t i = int64_t(v);
            f.write(reinterpret_cast<const char*>(&i), 8);
        }
    } else {
        f.write(reinterpret_cast<const char*>(a.data.data()), std::streamsize(a.data.size() * sizeof(float)));
    }
    if (!f) throw Error("error writing " + path);
}

// Reads any of the supported dtypes into float (integers are exact below 2^24).
inline NdArray read_npy(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot open " + path);
    char magic[8];
    uint16_t header_len = 0;
    f.read(magic, 8);
    f.read(reinterpret_cast<char*>(&header_len), 2);
    if (!f || std::memcmp(magic, "\x93NUMPY\x01", 7) != 0) throw Error(path + ": not a .npy v1 file");
    std::string header(header_len, '\0');
    f.read(header.data(), header_len);
    auto field = [&](const std::string& key) {
        auto p = header.find("'" + key + "'");
        if (p == std::string::npos) throw Error(path + ": npy header lacks " + key);
        return header.substr(header.find(':', p) + 1);
    };
    const std::string descr = field("descr").substr(field("descr").find('\'') + 1, 3);
    if (field("fortran_order").find("True") < field("fortran_order").find(',')) throw Error(path + ": Fortran order unsupported");
    std::string shape_text = field("shape");
    shape_text = shape_text.substr(shape_text.find('(') + 1, shape_text.find(')') - shape_text.find('(') - 1);
    NdArray a;
    size_t n = 1;
    for (size_t pos = 0; pos < shape_text.size();) {
        size_t end = shape_text.find(',', pos);
        std::string item = shape_text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        if (item.find_first_of("0123456789") != std::string::npos) {
            a.shape.push_back(std::stoll(item));
            n *= size_t(a.shape.back());
        }
        if (end == std::string::npos) break;
        pos = end + 1;
    }
    a.data.resize(n);
    auto read_as = [&](auto tag) {
        using V = decltype(tag);
        std::vector<V> raw(n);
        f.read(reinterpret_cast<char*>(raw.data()), std::streamsize(n * sizeof(V)));
        if (!f) throw Error(path + ": truncated npy data");
        for (size_t i = 0; i < n; ++i) a.data[i] = float(raw[i]);
    };
    if (descr == "<f4") read_as(float{});
    else if (descr == "<f8") read_as(double{});
    else if (descr == "<i8") { read_as(int64_t{}); a.is_integer = true; }
    else if (descr == "<i4") { read_as(int32_t{}); a.is_integer = true; }
    else if (descr == "|b1") { read_as(uint8_t{}); a.is_integer = true; }
    else throw Error(path + ": unsupported npy dtype " + descr);
    return a;
}

}  // namespace d2v
