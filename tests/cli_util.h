// Running the example programs from tests: exit code + combined output, and the one assertion
// for "a readable error and exit code 1".
#pragma once
#include <sys/wait.h>

#include <cstdio>

#include "test_util.h"

struct CliResult {
    int exit_code = -1;
    std::string output;  // stdout + stderr
};

inline CliResult run_program(const std::string& program, const std::string& args) {
    const std::string cmd = program + " " + args + " 2>&1";
    CliResult r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    const int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

inline void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

inline void expect_error(const CliResult& r, const std::string& message) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << "expected '" << message << "' in:\n" << r.output;
}

inline std::string temp_path(const std::string& name) { return ::testing::TempDir() + "/d2v_" + name; }
