"""The pointcloud family (crsky.models.pointcloud): exactly invariant to the order of the CRs,
invariant to a global rotation of a full sky up to the pixelisation, reloads from model.keras,
and separates strong signal from isotropy like the other families."""

import healpy as hp
import keras
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from train_toy import SEED, check_explain

from crsky.errors import ConfigError
from crsky.models import ModelSpec, build_model, load_model
from crsky.models.pointcloud import NeighbourDensities, scales_deg

SMALL = ModelSpec(
    name="small_pointcloud",
    family="pointcloud",
    depth=2,
    channels=(8, 8),
    K=4,
    dense_units=(8,),
    dropout=0.0,
    inputs=("counts", "mean_log10_energy"),
)


def _crs(rng, n_maps, n_cr, nside, duplicates=True):
    pixel = rng.integers(0, hp.nside2npix(nside), size=(n_maps, n_cr)).astype(np.int32)
    energy = rng.choice(np.linspace(19.6, 20.5, 8), size=(n_maps, n_cr)).astype(np.float32)
    if duplicates:  # CRs in one pixel, some with equal energies: ties for the ordering
        pixel[:, 1::7] = pixel[:, 0:1]
        energy[:, 2::14] = energy[:, 0:1]
    return {"pixel": pixel, "log10_energy": energy}


def test_score_is_exactly_independent_of_the_cr_order(rng):
    model = build_model(SMALL, 8)
    crs = _crs(rng, 6, 120, 8)
    scores = model.predict(crs, verbose=0)
    for _ in range(3):
        order = np.stack([rng.permutation(120) for _ in range(6)])
        shuffled = {k: np.take_along_axis(v, order, axis=1) for k, v in crs.items()}
        np.testing.assert_array_equal(model.predict(shuffled, verbose=0), scores)


def test_features_are_rotation_invariant_up_to_the_pixelisation(rng):
    # full sky, continuous directions rotated by a random rotation, then pixelised: the
    # per-map mean features of a map and of its rotated copy differ far less than those of
    # two independent maps (only through the pixel centres; a dense multiplet of 60 CRs
    # within 3° is the hardest case for the pixelisation)
    nside, n_maps, n_cr = 64, 8, 300
    layer = NeighbourDensities(nside, scales_deg(nside, 4).tolist())
    v = rng.normal(size=(n_maps, n_cr, 3))
    v /= np.linalg.norm(v, axis=2, keepdims=True)
    v[:, :60] = v[:, :1] + 0.05 * rng.normal(size=(n_maps, 60, 3))  # a multiplet per map
    v /= np.linalg.norm(v, axis=2, keepdims=True)
    rotated = Rotation.random(random_state=7).apply(v.reshape(-1, 3)).reshape(v.shape)

    def features(vectors):
        pixel = hp.vec2pix(nside, *vectors.reshape(-1, 3).T).reshape(n_maps, n_cr)
        return np.asarray(layer({"pixel": pixel.astype(np.int32)})).mean(axis=1)

    a, b = features(v), features(rotated)
    between_maps = np.sqrt(np.mean((a[1:] - a[:-1]) ** 2, axis=0))
    under_rotation = np.sqrt(np.mean((a - b) ** 2, axis=0))
    # measured: 8 %, 6 %, 1.5 %, 0.5 % from the smallest scale (2 pixels) to the largest
    assert np.all(under_rotation < 0.1 * between_maps), (under_rotation, between_maps)


def test_pointcloud_reloads_from_model_keras(tmp_path, rng):
    model = build_model(SMALL, 4)
    crs = _crs(rng, 5, 40, 4)
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.predict(crs, verbose=0), model.predict(crs, verbose=0))
    assert loaded.get_layer("neighbours").get_config()["nside"] == 4


def test_pointcloud_needs_at_least_one_scale():
    with pytest.raises(ConfigError, match="K must be an integer >= 1"):
        ModelSpec.from_config({"name": "p", "family": "pointcloud", "K": 0})
    ModelSpec.from_config({"name": "p", "family": "pointcloud", "depth": 6}).check_nside(2)


@pytest.fixture(scope="module")
def trained(toy_chunks, tmp_path_factory):
    """The pointcloud network trained 3 epochs on the strong-signal toy set, and the test maps."""
    from crsky.store import open_chunk
    from crsky.train import TrainSettings
    from crsky.train.loop import TrainJob, train

    spec = ModelSpec.from_config(
        {"name": "pc", "family": "pointcloud", "depth": 2, "channels": [16, 16], "K": 4,
         "dense_units": [16], "dropout": 0.0}
    )  # fmt: skip
    settings = {"epochs": 3, "batch_size_per_replica": 32, "learning_rate": 3e-3}
    job = TrainJob(
        spec,
        TrainSettings.from_config({**settings, "shuffle_buffer": 500}),
        toy_chunks["train"],
        toy_chunks["validation"],
        seed=SEED,
    )
    path = train(job, tmp_path_factory.mktemp("pointcloud") / "pc")
    with open_chunk(toy_chunks["test"][0]) as chunk:
        crs, labels = chunk.cosmic_rays(), chunk.labels()
    return keras.models.load_model(path), crs, labels, path.parent


def test_pointcloud_separates_strong_signal_from_isotropy(trained):
    from scipy.stats import mannwhitneyu

    model, crs, labels, _ = trained
    is_signal = labels["n_signal"] > 0
    scores = model.predict({"pixel": crs.pixel.astype(np.int32)}, verbose=0).ravel()
    u = mannwhitneyu(scores[is_signal], scores[~is_signal]).statistic
    assert u / (is_signal.sum() * (~is_signal).sum()) >= 0.9  # ROC AUC, as for the others


def test_lrp_conserves_the_logit_and_follows_the_cr_order(rng):
    from crsky.explain import cr_relevance

    for pooling in ("average", "max"):
        spec = ModelSpec(**{**SMALL.__dict__, "name": f"lrp_{pooling}", "pooling": pooling})
        model = build_model(spec, 8)
        crs = _crs(rng, 6, 80, 8)
        r = cr_relevance(model, crs)
        model_logit = keras.ops.convert_to_numpy(model(crs))  # sigmoid output
        np.testing.assert_allclose(1 / (1 + np.exp(-r.logit)), model_logit.ravel(), rtol=1e-5)
        np.testing.assert_allclose(r.cr.sum(axis=1) + r.bias, r.logit, rtol=1e-6, atol=1e-7)
        order = np.stack([rng.permutation(80) for _ in range(6)])
        shuffled = {k: np.take_along_axis(v, order, axis=1) for k, v in crs.items()}
        moved = cr_relevance(model, shuffled)
        np.testing.assert_allclose(moved.cr, np.take_along_axis(r.cr, order, axis=1), atol=1e-12)


def test_lrp_relevance_concentrates_on_signal_crs(trained):
    # the toy test maps with 20 % signal: the CRs that drive a high score are the signal CRs
    from crsky.explain import cr_relevance

    model, crs, labels, _ = trained
    signal_maps = np.flatnonzero(labels["n_signal"] > 0)[:100]
    r = cr_relevance(model, {"pixel": crs.pixel[signal_maps].astype(np.int32)})
    on_signal = np.where(crs.is_signal[signal_maps], r.cr, 0.0).sum(axis=1)
    positive = np.clip(r.cr, 0, None).sum(axis=1)
    share = np.clip(np.where(crs.is_signal[signal_maps], r.cr, 0.0), 0, None).sum(axis=1)
    assert np.median(share / positive) > 2 * 0.2  # 20 % of the CRs carry over 40 % of it
    assert np.median(on_signal / np.abs(r.cr).sum(axis=1)) > 0.2


def test_crsky_explain_writes_the_share_on_signal_crs(trained, toy_chunks, tmp_path, capsys):
    import json

    from crsky.cli import main

    folder = trained[3]
    check_explain(folder, toy_chunks["test"][0], tmp_path / "explain", n_maps=50)
    args = ["explain", "--test", toy_chunks["test"][0], "--output", tmp_path / "explain"]
    # an unknown family is refused with one line, before loading anything
    other = tmp_path / "mlp"
    other.mkdir()
    (other / "model.keras").write_bytes(b"")
    config = json.loads((folder / "config.json").read_text())
    config["model"]["family"] = "mlp"
    (other / "config.json").write_text(json.dumps(config))
    assert main([*args, "--model", other]) == 2
    err = capsys.readouterr().err
    assert "is a 'mlp' network" in err and "deepsphere, patches, pointcloud" in err
    assert len(err.strip().splitlines()) == 1


def test_workflow_trains_evaluates_and_explains_a_pointcloud_model(checkout, tmp_path):
    import yaml
    from helpers import job_counts, run_snakemake

    models = [{"name": "pc", "family": "pointcloud", "depth": 2, "channels": [8, 8], "K": 3}]
    extra = tmp_path / "pointcloud.yaml"
    extra.write_text(yaml.safe_dump({"models": models}))
    code, output = run_snakemake("-n", "--configfile", str(extra), cwd=checkout, check=False)
    assert code == 0, output
    counts = job_counts(output)
    assert counts["train"] == counts["evaluate"] == counts["explain"] == 1
    assert "results/explain/pc/relevance.png" in output
