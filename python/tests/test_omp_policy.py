"""The package applies the programs' OpenMP wait policy (README "Performance"): libgomp, loaded by the
extension, starts with GOMP_SPINCOUNT = 5000 unless the user chose OMP_WAIT_POLICY or GOMP_SPINCOUNT.
Checked in a fresh interpreter each, since libgomp reads its environment once per process; libgomp's
own OMP_DISPLAY_ENV=verbose table (printed when it loads) shows what it read."""
from __future__ import annotations

import os
import subprocess
import sys


def libgomp_table(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    # from the root of the tree python/d2v would shadow the installed package: run from elsewhere
    r = subprocess.run([sys.executable, "-c", "import d2v"], env={**clean, "OMP_DISPLAY_ENV": "verbose", **env},
                       capture_output=True, text=True, cwd="/", check=True)
    return r.stderr


def test_short_spin_by_default():
    assert "GOMP_SPINCOUNT = '5000'" in libgomp_table()


def test_the_users_spin_count_wins():
    assert "GOMP_SPINCOUNT = '77'" in libgomp_table(GOMP_SPINCOUNT="77")


def test_the_users_wait_policy_wins():
    table = libgomp_table(OMP_WAIT_POLICY="active")
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in table and "GOMP_SPINCOUNT = '5000'" not in table
