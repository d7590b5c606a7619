"""LRP of the pixel families (crsky.explain) on tiny untrained networks at nside 8: the forward
pass the LRP code rebuilds from the weights is the Keras model's, relevance is conserved, and in
a network made linear the relevance of every input pixel is gradient × input (what the ε rule
gives for linear bias-free layers), which fails for any wrong transpose, padding or pooling; a
model without the layers LRP walks is refused in one line."""

import healpy as hp
import keras
import numpy as np
import pytest
import tensorflow as tf

from crsky.errors import ConfigError
from crsky.explain import cr_relevance
from crsky.models import ModelSpec
from crsky.train.loop import build_cr_model

NSIDE = 8
BOTH = ("counts", "mean_log10_energy")
NETWORKS = {  # kernel 2: Keras' 'same' padding is uneven (0 before, 1 after)
    "deepsphere": {"family": "deepsphere", "K": 3},
    "patches": {"family": "patches", "kernel_size": 3},
    "patches_kernel2": {"family": "patches", "kernel_size": 2},
}


def _model(rng, network: str, pooling: str, inputs=BOTH, biases: bool = True):
    spec = ModelSpec.from_config(
        {"name": "lrp", "depth": 2, "channels": [4, 6], "dense_units": [8], "dropout": 0.0,
         "pooling": pooling, "inputs": list(inputs), **NETWORKS[network]}
    )  # fmt: skip
    model = build_cr_model(spec, NSIDE)
    for layer in model.get_layer("lrp").layers:
        weights = layer.get_weights()
        if biases and len(weights) == 2:  # Keras starts biases at 0: give them a share
            bias = rng.normal(0.0, 0.1, weights[1].shape).astype(np.float32)
            layer.set_weights([weights[0], bias])
    return model


def _crs(rng, n_maps: int = 4, n_cr: int = 300) -> dict[str, np.ndarray]:
    pixel = rng.integers(0, hp.nside2npix(NSIDE), (n_maps, n_cr)).astype(np.int32)
    pixel[:, :40] = pixel[:, :1]  # a hot pixel of 40 CRs per map
    energy = rng.uniform(19.6, 20.5, (n_maps, n_cr)).astype(np.float32)
    return {"pixel": pixel, "log10_energy": energy}


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("pooling", ["average", "max"])
def test_lrp_rebuilds_the_forward_pass_and_conserves_the_logit(rng, network, pooling):
    model = _model(rng, network, pooling)
    crs = _crs(rng)
    r = cr_relevance(model, crs, batch_maps=3)  # two batches of 3 and 1 maps
    probability = keras.ops.convert_to_numpy(model(crs)).ravel()  # float32 Keras model
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-r.logit)), probability, rtol=1e-5)
    # ε = 1e-9 absorbs R_j ε / |z_j| at every neuron: measured ≤ 1e-8 in total over the 8
    # layers (float64 rounding is 1e-15); a rule that drops relevance (e.g. the variance shared
    # over (a_p − ā)², which hands it to zero activations) misses by 1e-6 to 1e-4
    np.testing.assert_allclose(r.cr.sum(axis=1) + r.bias, r.logit, rtol=0, atol=1e-7)
    assert r.pixel.shape == (4, *model.get_layer("lrp").input_shape[1:])
    np.testing.assert_allclose(r.pixel.reshape(4, -1).sum(axis=1), r.cr.sum(axis=1), atol=1e-12)
    # the 40 CRs of the hot pixel share its relevance equally
    np.testing.assert_allclose(r.cr[:, :40], np.repeat(r.cr[:, :1], 40, axis=1), rtol=1e-12)


@pytest.mark.parametrize("network", NETWORKS)
def test_relevance_of_a_linear_network_is_gradient_times_input(rng, network):
    model = _model(rng, network, "average", biases=False)
    maps_network = model.get_layer("lrp")
    for layer in maps_network.layers:
        if hasattr(layer, "activation"):
            layer.activation = keras.activations.linear
    if network == "deepsphere":  # the variance readout is quadratic: keep only the means
        dense = maps_network.get_layer("dense0")
        kernel, bias = dense.get_weights()
        kernel[kernel.shape[0] // 2 :] = 0.0
        dense.set_weights([kernel, bias])
    crs = _crs(rng)
    r = cr_relevance(model, crs)
    maps = tf.constant(model.get_layer("render")(crs))
    with tf.GradientTape() as tape:
        tape.watch(maps)
        logit = maps_network(maps)
    gradient_x_input = (tape.gradient(logit, maps) * maps).numpy()
    scale = np.abs(gradient_x_input).max()  # float32 gradients: compare to 1e-5 of the largest
    np.testing.assert_allclose(r.pixel, gradient_x_input, rtol=0, atol=1e-5 * scale)
    assert np.abs(r.pixel).max() > 0.1 * scale


def test_a_model_lrp_cannot_walk_is_one_line(rng):
    plain = keras.Sequential([keras.Input((3,), name="pixel"), keras.layers.Dense(1)], name="mlp")
    with pytest.raises(ConfigError, match="neither a RenderMaps layer"):
        cr_relevance(plain, {"pixel": np.zeros((2, 3), np.int32)})
    model = _model(rng, "patches", "average", inputs=("counts",))
    with pytest.raises(ConfigError, match=r"reads \['pixel', 'log10_energy'\]|lack"):
        cr_relevance(_model(rng, "patches", "average"), {"pixel": _crs(rng)["pixel"]})
    assert cr_relevance(model, {"pixel": _crs(rng)["pixel"]}).cr.shape == (4, 300)


def test_crsky_explain_of_a_model_without_the_layers_is_one_line(toy_chunks, tmp_path, capsys):
    import json

    from crsky.cli import main

    pixel = keras.Input((None,), dtype="int32", name="pixel")
    x = keras.layers.Embedding(hp.nside2npix(16), 2)(pixel)
    x = keras.layers.GlobalAveragePooling1D()(x)
    keras.Model(pixel, keras.layers.Dense(1, "sigmoid")(x), name="embedding").save(
        tmp_path / "model.keras"
    )
    config = {"model": {"name": "embedding", "family": "deepsphere"}, "nside": 16}
    (tmp_path / "config.json").write_text(json.dumps(config))
    args = ["explain", "--model", tmp_path, "--test", toy_chunks["test"][0]]
    assert main([*args, "--output", tmp_path / "explain"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model 'embedding' has neither a RenderMaps layer" in err and "\n" not in err
    assert not (tmp_path / "explain").exists()
