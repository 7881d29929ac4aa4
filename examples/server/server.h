// What d2v-server's parts share: the options, the metrics, the route table and the helpers routes
// use to read requests (JSON, multipart files) and hand their work to the queue.
// Include the d2v headers before this one: httplib.h pulls in <resolv.h>, whose `_res` macro breaks
// Eigen's headers if they come after it.
#pragma once
#include "d2v/tensor.h"  // before httplib.h, see above

#include <httplib.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "work_queue.h"

namespace server {

using Json = nlohmann::json;

struct Options {
    std::string model, host = "127.0.0.1", api_key;
    int port = 8080, threads = 1, workers = 2, max_queue = 64, max_body_mb = 32;
    double timeout_s = 60;  // per request, queue wait included
    double chunk_seconds = 10;  // audio: chunk length for CTC / frame classification; 0 = one pass
    std::vector<std::string> words;  // audio CTC: decode with these words only (--words / --lexicon)
    bool quiet = false;
    // Not in --help: the model load waits until this file exists, so a test can hold the server in
    // its loading state (GET /health 503) for exactly as long as it needs, with no timing guess.
    std::string debug_load_gate;
};

// Prometheus text exposition of what the server did.
class Metrics {
public:
    void request(const std::string& route, int status, double seconds);
    void items(const std::string& route, int64_t n);
    void rejected(const std::string& reason);
    void queue_wait(double seconds);
    // queue_depth / busy are read at scrape time.
    std::string render(size_t queue_depth, int busy_workers, int workers) const;

private:
    static constexpr double kBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static constexpr size_t kBucketCount = sizeof(kBuckets) / sizeof(kBuckets[0]);
    struct Histogram {
        uint64_t counts[kBucketCount + 1] = {};  // last: +Inf
        double sum = 0;
        uint64_t count = 0;
        void add(double x);
    };
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    std::map<std::string, Histogram> latency_;
    std::map<std::string, uint64_t> items_, rejected_;
    Histogram queue_wait_;
};

class Context;
// A route parses its request on the HTTP thread (cheap) and returns ctx.run(req, work) with the
// model work, which runs on a worker; GET routes that only read state answer directly.
using Handler = std::function<Reply(const httplib::Request&, Context&)>;
using Routes = std::map<std::string, Handler>;  // "POST /embed" -> handler

class Context {
public:
    Context(const Options& options) : options(options) {}
    const Options options;
    Metrics metrics;
    std::unique_ptr<WorkQueue> queue;

    // Queues `work` for this request; 429 when the queue is full, 503 on time-out or shutdown.
    Reply run(const httplib::Request& req, std::function<Reply()> work);
};

// ---- reading requests

// The body as JSON (415 unless Content-Type is application/json; 422 for invalid UTF-8; 400 for bad JSON).
Json json_body(const httplib::Request& req);
// The uploaded file's bytes: multipart field `field`, or the raw body when its Content-Type is one
// of `raw_types` prefixes (e.g. "audio/", "image/", "application/octet-stream"). 415 otherwise.
std::string upload(const httplib::Request& req, const std::string& field, const std::vector<std::string>& raw_types);
// A multipart text field or query parameter, else `fallback`.
std::string form_value(const httplib::Request& req, const std::string& name, const std::string& fallback);
// A query/form integer in [low, high] (400 otherwise).
int int_param(const httplib::Request& req, const std::string& name, int fallback, int low, int high);

// Bytes in a private temporary file, removed when this goes out of scope (the decoders read paths).
class TempFile {
public:
    explicit TempFile(const std::string& bytes);
    ~TempFile();
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Runs f(path) on the upload spooled to a temporary file; errors name "the uploaded file", never
// the server's own path.
template <typename F>
auto with_upload(const std::string& bytes, F&& f) {
    const TempFile file(bytes);
    try {
        return f(file.path());
    } catch (const d2v::Error& e) {
        std::string message = e.what();
        for (size_t p; (p = message.find(file.path())) != std::string::npos;) message.replace(p, file.path().size(), "the uploaded file");
        throw d2v::Error(message);
    }
}

Reply json_reply(const Json& body, int status = 200);

// Valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
bool valid_utf8(const std::string& s);
// Byte offset -> code point offset (Python's str indices) in valid UTF-8.
int64_t char_offset(const std::string& s, int64_t byte);

// One modality's routes, added for the head the model file holds (routes_*.cpp).
void add_audio_routes(const Options& options, Routes& routes, Json& info);
void add_text_routes(const std::string& model_path, Routes& routes, Json& info);
void add_vision_routes(const std::string& model_path, Routes& routes, Json& info);

}  // namespace server
