"""The on-disk cache of closures that inline a field kernel (:mod:`crsky._numba`): a later process
loads the compiled code instead of compiling it again, and never code compiled for another
kernel, another captured constant or an older source."""

import subprocess
import sys

from crsky._numba import code_fingerprint, njit_kernel

_KERNELS = """
from crsky._numba import njit_kernel


@njit_kernel(inline="always")
def double(x):
    return {body}
"""

# The closure lives in another file than the kernel it inlines (numba's own cache checks only the
# closure's file). Its helper is long enough not to be inlined by LLVM: the cached code calls it
# by name, and the helpers of make(1.0) and make(3.0) compiled in two processes must not be
# mistaken for each other when both are loaded into a third.
_STEPS = "\n".join(f"        x = x * 1.0000001 + scale * {i}.0 / (x + 3.0)" for i in range(200))
_CLOSURES = f"""
from crsky._numba import njit_cached_by_content, njit_closure


def make(kernel, scale):
    @njit_closure()
    def helper(v):
        x = kernel(v)
{_STEPS}
        return x

    @njit_cached_by_content()
    def total(values):
        s = 0.0
        for v in values:
            s += helper(v)
        return s

    return total
"""

_RUN = """
import sys
import numpy as np
import closures, kernels
for scale in map(float, sys.argv[1:]):
    total = closures.make(kernels.double, scale)
    print(total(np.arange(4.0)), sum(total.stats.cache_hits.values()))
"""


def _totals(folder, *scales):
    """[(result, times loaded from the disk cache)] of make(double, scale) per scale, all in one
    new Python process."""
    out = subprocess.run(
        [sys.executable, "-c", _RUN, *map(str, scales)],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [(float(value), int(hits)) for value, hits in zip(out[::2], out[1::2], strict=True)]


def test_closures_are_loaded_from_disk_and_never_mistaken_for_each_other(tmp_path):
    (tmp_path / "closures.py").write_text(_CLOSURES)
    (tmp_path / "kernels.py").write_text(_KERNELS.format(body="2.0 * x"))
    [(one, compiled)] = _totals(tmp_path, 1.0)
    [(three, _)] = _totals(tmp_path, 3.0)
    assert compiled == 0 and one != three
    assert _totals(tmp_path, 1.0, 3.0) == [(one, 1), (three, 1)]
    assert _totals(tmp_path, 3.0, 1.0) == [(three, 1), (one, 1)]
    # a changed kernel in its own file: compiled anew, never the stale code
    (tmp_path / "kernels.py").write_text(_KERNELS.format(body="2.5 * x"))
    [(changed, hits)] = _totals(tmp_path, 1.0)
    assert hits == 0 and changed != one


def test_fingerprint_follows_captured_kernels_and_constants():
    def make(kernel, scale):
        def total(values):
            return scale * kernel(values)

        return total

    double = njit_kernel(lambda x: 2.0 * x)
    triple = njit_kernel(lambda x: 3.0 * x)
    same = code_fingerprint(make(double, 1.0))
    assert code_fingerprint(make(double, 1.0)) == same
    assert code_fingerprint(make(triple, 1.0)) != same
    assert code_fingerprint(make(double, 2.0)) != same
