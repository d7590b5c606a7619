"""The one place where numba options are set.

Kernels import ``njit_kernel`` (serial, per element) and ``njit_parallel`` (loops with ``prange``)
from here. ``CRSKY_NUMBA_CACHE=0`` disables the on-disk cache, e.g. on read-only installs.
"""

import os
from functools import partial

from numba import njit

__all__ = ["njit_kernel", "njit_parallel", "njit_taking_kernels"]

_CACHE = os.environ.get("CRSKY_NUMBA_CACHE", "1") != "0"

njit_kernel = partial(njit, cache=_CACHE, nogil=True, error_model="numpy")
njit_parallel = partial(njit, cache=_CACHE, nogil=True, parallel=True, error_model="numpy")
# Functions that take a field kernel (a numba dispatcher) as an argument are never cached on
# disk: numba 0.68 pickles such signatures with a weak reference to the kernel, and a later
# process that saves another kernel's overload fails with "ReferenceError: underlying object has
# vanished" while reading the index back. They compile once per process instead (seconds).
njit_taking_kernels = partial(njit, cache=False, nogil=True, error_model="numpy")
