// Shared command-line plumbing for the example programs (whisper.cpp / llama.cpp conventions:
// -m model, -t threads, --json, --help; errors on stderr and a non-zero exit).
#pragma once
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "d2v/kernels/linear.h"
#include "d2v/npy.h"
#include "d2v/version.h"

namespace cli {

constexpr int kExitError = 1;  // bad input, bad model file, failed run
constexpr int kExitUsage = 2;  // bad command line

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// --words "W1 W2 ..." (the option's value) or --lexicon FILE (white-space separated words; a word
// list, so a few MB at most): the word list of CTC decoding (d2v/audio/lexicon_decoder.h).
inline std::vector<std::string> word_list_option(const std::string& option, const std::string& value) {
    std::string text = value;
    if (option == "--lexicon") {
        constexpr std::streamsize kMaxBytes = 4 << 20;
        std::ifstream in(value, std::ios::binary);
        if (!in) throw d2v::Error(value + ": cannot open the word list");
        text.assign(size_t(kMaxBytes) + 1, '\0');
        in.read(text.data(), kMaxBytes + 1);
        if (in.gcount() > kMaxBytes) throw d2v::Error(value + ": word list larger than 4 MB");
        text.resize(size_t(in.gcount()));
    }
    std::istringstream in(text);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    if (words.empty() && option == "--lexicon") throw d2v::Error(value + ": the word list is empty");
    if (words.empty()) throw UsageError(option + " needs at least one word");
    return words;
}

inline int default_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : int(std::min(n, 8u));
}

// Walks argv; each option handler consumes its value through next().
class Args {
public:
    Args(int argc, char** argv) : program_(argc > 0 ? argv[0] : "d2v"), args_(argv + 1, argv + argc) {}
    bool done() const { return i_ >= args_.size(); }
    // --version is answered here, the same way for every program.
    std::string take() {
        std::string a = args_[i_++];
        if (a == "--version") {
            const size_t slash = program_.find_last_of('/');
            std::printf("%s %s\n", program_.substr(slash == std::string::npos ? 0 : slash + 1).c_str(), D2V_VERSION_STRING);
            std::exit(0);
        }
        return a;
    }
    std::string value(const std::string& option) {
        if (done()) throw UsageError("option " + option + " needs a value");
        return take();
    }
    int int_value(const std::string& option, int min_value) {
        const std::string v = value(option);
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || n < min_value || n > 1 << 20)
            throw UsageError("option " + option + " needs an integer >= " + std::to_string(min_value) + ", got '" + v + "'");
        return int(n);
    }
    // Any value an unsigned 64-bit integer holds (seeds).
    uint64_t uint64_value(const std::string& option) {
        const std::string v = value(option);
        char* end = nullptr;
        errno = 0;
        const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || v[0] == '-' || v[0] == '+' || *end != '\0' || errno == ERANGE)
            throw UsageError("option " + option + " needs an integer from 0 to 2^64-1, got '" + v + "'");
        return uint64_t(n);
    }
    // A finite number in (low, high] when low_open, else [low, high].
    float float_value(const std::string& option, float low, float high, bool low_open = false) {
        const std::string v = value(option);
        char* end = nullptr;
        errno = 0;
        const float x = std::strtof(v.c_str(), &end);
        const bool above_low = low_open ? x > low : x >= low;
        if (v.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x) || !above_low || x > high) {
            char range[64];
            std::snprintf(range, sizeof range, "%s%g, %g]", low_open ? "(" : "[", double(low), double(high));
            throw UsageError("option " + option + " needs a number in " + range + ", got '" + v + "'");
        }
        return x;
    }

private:
    std::string program_;
    std::vector<std::string> args_;
    size_t i_ = 0;
};

inline void make_dump_dir(const std::string& dir) {
    struct stat st{};
    if (stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) throw d2v::Error("--dump: '" + dir + "' exists and is not a directory");
        return;
    }
    if (mkdir(dir.c_str(), 0755) != 0) throw d2v::Error("--dump: cannot create directory '" + dir + "'");
}

inline void dump_outputs(const std::string& dir, const d2v::NamedOutputs& outputs) {
    make_dump_dir(dir);
    for (const auto& [name, array] : outputs) d2v::write_npy(dir + "/" + name + ".npy", array);
}

// Runs main_body, mapping errors to messages and exit codes.
template <typename F>
int guarded_main(const char* program, F&& main_body) {
    try {
        return main_body();
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", program, e.what(), program);
        return kExitUsage;
    } catch (const d2v::Error& e) {
        std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        return kExitError;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "%s: error: out of memory\n", program);
        return kExitError;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        return kExitError;
    }
}

}  // namespace cli
