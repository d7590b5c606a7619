"""The DeepSphere graph on HEALPix NESTED pixels and its rescaled Laplacian (numpy/scipy only).

Perraudin et al. 2019 (Astron. Comput. 27, 130; arXiv:1810.12186), section 3.1, and Defferrard et
al. 2020 (ICLR, arXiv:2012.15000): vertices are the pixels, each joined to its 8 (7 at the 8
corner-sharing pixels of every resolution) HEALPix neighbours; the weight of an edge between
pixel centres at chord distance d (unit sphere) is exp(-d² / (2 ⟨d²⟩)), ⟨d²⟩ the mean over all
edges. The symmetric normalised Laplacian L = I - D^-1/2 W D^-1/2 has its spectrum in [0, 2]
(Chung 1997, Lemma 1.7), so L̃ = 2 L / λ_max - I with the bound λ_max = 2, i.e.
L̃ = -D^-1/2 W D^-1/2, has its spectrum in [-1, 1] as the Chebyshev recursion needs. The bound
needs no eigen-solver (λ_max is 1.38 … 1.52 for nside 1 … 64) and is the same on every machine.
"""

from functools import lru_cache

import healpy as hp
import numpy as np
import scipy.sparse as sp

from crsky.sphere import check_nside

__all__ = ["LAMBDA_MAX_BOUND", "neighbour_weights", "rescaled_laplacian"]

LAMBDA_MAX_BOUND = 2.0


@lru_cache(maxsize=16)
def neighbour_weights(nside: int) -> sp.csr_matrix:
    """(npix, npix) symmetric CSR weight matrix W of the 8-neighbour graph on NESTED pixels."""
    npix = hp.nside2npix(check_nside(nside))
    pix = np.arange(npix)
    neighbours = hp.get_all_neighbours(nside, pix, nest=True)  # (8, npix), -1 where missing
    rows = np.broadcast_to(pix, neighbours.shape).ravel()
    cols = neighbours.ravel()
    keep = (cols >= 0) & (cols != rows)
    adjacency = sp.coo_matrix(
        (np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(npix, npix)
    ).tocsr()
    adjacency = adjacency.maximum(adjacency.T).tocoo()  # symmetric, duplicates merged
    centres = np.array(hp.pix2vec(nside, pix, nest=True)).T
    d2 = np.sum((centres[adjacency.row] - centres[adjacency.col]) ** 2, axis=1)
    weights = np.exp(-d2 / (2.0 * d2.mean()))
    return sp.csr_matrix((weights, (adjacency.row, adjacency.col)), shape=(npix, npix))


@lru_cache(maxsize=16)
def rescaled_laplacian(nside: int) -> sp.csr_matrix:
    """(npix, npix) float32 CSR L̃ = 2 L / 2 - I = -D^-1/2 W D^-1/2, rows sorted by column."""
    weights = neighbour_weights(nside)
    inv_sqrt_degree = 1.0 / np.sqrt(np.asarray(weights.sum(axis=1)).ravel())
    scaling = sp.diags(inv_sqrt_degree)
    laplacian = sp.eye(weights.shape[0]) - scaling @ weights @ scaling
    rescaled = (2.0 / LAMBDA_MAX_BOUND) * laplacian - sp.eye(weights.shape[0])
    rescaled = sp.csr_matrix(rescaled, dtype=np.float32)
    rescaled.eliminate_zeros()
    rescaled.sort_indices()
    return rescaled
