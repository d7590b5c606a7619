"""Compiled pair histogram of the two-point auto-correlation.

For every pair (i < j) of CRs of one map, the dot product of their unit vectors is computed in
float64 as ``(x_i x_j + y_i y_j) + z_i z_j`` (this order, no fused multiply-add) and assigned to
bin ``m = #{k : d < edges[k]}``, the number of cos(ψ) edges that the pair lies *outside* of. The
edges decrease with k, so the pair is within ψ_k (angle ≤ ψ_k, i.e. d ≥ cos ψ_k) exactly for
k ≥ m, and the cumulative sum of the histogram is the count within each ψ.

Speed: d ∈ [-1, 1] is mapped to one of T equal cells, ``t = clamp(floor((d + 1) T / 2))``; the
table ``base[t]`` holds the number of edges in cells above t, and ``cell_edge[t]`` the one edge
inside cell t (or -inf), so ``m = base[t] + (d < cell_edge[t])`` is exact: the cell map is
monotone in d, so an edge in a higher cell is above d and one in a lower cell is at or below it.
The dot products and cells of one row are computed in a vectorisable loop first, the table
look-ups and increments in a second.
"""

import numpy as np
from numba import prange

from crsky._numba import njit_kernel, njit_parallel

__all__ = ["cumulative_counts"]


@njit_kernel
def _map_histogram(x, y, z, base, cell_edge, half_cells, hist, dot, cell):
    """Add the pairs of one map (coordinates ``x, y, z``, (n,) float64) to ``hist``."""
    n = x.size
    top_cell = base.size - 1.0
    for i in range(n - 1):
        xi = x[i]
        yi = y[i]
        zi = z[i]
        count = n - i - 1
        for j in range(count):
            d = xi * x[i + 1 + j] + yi * y[i + 1 + j] + zi * z[i + 1 + j]
            dot[j] = d
            position = min(max((d + 1.0) * half_cells, 0.0), top_cell)
            cell[j] = np.int32(position)
        for j in range(count):
            t = cell[j]
            hist[base[t] + np.int32(dot[j] < cell_edge[t])] += 1


@njit_parallel
def cumulative_counts(pixels, vx, vy, vz, base, cell_edge, half_cells, n_edges, n_psi, block_maps):
    """(n_maps, n_psi) int64 number of pairs within each ψ of every map.

    Args:
        pixels: (n_maps, n_cr) integer indices into the direction table.
        vx, vy, vz: (npix,) float64 unit-vector components of each pixel (or CR).
        base: (T,) integer table, cell_edge: (T,) float64 table, half_cells: T / 2 (module doc).
        n_edges: number of finite cos(ψ) edges (the first n_edges ψ); the remaining
            n_psi − n_edges columns (ψ = 180°) hold every pair.
        block_maps: maps per parallel task (buffers are allocated once per task).
    """
    n_maps, n_cr = pixels.shape
    n_pairs = n_cr * (n_cr - 1) // 2
    out = np.empty((n_maps, n_psi), dtype=np.int64)
    n_blocks = (n_maps + block_maps - 1) // block_maps
    for b in prange(n_blocks):
        x = np.empty(n_cr)
        y = np.empty(n_cr)
        z = np.empty(n_cr)
        dot = np.empty(max(n_cr, 1))
        cell = np.empty(max(n_cr, 1), dtype=np.int32)
        hist = np.empty(n_edges + 1, dtype=np.int64)
        for k in range(b * block_maps, min((b + 1) * block_maps, n_maps)):
            for i in range(n_cr):
                p = pixels[k, i]
                x[i] = vx[p]
                y[i] = vy[p]
                z[i] = vz[p]
            hist[:] = 0
            _map_histogram(x, y, z, base, cell_edge, half_cells, hist, dot, cell)
            total = 0
            for e in range(n_edges):
                total += hist[e]
                out[k, e] = total
            for e in range(n_edges, n_psi):
                out[k, e] = n_pairs
    return out
