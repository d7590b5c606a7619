"""Compiled sampling kernel of :meth:`crsky.lens.Lens.sample_observed`."""

from crsky._numba import njit_kernel

__all__ = ["draw_rows"]


@njit_kernel
def draw_rows(indptr, indices, cum, columns, u, out):
    """out[k] = row drawn from column columns[k] of a CSC matrix, or -1 (lost).

    ``cum`` (nnz + 1,) is the running sum of the CSC data (cum[m] = data[:m].sum()). With
    t = cum[indptr[j]] + u[k], the CR is lost if t >= cum[indptr[j + 1]] (probability 1 - column
    sum for u uniform in [0, 1)); otherwise the entry m of column j with cum[m] <= t < cum[m + 1]
    is found by bisection within the column, and out[k] = indices[m].
    """
    for k in range(columns.size):
        j = columns[k]
        lo = indptr[j]
        hi = indptr[j + 1]
        t = cum[lo] + u[k]
        if hi == lo or t >= cum[hi]:
            out[k] = -1
            continue
        while hi - lo > 1:  # invariant: cum[lo] <= t < cum[hi]
            mid = (lo + hi) >> 1
            if cum[mid] <= t:
                lo = mid
            else:
                hi = mid
        out[k] = indices[lo]
