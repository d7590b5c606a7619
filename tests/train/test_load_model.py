"""The contract for loading a saved model outside the pipeline (crsky.models docstring):
``crsky.models.load_model(path)``, or ``crsky.models.register_keras_objects()`` followed by plain
``keras.saving.load_model(path, safe_mode=True)``, loads either family; ``import crsky`` and the
CLI's argument parsing stay free of TensorFlow."""

import json
import subprocess
import sys

import numpy as np
import pytest

from crsky.models import FAMILIES, ModelSpec

pytest.importorskip("tensorflow")

LOADER = """
import json, sys
import numpy as np
import keras

crs = {k: np.asarray(v, dtype=np.int32 if k == "pixel" else np.float32)
       for k, v in json.loads(sys.argv[1]).items()}
out = {}
for path in sys.argv[2:]:
    try:
        keras.saving.load_model(path, safe_mode=True)
        out["plain_keras_" + path] = "loaded"
    except Exception as err:  # not registered yet: Keras does not know crsky's layers
        out["plain_keras_" + path] = type(err).__name__ + ": " + str(err)[:3000]
import crsky.models
for path in sys.argv[2:]:
    a = crsky.models.load_model(path).predict(crs, verbose=0)
    crsky.models.register_keras_objects()
    b = keras.saving.load_model(path, safe_mode=True).predict(crs, verbose=0)
    out[path] = [a.ravel().tolist(), b.ravel().tolist()]
print(json.dumps(out))
"""


def test_saved_models_of_both_families_load_in_a_fresh_process(tmp_path, rng):
    from crsky.train.loop import build_cr_model

    crs = {
        "pixel": rng.integers(0, 192, size=(4, 30)).astype(np.int32),
        "log10_energy": rng.uniform(19.6, 20.5, size=(4, 30)).astype(np.float32),
    }
    paths, expected = [], {}
    for family in FAMILIES:
        spec = ModelSpec(name=family, family=family, depth=2, channels=(4, 4), K=2,
                         dense_units=(8,), inputs=("counts", "mean_log10_energy"))  # fmt: skip
        model = build_cr_model(spec, 4)
        path = str(tmp_path / f"{family}.keras")
        model.save(path)
        paths.append(path)
        expected[path] = model.predict(crs, verbose=0).ravel()
    result = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps({k: v.tolist() for k, v in crs.items()}), *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.splitlines()[-1])
    for path in paths:
        # plain Keras does not know crsky's layers until they are registered ...
        assert "'registered_name': 'crsky>" in out[f"plain_keras_{path}"]
        # ... crsky.models.load_model and registered plain Keras give the saved model back
        via_crsky, via_keras = out[path]
        np.testing.assert_allclose(via_crsky, expected[path], rtol=1e-6)
        np.testing.assert_allclose(via_keras, expected[path], rtol=1e-6)


def test_import_crsky_and_cli_parsing_do_not_import_tensorflow():
    probe = (
        "import sys, crsky, crsky.models, crsky.cluster, crsky.envs, crsky.train\n"
        "from crsky.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
