// The OpenMP wait policy the example programs apply before libgomp starts (examples/omp_policy.cpp).
#pragma once

// GOMP_SPINCOUNT set for our programs unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT: how
// many times an idle OpenMP thread polls before it sleeps (libgomp's default is 300000). A string
// literal macro so that the pre-libc code can splice it into "GOMP_SPINCOUNT=..." at compile time.
#define D2V_OMP_SPINCOUNT "5000"
