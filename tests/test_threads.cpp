// The per-pass thread count (d2v::PassThreads, src/threads.cpp): fewer threads while other
// processes hold CPUs, never fewer than one, never more than the caller set, and the caller's
// count restored afterwards.
#include <gtest/gtest.h>
#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "d2v/kernels/threads.h"

namespace {
using namespace d2v::threads_detail;

TEST(PassThreads, ChoiceTable) {
    struct Case {
        int requested, cpus, others, expected;
    } cases[] = {
        {2, 2, 0, 2},  // idle machine: as set
        {2, 2, 1, 1},  // one busy process on 2 CPUs: the free core only
        {2, 2, 5, 1},  // never below one
        {4, 8, 3, 4},  // enough free CPUs
        {8, 8, 3, 5},
        {1, 2, 1, 1},
        {8, 2, 0, 8},  // oversubscription the caller chose on an idle machine is kept
        {2, 0, 1, 2},  // unknown CPU count: unchanged
    };
    for (const Case& c : cases)
        EXPECT_EQ(threads_for_pass(c.requested, c.cpus, c.others), c.expected)
            << c.requested << " requested, " << c.cpus << " CPUs, " << c.others << " others";
}

TEST(PassThreads, ParsesTheRunnableCountOfLoadavg) {
    EXPECT_EQ(parse_loadavg_running("0.52 0.41 0.30 3/250 12345\n"), 3);
    EXPECT_EQ(parse_loadavg_running("10.00 9.00 8.00 117/2048 1"), 117);
    for (const char* bad : {"", "0.52 0.41 0.30", "0.52 0.41 0.30 /250 1", "0.52 0.41 0.30 3", "a b c x/1 2",
                            "0.52 0.41 0.30 99999999999/2 1"})
        EXPECT_EQ(parse_loadavg_running(bad), -1) << bad;
}

TEST(PassThreads, ReadsTheStateAfterTheLastParenthesis) {
    EXPECT_TRUE(task_is_running("123 (d2v-audio) R 1 2 3"));
    EXPECT_FALSE(task_is_running("123 (d2v-audio) S 1 2 3"));
    EXPECT_FALSE(task_is_running("123 (odd) R name) S 1 2 3"));  // a thread may name itself anything
    EXPECT_TRUE(task_is_running("123 (odd) S name) R 1 2 3"));
    EXPECT_FALSE(task_is_running("123 (cut"));
    EXPECT_FALSE(task_is_running(""));
}

#ifdef __linux__
// A child process that spins until killed: another process's runnable thread.
struct BusyChild {
    pid_t pid = ::fork();
    BusyChild() {
        if (pid == 0) {
            for (volatile unsigned long i = 0;; i = i + 1) {
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ~BusyChild() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
};

TEST(PassThreads, CountsOurOwnRunningThreads) {
    std::atomic<bool> stop{false};
    std::thread spinner([&] {
        while (!stop.load(std::memory_order_relaxed)) {
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int own = own_running_threads();
    stop = true;
    spinner.join();
    EXPECT_GE(own, 2);  // the caller and the spinner, both runnable
}

TEST(PassThreads, SeesAnotherBusyProcess) {
    if (!adaptive_threads_active()) {  // a cpuset, D2V_ADAPTIVE_THREADS=0 or no real counters: hands off
        EXPECT_EQ(threads_for_pass_now(4), 4);
        return;
    }
    ASSERT_GE(others_running_now(), 0);
    const BusyChild busy;
    ASSERT_GT(busy.pid, 0);
    EXPECT_GE(others_running_now(), 1);
}

TEST(PassThreads, UsesFewerThreadsBesideABusyProcessAndRestoresTheCount) {
    const int cpus = int(::sysconf(_SC_NPROCESSORS_ONLN));
    const int before = omp_get_max_threads();
    const int requested = std::max(cpus, 2);
    omp_set_num_threads(requested);
    {
        const BusyChild busy;
        const d2v::PassThreads pass;
        if (adaptive_threads_active())  // off under a cpuset or D2V_ADAPTIVE_THREADS=0: then unchanged
            EXPECT_LE(omp_get_max_threads(), std::max(1, cpus - 1));
        else
            EXPECT_EQ(omp_get_max_threads(), requested);
        {
            omp_set_num_threads(requested);  // an inner scope decides nothing
            const d2v::PassThreads inner;
            EXPECT_EQ(omp_get_max_threads(), requested);
        }
        EXPECT_GE(omp_get_max_threads(), 1);
    }
    EXPECT_EQ(omp_get_max_threads(), requested);
    omp_set_num_threads(before);
}
#endif

}  // namespace
