// Thread counts: the one the caller sets, and the one each pass really uses.
#pragma once
#include <string_view>

namespace d2v {

// Thread count for every kernel (OpenMP, used by both oneDNN and Eigen here) run from the calling
// thread and from threads it starts afterwards (OpenMP's nthreads-var is per thread: a server worker
// sets its own). Takes effect on the next call, also for products already run at another count.
void set_num_threads(int n);

// Scope of one pass (a pipeline's run, one generate call): it uses the count set above, less the CPUs
// that other processes' runnable threads hold at its start. Why: a pass opens ~130 OpenMP regions,
// and at each barrier a thread that shares its core with a busy process keeps its partner waiting,
// so 2 threads beside one busy process on 2 cores ran slower than 1 thread. Reads /proc/loadavg (the
// runnable count) and our own threads' states, ~10 us. Inactive when the process may run on fewer
// CPUs than are online (a cpuset: the count covers the other CPUs too), where /proc/loadavg counts
// nothing (a sandbox), outside Linux, or with D2V_ADAPTIVE_THREADS=0 in the environment. Nested
// scopes keep the outermost one's count.
class PassThreads {
public:
    PassThreads();
    ~PassThreads();
    PassThreads(const PassThreads&) = delete;
    PassThreads& operator=(const PassThreads&) = delete;

private:
    int restore_ = 0;  // the caller's count, put back at the end; 0 when this scope changed nothing
};

namespace threads_detail {
// min(requested, the CPUs nobody else is running on), at least 1; `requested` when nobody else runs.
int threads_for_pass(int requested, int cpus, int others_running);
// Runnable threads system-wide from /proc/loadavg's text ("0.5 0.4 0.3 3/250 1234" -> 3); -1 when
// malformed.
int parse_loadavg_running(std::string_view loadavg);
// Whether a /proc/<pid>/task/<tid>/stat line says the thread is running ('R'); the command name in
// parentheses may itself hold spaces and ')'.
bool task_is_running(std::string_view task_stat);
// Whether PassThreads adapts at all in this process (Linux, no cpuset, no D2V_ADAPTIVE_THREADS=0).
bool adaptive_threads_active();
// Runnable threads now that are not this process's; -1 if unreadable.
int others_running_now();
// Threads of this process that are running or runnable now (at least the caller); -1 if unreadable.
int own_running_threads();
// What PassThreads would choose now for `requested` threads (the live counters); `requested` when
// they cannot be read.
int threads_for_pass_now(int requested);
}  // namespace threads_detail

}  // namespace d2v
