// Helpers shared by the d2v-server tests: the server as a child process on 127.0.0.1 (--port 0,
// the port read from its start-up line), the CLIs' --json output to compare with, and the checks
// for JSON replies and JSON errors.
#pragma once
#include "cli_util.h"  // d2v/Eigen before httplib.h (its <resolv.h> defines `_res`)

#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

using Json = nlohmann::json;

inline const std::string kServer = D2V_SERVER_CLI;
inline constexpr double kTol = 1e-5;

inline std::string fixture(const std::string& rel) { return fixtures_dir() + "/" + rel; }
inline std::string jfk() { return shared_data("speech/jfk.wav"); }

inline std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// A CLI's --json document (stderr dropped: warnings are not JSON).
inline Json cli_json(const std::string& program, const std::string& args) {
    FILE* p = popen((program + " " + args + " 2>/dev/null").c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (p) pclose(p);
    return Json::parse(out);
}

inline std::string quoted(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// The server as a child process: started with --port 0, killed (SIGKILL) in the destructor unless
// it already exited. stderr is drained by a thread so the server never blocks on a full pipe.
class ServerProcess {
public:
    // wait_ready = false: returns once the port is known (the model may still be loading).
    explicit ServerProcess(const std::string& args, double ready_seconds = 60, bool wait_ready = true) {
        int fds[2];
        if (pipe(fds) != 0) return;
        pid_ = fork();
        if (pid_ == 0) {
            dup2(fds[1], 2);
            const int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            close(fds[0]);
            close(fds[1]);
            const std::string cmd = "exec " + kServer + " --port 0 --host 127.0.0.1 " + args;
            execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        close(fds[1]);
        fd_ = fds[0];
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(ready_seconds);
        std::string buffer;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 200) <= 0) continue;
            char buf[4096];
            const ssize_t n = read(fd_, buf, sizeof buf);
            if (n <= 0) break;  // exited
            buffer.append(buf, size_t(n));
            std::smatch m;
            if (port == 0 && std::regex_search(buffer, m, std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)"))) port = std::stoi(m[1]);
            if (port != 0 && !wait_ready) break;
            if (buffer.find(" ready (") != std::string::npos) {
                ready = true;
                break;
            }
        }
        log_ = buffer;
        drain_ = std::thread([this] {
            char buf[4096];
            for (;;) {
                const ssize_t n = read(fd_, buf, sizeof buf);
                if (n <= 0) return;
                std::lock_guard<std::mutex> lock(mutex_);
                if (log_.size() < (1u << 20)) log_.append(buf, size_t(n));
            }
        });
    }
    ~ServerProcess() {
        if (pid_ > 0 && !exited_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (drain_.joinable()) drain_.join();
        if (fd_ >= 0) close(fd_);
    }

    httplib::Client client(int timeout_s = 60) const {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(timeout_s, 0);
        c.set_write_timeout(timeout_s, 0);
        c.set_connection_timeout(5, 0);
        return c;
    }

    // Sends `sig` and waits up to `seconds` for the exit; the exit code, or -1 (then SIGKILLed by the destructor).
    int stop(int sig, double seconds) {
        kill(pid_, sig);
        return wait_exit(seconds);
    }

    // Waits up to `seconds` for the process to exit by itself; the exit code, or -1.
    int wait_exit(double seconds) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                exited_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }

    std::string log() {
        std::lock_guard<std::mutex> lock(mutex_);
        return log_;
    }

    int port = 0;
    bool ready = false;

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    bool exited_ = false;
    std::thread drain_;
    std::mutex mutex_;
    std::string log_;
};

inline httplib::MultipartFormDataItems upload_form(const std::string& path, const std::string& format = "") {
    httplib::MultipartFormDataItems items = {{"file", slurp(path), "upload", "application/octet-stream"}};
    if (!format.empty()) items.push_back({"response_format", format, "", ""});
    return items;
}

inline Json json_of(const httplib::Result& r) {
    EXPECT_TRUE(r) << "no response: " << httplib::to_string(r.error());
    if (!r) return Json();
    EXPECT_EQ(r->status, 200) << r->body;
    return Json::parse(r->body, nullptr, false);
}

inline void expect_error(const httplib::Result& r, int status, const std::string& type) {
    ASSERT_TRUE(r) << "no response: " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, status) << r->body;
    const Json j = Json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_EQ(j.value("error_type", ""), type) << r->body;
    EXPECT_FALSE(j.value("error", "").empty()) << r->body;
}

inline void expect_close(const Json& actual, const Json& expected, const std::string& what) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    double worst = 0;
    for (size_t i = 0; i < actual.size(); ++i) worst = std::max(worst, std::fabs(actual[i].get<double>() - expected[i].get<double>()));
    EXPECT_LE(worst, kTol) << what;
}
