// The server's concurrency: a bounded queue of jobs in front of a fixed set of workers that share
// the one loaded model. HTTP threads only parse and wait; every model run (and every audio/image
// decode) happens on a worker, so the CPU work in flight is bounded by --workers, and the memory
// waiting for it by --max-queue x --max-body-mb.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace server {

// What a route answers: a status, a body and its type, extra headers.
struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
};

// An error with the HTTP status and the machine-readable type the client gets ({"error", "error_type"}).
struct HttpError : std::runtime_error {
    HttpError(int status, std::string type, const std::string& message)
        : std::runtime_error(message), status(status), type(std::move(type)) {}
    int status;
    std::string type;
};

struct Job {
    enum class State { Queued, Running, Done, Cancelled, ClientGone };
    std::function<Reply()> work;  // owns everything it reads: the HTTP thread may have given up on it
    int client_fd = -1;           // the request's connection (-1: unknown), checked before running
    std::mutex mutex;
    std::condition_variable done;
    State state = State::Queued;
    Reply reply;
    double wait_seconds = 0, run_seconds = 0;  // in the queue, on the worker (decoding included)
};

// True when the peer has closed (or reset) the connection: nobody will read the answer.
bool client_gone(int fd);

class WorkQueue {
public:
    struct Hooks {
        std::function<void()> on_dropped;       // a queued job whose client went away
        std::function<void(double)> on_waited;  // seconds a job waited in the queue before running
        std::function<void()> on_start;         // first thing on each worker thread
    };

    WorkQueue(int workers, size_t max_queue, Hooks hooks) : max_queue_(max_queue), hooks_(std::move(hooks)) {
        for (int i = 0; i < workers; ++i)
            threads_.emplace_back([this] {
                if (hooks_.on_start) hooks_.on_start();
                loop();
            });
    }
    ~WorkQueue() { close_and_join(); }

    // False when the queue is full or closed (the caller answers 429 / 503).
    bool submit(std::shared_ptr<Job> job) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (closed_ || queue_.size() >= max_queue_) return false;
            queue_.push_back({std::move(job), std::chrono::steady_clock::now()});
        }
        ready_.notify_one();
        return true;
    }

    // Waits for the job until `deadline`; on time-out a job still queued is cancelled (never runs)
    // and one already running finishes unobserved. True when the job's reply is there.
    static bool wait(Job& job, std::chrono::steady_clock::time_point deadline) {
        std::unique_lock<std::mutex> lock(job.mutex);
        job.done.wait_until(lock, deadline, [&] { return job.state == Job::State::Done || job.state == Job::State::ClientGone; });
        if (job.state == Job::State::Done) return true;
        if (job.state == Job::State::Queued) job.state = Job::State::Cancelled;
        job.client_fd = -1;  // the connection may be closed and its number reused once we return
        return false;
    }

    size_t depth() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return queue_.size();
    }
    int busy() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return busy_;
    }

    // Stops taking jobs, runs what is queued, joins the workers.
    void close_and_join() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closed_ = true;
        }
        ready_.notify_all();
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

private:
    struct Entry {
        std::shared_ptr<Job> job;
        std::chrono::steady_clock::time_point queued_at;
    };

    void loop() {
        for (;;) {
            Entry entry;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                ready_.wait(lock, [&] { return closed_ || !queue_.empty(); });
                if (queue_.empty()) return;  // closed and drained
                entry = std::move(queue_.front());
                queue_.pop_front();
            }
            run(*entry.job, entry.queued_at);
        }
    }

    void run(Job& job, std::chrono::steady_clock::time_point queued_at) {
        {
            // Under the job's lock the waiting HTTP thread cannot give up and let its socket close,
            // so the descriptor checked here is still the request's own.
            std::unique_lock<std::mutex> lock(job.mutex);
            if (job.state == Job::State::Cancelled) return;
            if (job.client_fd >= 0 && client_gone(job.client_fd)) {
                job.state = Job::State::ClientGone;
                lock.unlock();
                job.done.notify_all();  // its HTTP thread stops waiting
                if (hooks_.on_dropped) hooks_.on_dropped();
                return;
            }
            job.state = Job::State::Running;
        }
        set_busy(+1);  // counts runs only, not the cancelled entries skipped above
        const auto started = std::chrono::steady_clock::now();
        const double waited = std::chrono::duration<double>(started - queued_at).count();
        if (hooks_.on_waited) hooks_.on_waited(waited);
        Reply reply;
        try {
            reply = job.work();
        } catch (...) {
            reply = reply_for(std::current_exception());
        }
        {
            std::lock_guard<std::mutex> lock(job.mutex);
            job.wait_seconds = waited;
            job.run_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            job.reply = std::move(reply);
            job.state = Job::State::Done;
        }
        job.done.notify_all();
        set_busy(-1);
    }

    void set_busy(int delta) {
        std::lock_guard<std::mutex> lock(mutex_);
        busy_ += delta;
    }

public:
    // The JSON error reply for an exception thrown by a route (HttpError keeps its status; a
    // d2v::Error is input the model cannot take: 422; anything else is ours: 500).
    static Reply reply_for(std::exception_ptr e);

private:
    size_t max_queue_;
    Hooks hooks_;
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Entry> queue_;
    std::vector<std::thread> threads_;
    int busy_ = 0;
    bool closed_ = false;
};

// {"error": message, "error_type": type}
Reply error_reply(int status, const std::string& type, const std::string& message);

}  // namespace server
