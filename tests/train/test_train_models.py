"""The models: HEALPix graph and layouts, the Chebyshev layer against a dense reference, rotation
equivariance, the 12-patch network of seed 000, rendering against crsky.store, saving."""

import healpy as hp
import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from crsky.errors import ConfigError
from crsky.models import ModelSpec, build_model, ring_to_model
from crsky.models.deepsphere import ChebConv, HealpixPool, laplacian_matmul
from crsky.models.healpix_graph import neighbour_weights, rescaled_laplacian
from crsky.models.layout import nest_to_patch, z_rotation_permutation
from crsky.models.render import RenderMaps
from crsky.models.spec import SEED000_PATCHES
from crsky.store import render_counts


@pytest.mark.parametrize("nside", [2, 4, 16])
def test_graph_has_8_neighbours_except_at_the_8_three_face_vertices(nside):
    # Górski et al. 2005 (ApJ 622, 759), fig. 3: 8 vertices of the base resolution are shared
    # by only 3 base pixels; each of the 3 pixels touching one has 7 neighbours, all others 8.
    weights = neighbour_weights(nside)
    npix = 12 * nside**2
    assert weights.nnz == 8 * npix - 24
    degree = np.diff(weights.indptr)
    assert np.sum(degree == 7) == 24 and np.sum(degree == 8) == npix - 24
    assert abs(weights - weights.T).max() == 0
    assert weights.diagonal().max() == 0
    # exp(-d² / (2 <d²>)) over the edges: the mean of d² / <d²> is 1 by construction
    d2_over_mean = -2 * np.log(weights.data)
    np.testing.assert_allclose(d2_over_mean.mean(), 1.0, rtol=1e-12)


def test_rescaled_laplacian_spectrum_lies_in_minus_one_one():
    nside = 4
    lap = rescaled_laplacian(nside).toarray().astype(np.float64)
    np.testing.assert_allclose(lap, lap.T, atol=1e-7)
    eig = np.linalg.eigvalsh(lap)
    assert eig.min() >= -1 - 1e-6 and eig.max() <= 1 + 1e-6
    # L v = 0 for v = D^1/2 1 (Chung 1997, section 1.2), so L̃ = L - I maps it to -v exactly
    degree = np.asarray(neighbour_weights(nside).sum(axis=1)).ravel()
    v = np.sqrt(degree)
    np.testing.assert_allclose(lap @ v, -v, atol=1e-6)
    # λ_max(L) ≈ 1.42 at nside 4 (dense eigensolver), inside the bound 2 used for rescaling
    assert 1.3 < eig.max() + 1 < 1.6


def test_patches_are_true_2d_images():
    nside = 8
    position = nest_to_patch(nside)
    assert np.array_equal(np.sort(position), np.arange(12 * nside**2))
    image = np.empty(12 * nside**2, dtype=np.int64)
    image[position] = np.arange(12 * nside**2)  # NESTED pixel at each image position
    image = image.reshape(12, nside, nside)
    neighbours = hp.get_all_neighbours(nside, np.arange(12 * nside**2), nest=True)
    for drow, dcol in [(0, 1), (1, 0), (1, 1), (1, -1)]:
        rows = slice(0, nside - drow)
        cols = slice(max(0, -dcol), nside - max(0, dcol))
        shifted_cols = slice(max(0, dcol), nside - max(0, -dcol))
        a = image[:, rows, cols].ravel()
        b = image[:, drow:, shifted_cols].ravel()
        assert np.all((neighbours[:, a] == b).any(axis=0)), (drow, dcol)
    # the 2×2 blocks of an image are the 4 NESTED children of one pixel at nside / 2
    blocks = image.reshape(12, nside // 2, 2, nside // 2, 2).transpose(0, 1, 3, 2, 4)
    assert np.all(blocks.reshape(-1, 4) // 4 == (blocks.reshape(-1, 4) // 4)[:, :1])


def test_ring_to_model_is_a_permutation_and_rotation_is_exact():
    for family in ("deepsphere", "patches"):
        assert np.array_equal(np.sort(ring_to_model(family, 8)), np.arange(768))
    perm = z_rotation_permutation(8)
    assert not np.array_equal(perm, np.arange(768))
    assert np.array_equal(perm[perm[perm[perm]]], np.arange(768))  # four quarter turns


def _random_maps(rng, n, nside, channels=1):
    return rng.poisson(1.0, size=(n, 12 * nside**2, channels)).astype(np.float32)


def test_order_0_filter_is_a_per_pixel_dense_layer(rng):
    x = _random_maps(rng, 3, 4, channels=5)
    conv = ChebConv(4, 7, K=0)
    y = conv(x)
    dense = keras.layers.Dense(7)
    dense.build((None, 5))
    dense.set_weights([conv.kernel.numpy()[0], conv.bias.numpy()])
    np.testing.assert_allclose(y, dense(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sparse_format", ["csr", "coo"])
def test_chebyshev_filter_matches_dense_matrix_polynomial(rng, sparse_format):
    nside, order, c_in, c_out = 4, 3, 2, 3
    x = _random_maps(rng, 2, nside, c_in)
    conv = ChebConv(nside, c_out, K=order, sparse_format=sparse_format)
    conv.build(x.shape)
    conv.bias.assign(rng.normal(size=c_out).astype(np.float32))
    lap = rescaled_laplacian(nside).toarray().astype(np.float64)
    # T_0 = I, T_1 = L̃, T_k = 2 L̃ T_{k-1} - T_{k-2} (Defferrard et al. 2016, eq. 4)
    t = [np.eye(lap.shape[0]), lap]
    for _ in range(2, order + 1):
        t.append(2 * lap @ t[-1] - t[-2])
    theta = conv.kernel.numpy().astype(np.float64)
    expected = sum(np.einsum("pq,bqc,cf->bpf", t[k], x, theta[k]) for k in range(order + 1))
    np.testing.assert_allclose(conv(x), expected + conv.bias.numpy(), rtol=1e-4, atol=1e-4)


def test_csr_gradient_equals_coo_gradient(rng):
    nside = 4
    f = tf.constant(rng.normal(size=(192, 6)).astype(np.float32))
    grads = []
    for fmt in ("csr", "coo"):
        matmul = laplacian_matmul(nside, fmt)
        with tf.GradientTape() as tape:
            tape.watch(f)
            loss = tf.reduce_sum(tf.sin(matmul(matmul(f))))
        grads.append(tape.gradient(loss, f).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    assert np.abs(grads[0]).max() > 0.1


def test_rotated_map_gives_rotated_output_and_invariant_score(rng):
    keras.utils.set_random_seed(7)
    nside = 8
    perm = z_rotation_permutation(nside)  # NESTED pixel p -> perm[p]
    # Poisson maps around a 10° blob (white noise alone would look the same after shuffling)
    centre = hp.ang2vec(1.0, 0.3)
    centres = np.array(hp.pix2vec(nside, np.arange(768), nest=True)).T
    distance = np.arccos(np.clip(centres @ centre, -1, 1))
    rate = 0.5 + 5 * np.exp(-0.5 * (distance / 0.17) ** 2)
    x = rng.poisson(rate[None, :, None], size=(2, 768, 1))
    x = x.astype(np.float32)
    x_rot = np.empty_like(x)
    x_rot[:, perm] = x
    conv = ChebConv(nside, 4, K=5)
    y, y_rot = conv(x).numpy(), conv(x_rot).numpy()
    np.testing.assert_allclose(y_rot[:, perm], y, rtol=1e-5, atol=1e-5)
    # pooled at nside / 2, the rotation acts by the coarse permutation perm[4 q] // 4
    pool = HealpixPool("max")
    coarse = perm[::4] // 4
    np.testing.assert_allclose(
        pool(y_rot).numpy()[:, coarse], pool(y).numpy(), rtol=1e-5, atol=1e-5
    )
    # the statistics layer makes the whole network invariant ...
    spec = ModelSpec(name="ds", depth=3, channels=(4, 8, 8), K=5, dense_units=(8,), dropout=0.0)
    model = build_model(spec, nside)
    features = keras.Model(model.inputs, model.get_layer("statistics").output)
    stats = features.predict(x, verbose=0)
    np.testing.assert_allclose(features.predict(x_rot, verbose=0), stats, rtol=1e-5, atol=1e-7)
    score = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x_rot, verbose=0), score, rtol=1e-5, atol=1e-7)
    # an arbitrary permutation of the pixels is no symmetry of the graph: not equivariant
    shuffle = rng.permutation(768)
    x_shuffled = np.empty_like(x)
    x_shuffled[:, shuffle] = x
    assert np.abs(conv(x_shuffled).numpy()[:, shuffle] - y).max() > 0.1 * np.abs(y).max()


def test_patches_network_of_seed_000_has_its_parameter_count():
    # Seed 000, Model.summary(): 4 × (conv 3×3, 32 filters, max-pool), dropout, 2 dense of 768:
    # 320 + 3 × 9,248 + 4,719,360 + 590,592 = 5,338,016 parameters, then our 769-parameter output.
    model = build_model(SEED000_PATCHES, 64)
    assert model.count_params() == 5_338_016 + 769
    assert model.get_layer("flatten").output.shape[-1] == 6144  # 12 × 4 × 4 × 32, as in seed 000


def test_render_layer_matches_store_rendering(rng):
    nside, n_cr = 8, 50
    pixel = rng.integers(0, 768, size=(4, n_cr)).astype(np.int32)
    log10_energy = rng.uniform(19.6, 20.5, size=(4, n_cr)).astype(np.float32)
    inputs = ("counts", "mean_log10_energy")
    crs = {"pixel": pixel, "log10_energy": log10_energy}
    counts = render_counts(pixel, nside, nest=True)  # crsky.store, numpy reference
    energy_sum = render_counts(pixel, nside, nest=True, weights=log10_energy - 18.0)
    mean_energy = np.where(counts > 0, energy_sum / np.maximum(counts, 1), 0.0)
    maps = RenderMaps("deepsphere", nside, inputs)(crs).numpy()
    np.testing.assert_allclose(maps[..., 0], counts * 768 / n_cr, rtol=1e-6)
    np.testing.assert_allclose(maps[..., 1], mean_energy, rtol=1e-5, atol=1e-6)
    patches = RenderMaps("patches", nside, inputs)(crs).numpy()
    assert patches.shape == (4, 12, nside, nside, 2)
    flat = np.empty_like(maps)
    flat[:, nest_to_patch(nside)] = maps
    np.testing.assert_array_equal(patches.reshape(4, -1, 2), flat)


@pytest.mark.parametrize("family", ["deepsphere", "patches"])
def test_model_keras_reloads_and_predicts_the_same(tmp_path, rng, family):
    from crsky.train.loop import build_cr_model

    spec = ModelSpec(
        name=f"small_{family}",
        family=family,
        depth=2,
        channels=(4, 4),
        K=2,
        dense_units=(8,),
        inputs=("counts", "mean_log10_energy"),
    )
    model = build_cr_model(spec, 4)
    crs = {
        "pixel": rng.integers(0, 192, size=(5, 30)).astype(np.int32),
        "log10_energy": rng.uniform(19.6, 20.5, size=(5, 30)).astype(np.float32),
    }
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.predict(crs, verbose=0), model.predict(crs, verbose=0))
    assert loaded.get_layer("render").get_config()["nside"] == 4


@pytest.mark.parametrize(
    ("entry", "nside", "message"),
    [
        ({"name": "a"}, 12, "power of 2"),
        ({"name": "a", "depth": 4, "channels": 8}, 8, "depth 4 pools nside 8 below 1"),
        ({"name": "a", "family": "sphere"}, 16, "family"),
        ({"name": "a", "depth": 2, "channels": [8]}, 16, "one channel count per block"),
        ({"name": "a", "K": -1}, 16, "K must be an integer >= 0"),
        ({"name": "a", "dropout": 1.0}, 16, "dropout"),
        ({"name": "a", "width": 3}, 16, r"models\[0\]\.width: unknown key"),
        ({"name": "a", "inputs": ["charge"]}, 16, "inputs"),
        ({"name": "my model"}, 16, "name must start with a letter"),
    ],
)
def test_impossible_model_configs_are_rejected_before_building(entry, nside, message):
    with pytest.raises(ConfigError, match=message):
        spec = ModelSpec.from_config(entry, "models[0]")
        build_model(spec, nside)


def test_laplacian_is_cached_and_float32():
    lap = rescaled_laplacian(16)
    assert lap is rescaled_laplacian(16)
    assert lap.dtype == np.float32 and isinstance(lap, sp.csr_matrix)
    assert lap.has_sorted_indices and lap.diagonal().max() == 0


def test_spec_defaults_and_round_trip():
    spec = ModelSpec.from_config({"name": "a", "depth": 5, "family": "patches"})
    assert spec.channels == (16, 32, 64, 64, 64)  # doubling up to 64 when not given
    assert ModelSpec.from_config({"name": "b", "depth": 2, "channels": 8}).channels == (8, 8)
    assert ModelSpec.from_config(spec.to_config()) == spec
