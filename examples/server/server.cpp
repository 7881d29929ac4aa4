// d2v-server's shared machinery: metrics, the queue hand-off, request parsing helpers.
// Eigen first: httplib.h pulls in <resolv.h>, whose `_res` macro breaks Eigen's parameter names.
#include "d2v/tensor.h"
#include "server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace server {

// ---- metrics

void Metrics::Histogram::add(double x) {
    size_t i = 0;
    while (i < kBucketCount && x > kBuckets[i]) ++i;
    ++counts[i];
    sum += x;
    ++count;
}

void Metrics::request(const std::string& route, int status, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_[{route, status}];
    latency_[route].add(seconds);
}

void Metrics::items(const std::string& route, int64_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    items_[route] += uint64_t(n);
}

void Metrics::rejected(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++rejected_[reason];
}

void Metrics::queue_wait(double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_wait_.add(seconds);
}

std::string Metrics::render(size_t queue_depth, int busy_workers, int workers) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    char line[512];
    auto histogram = [&](const char* name, const std::string& labels, const Histogram& h) {
        uint64_t cumulative = 0;
        const std::string sep = labels.empty() ? "" : ",";
        for (size_t i = 0; i <= kBucketCount; ++i) {
            cumulative += h.counts[i];
            char le[32];
            if (i < kBucketCount) std::snprintf(le, sizeof le, "%g", kBuckets[i]);
            else std::snprintf(le, sizeof le, "+Inf");
            std::snprintf(line, sizeof line, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels.c_str(), sep.c_str(), le,
                          (unsigned long long)cumulative);
            out += line;
        }
        const std::string braces = labels.empty() ? "" : "{" + labels + "}";
        std::snprintf(line, sizeof line, "%s_sum%s %.6f\n%s_count%s %llu\n", name, braces.c_str(), h.sum, name, braces.c_str(),
                      (unsigned long long)h.count);
        out += line;
    };
    out += "# HELP d2v_requests_total HTTP requests by route and status.\n# TYPE d2v_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
        std::snprintf(line, sizeof line, "d2v_requests_total{route=\"%s\",status=\"%d\"} %llu\n", key.first.c_str(), key.second,
                      (unsigned long long)n);
        out += line;
    }
    out += "# HELP d2v_request_duration_seconds Time from request to response.\n# TYPE d2v_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) histogram("d2v_request_duration_seconds", "route=\"" + route + "\"", h);
    out += "# HELP d2v_queue_wait_seconds Time a request waited for a worker.\n# TYPE d2v_queue_wait_seconds histogram\n";
    histogram("d2v_queue_wait_seconds", "", queue_wait_);
    out += "# HELP d2v_items_processed_total Inputs (texts, audio files, images) run through the model.\n"
           "# TYPE d2v_items_processed_total counter\n";
    for (const auto& [route, n] : items_) {
        std::snprintf(line, sizeof line, "d2v_items_processed_total{route=\"%s\"} %llu\n", route.c_str(), (unsigned long long)n);
        out += line;
    }
    out += "# HELP d2v_requests_rejected_total Requests not run: queue full, client gone, time-out, shutting down.\n"
           "# TYPE d2v_requests_rejected_total counter\n";
    for (const auto& [reason, n] : rejected_) {
        std::snprintf(line, sizeof line, "d2v_requests_rejected_total{reason=\"%s\"} %llu\n", reason.c_str(), (unsigned long long)n);
        out += line;
    }
    std::snprintf(line, sizeof line,
                  "# HELP d2v_queue_depth Requests waiting for a worker.\n# TYPE d2v_queue_depth gauge\nd2v_queue_depth %zu\n"
                  "# HELP d2v_workers_busy Workers running a request.\n# TYPE d2v_workers_busy gauge\nd2v_workers_busy %d\n"
                  "# HELP d2v_workers Workers sharing the model.\n# TYPE d2v_workers gauge\nd2v_workers %d\n",
                  queue_depth, busy_workers, workers);
    out += line;
    return out;
}

// ---- queue hand-off

bool client_gone(int fd) {
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    char byte;
    // Readable: either the next pipelined request (still there) or end of stream (gone).
    return (p.revents & POLLIN) && recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

namespace {

int port_of(const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
    if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
    return -1;
}

// httplib 0.11 does not hand the connection to handlers; the connection is the one socket of this
// process whose (peer port, local port) pair is the request's. It stays open while the handler runs.
int find_client_fd(const httplib::Request& req) {
    if (req.remote_port <= 0) return -1;
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return -1;
    int found = -1;
    int candidates = 0;
    while (dirent* e = readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || fd < 0 || fd == dirfd(dir)) continue;
        sockaddr_storage peer{}, local{};
        socklen_t n = sizeof peer, m = sizeof local;
        if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &n) != 0) continue;
        if (port_of(peer) != req.remote_port) continue;
        if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&local), &m) != 0) continue;
        if (req.local_port > 0 && port_of(local) != req.local_port) continue;
        found = int(fd);
        ++candidates;
    }
    closedir(dir);
    return candidates == 1 ? found : -1;  // ambiguous (should not happen): do not guess
}

}  // namespace

Reply Context::run(const httplib::Request& req, std::function<Reply()> work) {
    auto job = std::make_shared<Job>();
    job->work = std::move(work);
    job->client_fd = find_client_fd(req);
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(options.timeout_s));
    if (!queue->submit(job)) {
        metrics.rejected("queue_full");
        Reply r = error_reply(429, "overloaded", "server is busy: " + std::to_string(options.max_queue) +
                                                     " requests are already queued; retry later");
        r.headers.push_back({"Retry-After", "1"});
        return r;
    }
    if (WorkQueue::wait(*job, deadline)) {
        // W3C Server-Timing: lets a client split its latency into queue, run, and the rest (HTTP).
        char timing[96];
        std::snprintf(timing, sizeof timing, "queue;dur=%.3f, run;dur=%.3f", job->wait_seconds * 1e3, job->run_seconds * 1e3);
        job->reply.headers.push_back({"Server-Timing", timing});
        return job->reply;
    }
    if (job->state == Job::State::ClientGone) return error_reply(499, "client_gone", "client closed the connection");  // nobody reads it
    metrics.rejected("timeout");
    char message[96];
    std::snprintf(message, sizeof message, "request did not finish within %g s", options.timeout_s);
    Reply r = error_reply(503, "timeout", message);
    r.headers.push_back({"Retry-After", "1"});
    return r;
}

Reply WorkQueue::reply_for(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const HttpError& err) {
        return error_reply(err.status, err.type, err.what());
    } catch (const d2v::Error& err) {
        return error_reply(422, "unprocessable_input", err.what());
    } catch (const std::bad_alloc&) {
        return error_reply(500, "out_of_memory", "out of memory");
    } catch (const std::exception& err) {
        return error_reply(500, "internal", err.what());
    } catch (...) {
        return error_reply(500, "internal", "unknown error");
    }
}

Reply error_reply(int status, const std::string& type, const std::string& message) {
    // Messages can quote input bytes; replace invalid UTF-8 so the JSON dump cannot throw.
    Json body{{"error", valid_utf8(message) ? message : std::string("(message not valid UTF-8)")}, {"error_type", type}};
    return json_reply(body, status);
}

Reply json_reply(const Json& body, int status) {
    Reply r;
    r.status = status;
    r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    return r;
}

// ---- reading requests

namespace {
bool has_type(const httplib::Request& req, const std::string& prefix) {
    const std::string type = req.get_header_value("Content-Type");
    return type.compare(0, prefix.size(), prefix) == 0;
}
}  // namespace

Json json_body(const httplib::Request& req) {
    if (!has_type(req, "application/json"))
        throw HttpError(415, "unsupported_media_type", "this route takes Content-Type: application/json");
    if (!valid_utf8(req.body)) throw HttpError(422, "invalid_utf8", "request body is not valid UTF-8");
    try {
        return Json::parse(req.body);
    } catch (const Json::exception& e) {
        throw HttpError(400, "bad_request", std::string("request body is not valid JSON: ") + e.what());
    }
}

std::string upload(const httplib::Request& req, const std::string& field, const std::vector<std::string>& raw_types) {
    if (req.is_multipart_form_data()) {
        if (!req.has_file(field)) throw HttpError(400, "bad_request", "multipart request has no '" + field + "' field");
        std::string bytes = req.get_file_value(field).content;
        if (bytes.empty()) throw HttpError(400, "bad_request", "'" + field + "' is empty");
        return bytes;
    }
    for (const auto& t : raw_types)
        if (has_type(req, t)) {
            if (req.body.empty()) throw HttpError(400, "bad_request", "request body is empty");
            return req.body;
        }
    std::string accepted = "multipart/form-data with a '" + field + "' field";
    for (const auto& t : raw_types) accepted += ", or a raw " + t + "* body";
    throw HttpError(415, "unsupported_media_type", "this route takes " + accepted);
}

std::string form_value(const httplib::Request& req, const std::string& name, const std::string& fallback) {
    if (req.has_file(name)) return req.get_file_value(name).content;  // multipart text fields land in files
    if (req.has_param(name)) return req.get_param_value(name);
    return fallback;
}

int int_param(const httplib::Request& req, const std::string& name, int fallback, int low, int high) {
    const std::string v = form_value(req, name, "");
    if (v.empty()) return fallback;
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (*end != '\0' || n < low || n > high)
        throw HttpError(400, "bad_request", "'" + name + "' must be an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
    return int(n);
}

TempFile::TempFile(const std::string& bytes) {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern = std::string(dir && *dir ? dir : "/tmp") + "/d2v-server-XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) throw std::runtime_error("cannot create a temporary file in " + pattern);
    path_ = pattern;
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) {
            close(fd);
            unlink(path_.c_str());
            throw std::runtime_error("cannot write a temporary file (disk full?)");
        }
        done += size_t(n);
    }
    close(fd);
}

TempFile::~TempFile() { unlink(path_.c_str()); }

bool valid_utf8(const std::string& s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        const unsigned c = p[i];
        size_t len;
        unsigned min;
        if (c < 0x80) { ++i; continue; }
        if ((c & 0xE0) == 0xC0) len = 2, min = 0x80;
        else if ((c & 0xF0) == 0xE0) len = 3, min = 0x800;
        else if ((c & 0xF8) == 0xF0) len = 4, min = 0x10000;
        else return false;
        if (i + len > n) return false;
        unsigned cp = c & (0x7F >> len);
        for (size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

int64_t char_offset(const std::string& s, int64_t byte) {
    int64_t chars = 0;
    for (int64_t i = 0; i < byte && i < int64_t(s.size()); ++i)
        if ((static_cast<unsigned char>(s[size_t(i)]) & 0xC0) != 0x80) ++chars;
    return chars;
}

}  // namespace server
