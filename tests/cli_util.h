// Running the example programs from tests: exit code + combined output, and the one assertion
// for "a readable error and exit code 1". run_program_bounded() adds the limits a hostile-input
// regression test needs so that a regression fails the test instead of taking the machine down.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "test_util.h"

struct CliResult {
    int exit_code = -1;
    std::string output;  // stdout + stderr
    long peak_rss_kb = 0;  // only filled by run_program_bounded
    bool timed_out = false;
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

#if defined(__SANITIZE_ADDRESS__)
#define D2V_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define D2V_TEST_UNDER_ASAN 1
#endif
#endif

// Runs `program args` with an address-space limit (RLIMIT_AS = memory_mb; not under ASan, whose
// shadow memory needs terabytes of address space) and a wall-clock limit (killed at `seconds`).
// Reports peak RSS (from wait4, which covers the program itself: the shell execs it) so tests can
// also bound memory under ASan. Output is capped at 1 MB so a runaway error message cannot flood.
inline CliResult run_program_bounded(const std::string& program, const std::string& args, long memory_mb = 2048,
                                     double seconds = 60) {
    CliResult r;
    int fds[2];
    if (pipe(fds) != 0) return r;
    const std::string cmd = "exec " + program + " " + args + " 2>&1";
    const pid_t pid = fork();
    if (pid < 0) return r;
    if (pid == 0) {
        setpgid(0, 0);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
#ifndef D2V_TEST_UNDER_ASAN
        const rlim_t bytes = rlim_t(memory_mb) * 1024 * 1024;
        struct rlimit lim = {bytes, bytes};
        setrlimit(RLIMIT_AS, &lim);
#else
        (void)memory_mb;  // ASan: the limit is checked against peak RSS by the caller instead
#endif
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    close(fds[1]);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            r.timed_out = true;
            kill(-pid, SIGKILL);
            break;
        }
        pollfd pfd{fds[0], POLLIN, 0};
        if (poll(&pfd, 1, int(std::min<long long>(left.count(), 1000))) <= 0) continue;
        const ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        if (r.output.size() < (1u << 20)) r.output.append(buf, size_t(n));
    }
    close(fds[0]);
    int status = 0;
    struct rusage usage{};
    wait4(pid, &status, 0, &usage);
    r.peak_rss_kb = usage.ru_maxrss;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

// A hostile input must be refused cleanly and cheaply: exit 1, the message, within the limits.
inline void expect_bounded_error(const CliResult& r, const std::string& message, long max_rss_mb = 2048) {
    EXPECT_FALSE(r.timed_out) << "timed out; output so far:\n" << r.output.substr(0, 4000);
    EXPECT_EQ(r.exit_code, 1) << r.output.substr(0, 4000);
    EXPECT_LE(r.peak_rss_kb / 1024, max_rss_mb) << "peak RSS " << r.peak_rss_kb / 1024 << " MB";
    EXPECT_NE(r.output.find(message), std::string::npos) << "expected '" << message << "' in:\n" << r.output.substr(0, 4000);
}

inline void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

inline void expect_error(const CliResult& r, const std::string& message) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << "expected '" << message << "' in:\n" << r.output;
}

inline std::string temp_path(const std::string& name) { return ::testing::TempDir() + "/d2v_" + name; }
