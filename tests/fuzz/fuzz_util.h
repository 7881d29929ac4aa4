// Shared by the libFuzzer harnesses: fuzz input as a file path (the loaders take paths), and the
// rule every harness enforces: bad input may only ever end in a d2v::Error. Anything else — a crash,
// a sanitizer report, or another exception escaping the library — is a finding.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "d2v/tensor.h"

namespace fuzz {

// The bytes as an anonymous in-memory file, reachable by path (/proc/self/fd/N) for the path-based
// loaders; no disk I/O, nothing left behind.
class MemoryFile {
public:
    MemoryFile(const uint8_t* data, size_t size) : fd_(memfd_create("fuzz", 0)) {
        if (fd_ < 0) std::abort();
        size_t done = 0;
        while (done < size) {
            const ssize_t n = write(fd_, data + done, size - done);
            if (n <= 0) std::abort();
            done += size_t(n);
        }
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~MemoryFile() { close(fd_); }
    MemoryFile(const MemoryFile&) = delete;
    MemoryFile& operator=(const MemoryFile&) = delete;
    const std::string& path() const { return path_; }

private:
    int fd_;
    std::string path_;
};

// Runs f; a d2v::Error is the expected refusal, any other exception aborts (a finding).
template <typename F>
void expect_only_d2v_errors(F&& f) {
    try {
        f();
    } catch (const d2v::Error&) {
    } catch (const std::exception& e) {
        std::fprintf(stderr, "finding: exception other than d2v::Error escaped: %s\n", e.what());
        std::abort();
    }
}

}  // namespace fuzz
