"""Small in-memory lenses with the interface of crsky.lens.Lens that lens mode uses
(nside, log10_rigidity_edges, matrix, sample_observed), for tests of the skymap stage."""

import numpy as np
import scipy.sparse as sp


class MatrixLens:
    """One CSC matrix per rigidity bin; M[i, j]: extragalactic pixel j -> observed pixel i."""

    def __init__(self, nside: int, edges, matrices):
        self.nside = nside
        self.log10_rigidity_edges = np.asarray(edges, dtype=np.float64)
        self.matrices = [sp.csc_matrix(m) for m in matrices]
        self.draws = 0  # CRs sent through the lens
        self.lost = 0  # of which lost (column sum < 1)

    def matrix(self, log10_rigidity: float) -> sp.csc_matrix:
        index = np.searchsorted(self.log10_rigidity_edges, log10_rigidity, side="right") - 1
        return self.matrices[min(int(index), len(self.matrices) - 1)]

    def sample_observed(self, extragalactic_pixel, log10_rigidity, rng):
        """Row i with probability M[i, j], -1 with probability 1 - column sum (one uniform each)."""
        edges = self.log10_rigidity_edges
        assert np.all((log10_rigidity >= edges[0]) & (log10_rigidity <= edges[-1]))
        bins = np.minimum(np.searchsorted(edges, log10_rigidity, side="right") - 1, len(edges) - 2)
        u = rng.random(extragalactic_pixel.size)
        out = np.full(extragalactic_pixel.size, -1, dtype=np.int64)
        for b, m in enumerate(self.matrices):
            sel = np.flatnonzero(bins == b)
            for i in sel:
                j = extragalactic_pixel[i]
                start, stop = m.indptr[j], m.indptr[j + 1]
                cum = np.cumsum(m.data[start:stop])
                k = np.searchsorted(cum, u[i], side="right")
                if k < stop - start:
                    out[i] = m.indices[start + k]
        self.draws += extragalactic_pixel.size
        self.lost += int(np.count_nonzero(out < 0))
        return out


def identity_lens(nside: int, edges, transparency=None) -> MatrixLens:
    """Identity parts; ``transparency[b]`` (default 1) scales part b's diagonal."""
    npix = 12 * nside * nside
    n_bins = len(edges) - 1
    transparency = [1.0] * n_bins if transparency is None else transparency
    return MatrixLens(nside, edges, [sp.identity(npix, format="csc") * t for t in transparency])


def write_identity_lens_folder(folder, nside: int, edges, transparency=None):
    """A real lens folder (lens.cfg + .npz parts, crsky.lens.formats) with identity parts."""
    from crsky.lens.formats import CfgEntry, write_cfg, write_npz

    lens = identity_lens(nside, edges, transparency)
    entries = []
    for b, matrix in enumerate(lens.matrices):
        name = f"bin{b:03d}.npz"
        write_npz(matrix, folder / name)
        entries.append(CfgEntry(name, edges[b], edges[b + 1], 1e-7, float(matrix.sum(0).max())))
    write_cfg(folder / "lens.cfg", nside, {"field": "identity (test)"}, entries)
    return folder
