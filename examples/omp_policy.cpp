// The OpenMP wait policy of every program in examples/ (linked into each executable by CMake).
//
// Why: a forward pass opens ~130 OpenMP parallel regions. libgomp's default lets an idle worker spin
// for GOMP_SPINCOUNT = 300000 polls before it sleeps; with another busy process on the machine the
// spinners take the CPU from the thread that still has work, and a 2-thread run took 10-20x longer
// than a 1-thread one. A short spin keeps the idle-machine speed (most barriers end within it) and
// lets a waiting thread give its core back soon under contention. README "Performance" has the
// measurements behind the value.
//
// Why a re-exec: libgomp reads its environment once, in its own constructor, before main() and
// before any constructor of ours in a shared library. An executable's .preinit_array runs earlier
// still, but before libc's own initialiser, which then resets `environ` to the array the kernel
// passed: a setenv() there is lost. So the preinit function execs the same binary once more with
// the variable added to that array; the second image finds it set and goes on. The cost is one more
// dynamic-loader start (under a millisecond). The user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT always
// wins: then nothing happens. Without /proc (execve fails) the program runs with libgomp's default.
#include <alloca.h>
#include <unistd.h>

#include <cstring>

#include "omp_policy.h"

namespace {

// libc's getenv() may not see the environment yet: this runs before libc is initialised.
bool has_variable(char** envp, const char* name) {
    const size_t n = std::strlen(name);
    for (char** e = envp; e != nullptr && *e != nullptr; ++e)
        if (std::strncmp(*e, name, n) == 0 && (*e)[n] == '=') return true;
    return false;
}

void apply_omp_wait_policy(int, char** argv, char** envp) {
    if (envp == nullptr || has_variable(envp, "OMP_WAIT_POLICY") || has_variable(envp, "GOMP_SPINCOUNT")) return;
    size_t n = 0;
    while (envp[n] != nullptr) ++n;
    // On the stack: malloc is not to be relied on before libc's initialiser.
    auto** env = static_cast<char**>(alloca((n + 2) * sizeof(char*)));
    std::memcpy(env, envp, n * sizeof(char*));
    static char setting[] = "GOMP_SPINCOUNT=" D2V_OMP_SPINCOUNT;
    env[n] = setting;
    env[n + 1] = nullptr;
    execve("/proc/self/exe", argv, env);  // returns only on failure: carry on as we are
}

// The section holds function pointers that the dynamic loader calls, with (argc, argv, envp),
// before any shared library's initialiser; `used` keeps the entry although nothing references it.
__attribute__((section(".preinit_array"), used)) void (*const preinit_omp_wait_policy)(int, char**, char**) =
    apply_omp_wait_policy;

}  // namespace
