// The example programs' OpenMP wait policy (examples/omp_policy.cpp): libgomp itself must start with
// the short spin count unless the user chose a policy, and the re-exec that applies it must keep the
// command line and the rest of the environment. libgomp prints what it read when
// OMP_DISPLAY_ENV=verbose, before main(): that is the observable the tests assert on.
#include "../examples/omp_policy.h"
#include "cli_util.h"
#include "d2v/version.h"

namespace {

// d2v-text --version with the OpenMP variables cleared, then `env` (e.g. "GOMP_SPINCOUNT=7 ").
CliResult run_with(const std::string& env) {
    return run_program("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose " + env + D2V_TEXT_CLI, "--version");
}

TEST(OmpPolicy, ProgramsStartLibgompWithTheShortSpin) {
    const CliResult r = run_with("");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("GOMP_SPINCOUNT = '" D2V_OMP_SPINCOUNT "'"), std::string::npos) << r.output;
    // once: the re-exec'd image must not print libgomp's table a second time or loop
    EXPECT_EQ(r.output.find("OPENMP DISPLAY ENVIRONMENT BEGIN"), r.output.rfind("OPENMP DISPLAY ENVIRONMENT BEGIN"));
}

TEST(OmpPolicy, KeepsArgumentsAndTheRestOfTheEnvironment) {
    const CliResult r = run_with("OMP_NUM_THREADS=3 ");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("OMP_NUM_THREADS = '3'"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(std::string("d2v-text ") + D2V_VERSION_STRING + "\n"), std::string::npos) << r.output;
}

TEST(OmpPolicy, TheUsersSpinCountWins) {
    const CliResult r = run_with("GOMP_SPINCOUNT=1234 ");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("GOMP_SPINCOUNT = '1234'"), std::string::npos) << r.output;
}

TEST(OmpPolicy, TheUsersWaitPolicyWins) {
    // OMP_WAIT_POLICY=active makes libgomp spin (almost) forever: no GOMP_SPINCOUNT of ours may cut it
    const CliResult r = run_with("OMP_WAIT_POLICY=active ");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("OMP_WAIT_POLICY = 'ACTIVE'"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("GOMP_SPINCOUNT = '" D2V_OMP_SPINCOUNT "'"), std::string::npos) << r.output;
}

}  // namespace
