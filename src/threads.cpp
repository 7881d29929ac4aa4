#include "d2v/kernels/threads.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "d2v/tensor.h"

#ifdef __linux__
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#endif

namespace d2v {

void set_num_threads(int n) {
    if (n < 1) throw Error("thread count must be at least 1");
    // Eigen is left unset: it then asks omp_get_max_threads() of the calling thread, so it follows
    // this count, each server worker's own and the reduced count of a PassThreads scope. (A count set
    // in Eigen is one global, and its parallel GEMM outside our parallel regions would start that many
    // threads, spin-synchronised, beside a busy process: 7x slower.)
    omp_set_num_threads(n);
}

namespace threads_detail {

int threads_for_pass(int requested, int cpus, int others_running) {
    if (requested <= 1 || others_running <= 0 || cpus <= 0) return std::max(1, requested);
    return std::clamp(cpus - others_running, 1, requested);
}

int parse_loadavg_running(std::string_view text) {
    // "0.52 0.41 0.30 3/250 12345": the fourth field is runnable/total scheduling entities.
    size_t at = 0;
    for (int field = 0; field < 3; ++field) {
        at = text.find(' ', at);
        if (at == std::string_view::npos) return -1;
        ++at;
    }
    long value = 0;
    size_t digits = 0;
    for (; at < text.size() && text[at] >= '0' && text[at] <= '9' && digits < 9; ++at, ++digits)
        value = value * 10 + (text[at] - '0');
    if (digits == 0 || at >= text.size() || text[at] != '/') return -1;
    return int(value);
}

bool task_is_running(std::string_view text) {
    const size_t close = text.rfind(')');  // the name may hold ')' too: the state follows the last one
    return close != std::string_view::npos && close + 2 < text.size() && text[close + 1] == ' ' && text[close + 2] == 'R';
}

#ifdef __linux__
namespace {
// Reads a small /proc file whole (they are generated on read: no size to trust beforehand).
bool read_small(const char* path, char* buffer, size_t capacity, std::string_view& text) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t used = 0;
    while (used + 1 < capacity) {
        const ssize_t n = ::read(fd, buffer + used, capacity - 1 - used);
        if (n <= 0) break;
        used += size_t(n);
    }
    ::close(fd);
    text = std::string_view(buffer, used);
    return used > 0;
}

int cpus_we_may_use() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
}

}  // namespace

// Our own threads that are running or runnable now: the calling one, OpenMP workers still spinning
// after the previous pass, other model workers of a server. /proc/loadavg counts them too.
int own_running_threads() {
    DIR* dir = ::opendir("/proc/self/task");
    if (dir == nullptr) return -1;
    int running = 0;
    char path[64], buffer[512];
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        std::snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", entry->d_name);
        std::string_view text;
        if (read_small(path, buffer, sizeof buffer, text) && task_is_running(text)) ++running;
    }
    ::closedir(dir);
    return std::max(running, 1);  // the caller runs, whatever a racing read said
}

bool adaptive_threads_active() {
    static const bool enabled = [] {
        const char* value = std::getenv("D2V_ADAPTIVE_THREADS");
        if (value != nullptr && std::strcmp(value, "0") == 0) return false;
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        // and counters that count at all (a sandbox may serve a fixed /proc/loadavg)
        return online > 0 && cpus_we_may_use() == online && others_running_now() >= 0;
    }();
    return enabled;
}

int others_running_now() {
    char buffer[128];
    std::string_view text;
    if (!read_small("/proc/loadavg", buffer, sizeof buffer, text)) return -1;
    const int all_running = parse_loadavg_running(text);
    const int own = own_running_threads();
    if (all_running < 1 || own < 0) return -1;  // the reading thread itself runs: 0 is no real count
    return std::max(0, all_running - own);
}

int threads_for_pass_now(int requested) {
    if (requested <= 1 || !adaptive_threads_active()) return requested;
    // Whoever handed us the work (a server's I/O thread, a parent writing to our pipe) is often still
    // runnable for some microseconds before it blocks: count only what is still running a little
    // later. A busy process stays; the look costs nothing on an idle machine and <0.5 ms otherwise.
    int others = others_running_now();
    for (const int pause_us : {100, 300}) {
        if (others <= 0) break;
        ::usleep(pause_us);
        others = std::min(others, others_running_now());
    }
    return others < 0 ? requested : threads_for_pass(requested, cpus_we_may_use(), others);
}
#else
bool adaptive_threads_active() { return false; }
int others_running_now() { return -1; }
int own_running_threads() { return -1; }
int threads_for_pass_now(int requested) { return requested; }
#endif

}  // namespace threads_detail

namespace {
thread_local int pass_depth = 0;
}

PassThreads::PassThreads() {
    if (pass_depth++ > 0) return;
    const int requested = omp_get_max_threads();
    const int chosen = threads_detail::threads_for_pass_now(requested);
    if (chosen != requested) {
        omp_set_num_threads(chosen);
        restore_ = requested;
    }
}

PassThreads::~PassThreads() {
    --pass_depth;
    if (restore_ > 0) omp_set_num_threads(restore_);
}

}  // namespace d2v
