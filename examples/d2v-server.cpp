// d2v-server: any data2vec model file behind HTTP, with a bounded queue in front of N workers that
// share the one loaded model (its run() is thread-safe), so requests run concurrently instead of
// one at a time behind a global lock. Routes follow the head the file holds (server/routes_*.cpp).
#include <signal.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "cli_common.h"
#include "d2v/model_file.h"
#include "d2v/version.h"
#include "server/server.h"

namespace {

using server::Context;
using server::Json;
using server::Reply;

const char* kUsage = R"(usage: d2v-server -m MODEL.gguf [options]

Serves a data2vec model file over HTTP; the routes follow the head the file holds:
  CTC                     POST /v1/audio/transcriptions  (multipart file; response_format json|text|verbose_json)
  audio classification    POST /predict                  (multipart file -> [{"label","score"}])
  audio frame classif.    POST /predict                  (multipart file -> {"segments": [...]})
  x-vector                POST /embed                    (multipart file -> [[float]])
  text base model         POST /embed, POST /v1/embeddings
  text classification     POST /predict
  token classification    POST /predict
  masked LM               POST /fill-mask
  question answering      POST /qa
  multiple choice         POST /choose
  causal LM               POST /generate
  every text model        POST /tokenize
  image classification    POST /predict                  (multipart file)
  segmentation            POST /segment                  (PNG of class ids; ?format=json for class shares)
  vision base model       POST /embed
  always                  GET /health, GET /info, GET /metrics (Prometheus)

options:
  -m, --model FILE        model file (from weights_tools/convert.py)
      --host HOST         address to listen on (default: 127.0.0.1)
      --port N            port (default: 8080; 0 = any free port, printed on stderr)
  -t, --threads N         threads per model run (default: %d / workers)
      --workers N         model runs at once (default: 2)
      --max-queue N       requests waiting for a worker before 429 (default: 64)
      --max-body-mb N     largest request body in MiB, else 413 (default: 32)
      --timeout S         seconds a request may wait and run, else 503 (default: 60; fractions allowed)
      --chunk S           audio: CTC / frame classification in chunks of S seconds, as d2v-audio
                          (default: 10; 0 = the whole file in one pass, up to a 1 GB memory budget)
      --words "W1 W2 ..." audio CTC: transcribe with these words only (as d2v-audio --words)
      --lexicon FILE      the same, words read from FILE (separated by white space)
      --api-key KEY       require "Authorization: Bearer KEY" (not for GET /health)
      --api-key-file F    the same, the key read from a file (keeps it out of the process list)
      --quiet             no per-request log lines on stderr
  -h, --help              show this help
      --version           print the version
)";

server::Options parse(int argc, char** argv) {
    server::Options o;
    bool threads_given = false;
    std::string key_file;
    cli::Args args(argc, argv);
    while (!args.done()) {
        const std::string a = args.take();
        if (a == "-h" || a == "--help") {
            std::printf(kUsage, cli::default_threads());
            std::exit(0);
        } else if (a == "-m" || a == "--model") o.model = args.value(a);
        else if (a == "--host") o.host = args.value(a);
        else if (a == "--port") {
            o.port = args.int_value(a, 0);
            if (o.port > 65535) throw cli::UsageError("--port needs a number from 0 to 65535");
        } else if (a == "-t" || a == "--threads") o.threads = args.int_value(a, 1), threads_given = true;
        else if (a == "--workers") o.workers = args.int_value(a, 1);
        else if (a == "--max-queue") o.max_queue = args.int_value(a, 1);
        else if (a == "--max-body-mb") o.max_body_mb = args.int_value(a, 1);
        else if (a == "--timeout") o.timeout_s = args.float_value(a, 0.0f, 86400.0f, true);
        else if (a == "--chunk") {
            const std::string v = args.value(a);
            char* end = nullptr;
            o.chunk_seconds = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(o.chunk_seconds >= 0 && o.chunk_seconds <= 3600))
                throw cli::UsageError("--chunk needs seconds between 0 and 3600, got '" + v + "'");
        } else if (a == "--words" || a == "--lexicon") {
            if (!o.words.empty()) throw cli::UsageError("give one word list (--words or --lexicon)");
            o.words = cli::word_list_option(a, args.value(a));
        } else if (a == "--api-key") o.api_key = args.value(a);
        else if (a == "--api-key-file") key_file = args.value(a);
        else if (a == "--quiet") o.quiet = true;
        else if (a == "--debug-load-gate") o.debug_load_gate = args.value(a);  // tests only; see server::Options
        else throw cli::UsageError("unknown argument '" + a + "'");
    }
    if (o.model.empty()) throw cli::UsageError("no model given (-m MODEL.gguf)");
    if (o.workers > 256) throw cli::UsageError("--workers: at most 256");
    if (o.max_queue > 65536) throw cli::UsageError("--max-queue: at most 65536");
    if (o.max_body_mb > 4096) throw cli::UsageError("--max-body-mb: at most 4096");
    if (!key_file.empty()) {
        if (!o.api_key.empty()) throw cli::UsageError("give --api-key or --api-key-file, not both");
        std::ifstream in(key_file);
        if (!in) throw d2v::Error("cannot read --api-key-file " + key_file);
        std::getline(in, o.api_key);
        while (!o.api_key.empty() && std::isspace(static_cast<unsigned char>(o.api_key.back()))) o.api_key.pop_back();
        if (o.api_key.empty()) throw d2v::Error("--api-key-file " + key_file + " holds no key on its first line");
    }
    if (!threads_given) o.threads = std::max(1, cli::default_threads() / o.workers);
    return o;
}

// Compares without an early exit, so response time says nothing about how much of a guess matched.
bool same_key(const std::string& given, const std::string& key) {
    unsigned char diff = given.size() == key.size() ? 0 : 1;
    for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i % key.size()]);
    return diff == 0;
}

void apply(const Reply& r, httplib::Response& res) {
    res.status = r.status;
    for (const auto& [k, v] : r.headers) res.set_header(k, v);
    res.set_content(r.body, r.content_type.c_str());
}

const char* error_type(int status) {
    switch (status) {
        case 400: return "bad_request";
        case 401: return "unauthorized";
        case 404: return "not_found";
        case 405: return "method_not_allowed";
        case 413: return "payload_too_large";
        case 415: return "unsupported_media_type";
        case 429: return "overloaded";
        case 503: return "unavailable";
        default: return status >= 500 ? "internal" : "error";
    }
}

sigset_t stop_signal_set() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
}

thread_local std::chrono::steady_clock::time_point t_request_start;
thread_local bool t_request_started = false;

int serve(const server::Options& o) {
    d2v::set_num_threads(o.threads);
    const sigset_t stop_signals = stop_signal_set();

    Context ctx(o);
    server::Routes routes;
    Json info;
    std::atomic<int> state{0};  // 0 loading, 1 ready, 2 shutting down
    const int http_threads = std::min(o.workers + o.max_queue + 16, 1024);

    httplib::Server svr;
    svr.new_task_queue = [http_threads] { return new httplib::ThreadPool(size_t(http_threads)); };
    svr.set_payload_max_length(size_t(o.max_body_mb) << 20);
    // httplib's 5 s default drops a client whose upload stalls that long (seen with 16 uploads on a
    // loaded machine); slow clients only tie up one HTTP thread each, and those are bounded.
    // Headers and body go out in separate writes: with Nagle on, the body waits for the client's
    // delayed ACK (40 ms on Linux) - measured as a fixed 44 ms on every request before this.
    svr.set_tcp_nodelay(true);
    svr.set_read_timeout(30, 0);
    svr.set_write_timeout(30, 0);
    svr.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
        t_request_start = std::chrono::steady_clock::now();
        t_request_started = true;
        const bool health = req.method == "GET" && req.path == "/health";
        if (!o.api_key.empty() && !health) {
            const std::string auth = req.get_header_value("Authorization");
            if (auth.compare(0, 7, "Bearer ") != 0 || !same_key(auth.substr(7), o.api_key)) {
                apply(server::error_reply(401, "unauthorized", "missing or wrong API key (Authorization: Bearer KEY)"), res);
                res.set_header("WWW-Authenticate", "Bearer");
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        if (state.load() != 1 && !health) {
            apply(server::error_reply(503, "unavailable", state.load() == 0 ? "model is loading" : "server is shutting down"), res);
            res.set_header("Retry-After", "1");
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    auto dispatch = [&](const httplib::Request& req, httplib::Response& res) {
        if (req.method == "GET" && req.path == "/health") {
            const int s = state.load();
            apply(server::json_reply({{"status", s == 1 ? "ok" : s == 0 ? "loading" : "shutting_down"}}, s == 1 ? 200 : 503), res);
            return;
        }
        if (req.method == "GET" && req.path == "/info") return apply(server::json_reply(info), res);
        if (req.method == "GET" && req.path == "/metrics") {
            res.set_content(ctx.metrics.render(ctx.queue->depth(), ctx.queue->busy(), o.workers), "text/plain; version=0.0.4");
            return;
        }
        auto it = routes.find(req.method + " " + req.path);
        if (it == routes.end()) {
            const bool other_method = routes.count((req.method == "GET" ? "POST " : "GET ") + req.path) > 0;
            return apply(server::error_reply(other_method ? 405 : 404, other_method ? "method_not_allowed" : "not_found",
                                             req.method + " " + req.path + " is not served for " + info.value("model_class", "") +
                                                 " (see GET /info for its routes)"),
                         res);
        }
        try {
            apply(it->second(req, ctx), res);
        } catch (...) {
            apply(server::WorkQueue::reply_for(std::current_exception()), res);
        }
    };
    svr.Get(".*", dispatch);
    svr.Post(".*", dispatch);
    svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return;  // ours already
        const std::string message = res.status == 413 ? "request body is larger than --max-body-mb" : "HTTP error " + std::to_string(res.status);
        apply(server::error_reply(res.status, error_type(res.status), message), res);
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
        apply(server::WorkQueue::reply_for(e), res);
    });
    svr.set_logger([&](const httplib::Request& req, const httplib::Response& res) {
        const double seconds =
            t_request_started ? std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request_start).count() : 0.0;
        t_request_started = false;
        const std::string key = req.method + " " + req.path;
        // The route table is complete (and no longer written) once the state says ready.
        const bool known = key == "GET /health" || key == "GET /info" || key == "GET /metrics" || (state.load() != 0 && routes.count(key));
        ctx.metrics.request(known ? req.path : "other", res.status, seconds);
        if (!o.quiet)
            std::fprintf(stderr, "%s %s %d %.1f ms\n", req.method.c_str(), known ? req.path.c_str() : "(other)", res.status, seconds * 1e3);
    });

    const int port = o.port == 0 ? svr.bind_to_any_port(o.host) : (svr.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port < 0) throw d2v::Error("cannot listen on " + o.host + ":" + std::to_string(o.port) + " (address in use, or not ours?)");
    std::fprintf(stderr, "d2v-server: listening on http://%s:%d\n", o.host.c_str(), port);
    std::thread http([&] { svr.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs; wait for it so a failed load can stop it.
    for (int i = 0; i < 5000 && !svr.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));

    // Load while /health answers 503; a bad model file stops the server with exit 1.
    try {
        while (!o.debug_load_gate.empty() && !std::ifstream(o.debug_load_gate))
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        const std::string architecture = d2v::ModelFile(o.model).architecture();
        if (architecture == "data2vec-audio") server::add_audio_routes(o, routes, info);
        else if (!o.words.empty()) throw d2v::Error("--words/--lexicon needs an audio CTC model; this file holds " + architecture);
        else if (architecture == "data2vec-text") server::add_text_routes(o.model, routes, info);
        else if (architecture == "data2vec-vision") server::add_vision_routes(o.model, routes, info);
        else throw d2v::Error(o.model + " holds a '" + architecture + "' model, not data2vec-audio, -text or -vision");
        const d2v::ModelFile file(o.model);
        info["model_class"] = file.model_class();
        info["architecture"] = architecture;
        info["config"] = file.config();
        info["version"] = D2V_VERSION_STRING;
        info["routes"] = Json::array();
        for (const auto& [key, handler] : routes) info["routes"].push_back(key);
        info["limits"] = {{"workers", o.workers}, {"threads_per_worker", o.threads}, {"max_queue", o.max_queue},
                          {"max_body_mb", o.max_body_mb}, {"timeout_s", o.timeout_s}, {"chunk_s", o.chunk_seconds}};
    } catch (...) {
        svr.stop();
        http.join();
        throw;
    }
    ctx.queue = std::make_unique<server::WorkQueue>(
        o.workers, size_t(o.max_queue),
        server::WorkQueue::Hooks{[&] { ctx.metrics.rejected("client_gone"); }, [&](double s) { ctx.metrics.queue_wait(s); },
                                 // OpenMP's thread count is per thread: a new thread starts from the default (all cores)
                                 [threads = o.threads] { d2v::set_num_threads(threads); }});
    state.store(1);
    std::fprintf(stderr, "d2v-server: %s ready (%d workers x %d threads)\n", info["model_class"].get<std::string>().c_str(), o.workers,
                 o.threads);

    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    std::fprintf(stderr, "d2v-server: %s: finishing accepted requests, then exiting\n", strsignal(signal_number));
    state.store(2);
    // Everything accepted is bounded by --timeout; past that something is stuck: exit anyway.
    std::thread([limit = int(o.timeout_s) + 10] {
        std::this_thread::sleep_for(std::chrono::seconds(limit));
        std::fprintf(stderr, "d2v-server: shutdown did not finish within %d s; exiting\n", limit);
        std::_Exit(1);
    }).detach();
    svr.stop();     // no new connections; connections in progress finish their current request
    http.join();    // returns once every HTTP thread is done
    ctx.queue->close_and_join();
    std::fprintf(stderr, "d2v-server: stopped\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // Blocked before any thread exists, so every thread inherits it: SIGTERM/SIGINT are taken only
    // by serve()'s sigwait (one that arrives while the model loads is answered once it is loaded).
    const sigset_t stop_signals = stop_signal_set();
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);  // a client that hangs up mid-response must not kill the server
    return cli::guarded_main("d2v-server", [&] { return serve(parse(argc, argv)); });
}
