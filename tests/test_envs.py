"""Conda environment files for ``--sdm conda``, checked without conda (none is installed here).

Every pip and conda requirement of envs/*.yaml is resolved against pyproject.toml's pins (and the
installed TensorFlow's own pins, e.g. h5py < 3.15); the files hold no path that breaks when
Snakemake copies them into .snakemake/conda/; the post-deploy script installs crsky from the
checkout named by CRSKY_SOURCE into a fresh environment (a venv stands in for the conda env).
"""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, snakemake, workflow_copy
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from crsky.envs import ENV_FILES, check_env_file, env_pins, pyproject_requirements
from crsky.errors import ConfigError

PYPROJECT = REPO / "pyproject.toml"


def tensorflow_pins(pins: dict) -> list[Requirement]:
    """The installed TensorFlow's own requirements on packages the environment pins."""
    try:
        lines = importlib.metadata.requires("tensorflow-cpu") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("TensorFlow (the train extra) is not installed")
    reqs = [Requirement(line) for line in lines]
    return [r for r in reqs if r.marker is None and canonicalize_name(r.name) in pins]


@pytest.mark.parametrize(("name", "extras"), ENV_FILES.items())
def test_every_requirement_resolves_against_pyproject(name, extras):
    path = REPO / name
    requirements = pyproject_requirements(PYPROJECT, extras)
    assert {r.name for r in requirements} >= {"python", "numpy", "h5py", "healpy"}
    check_env_file(path, requirements)
    if "gpu" in extras:  # the pins TensorFlow itself places on the conda packages
        check_env_file(path, tensorflow_pins(env_pins(path)))


def test_gpu_extra_is_the_cpu_extra_with_the_cuda_build():
    train = {canonicalize_name(r.name): r for r in pyproject_requirements(PYPROJECT, ("train",))}
    gpu = {canonicalize_name(r.name): r for r in pyproject_requirements(PYPROJECT, ("gpu",))}
    cpu_tf, gpu_tf = train.pop("tensorflow-cpu"), gpu.pop("tensorflow")
    assert gpu_tf.extras == {"and-cuda"} and gpu_tf.specifier == cpu_tf.specifier
    assert train == gpu


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("h5py=3.14", "h5py=3.16", "'h5py=3.16' does not satisfy h5py"),
        ("numpy=2.4", "numpy", "'numpy' is not pinned"),
        ("  - numba=0.68\n", "", "numba>=0.60 (pyproject.toml) is not in the environment"),
        ("tensorflow[and-cuda]==2.21.0", "tensorflow==2.21.0", "lacks the extras"),
        ("tensorflow[and-cuda]==2.21.0", "tensorflow[and-cuda]==2.20.0", "does not satisfy"),
        ("keras==3.15.1", "--editable ..", "installs from a path or URL"),
    ],
)
def test_an_env_file_that_cannot_resolve_is_named(tmp_path, old, new, message):
    original = (REPO / "envs/train.yaml").read_text()
    assert old in original
    bad = tmp_path / "train.yaml"
    bad.write_text(original.replace(old, new))
    requirements = pyproject_requirements(PYPROJECT, ("gpu",))
    requirements += tensorflow_pins(env_pins(REPO / "envs/train.yaml"))
    with pytest.raises(ConfigError, match=r"train\.yaml") as err:
        check_env_file(bad, requirements)
    assert message in str(err.value)


def test_sdm_conda_with_an_unresolvable_env_file_stops_before_any_job(tmp_path):
    workdir = workflow_copy(tmp_path)
    env = workdir / "envs/crsky.yaml"
    env.write_text(env.read_text().replace("numpy=2.4", "numpy=1.26"))
    output = snakemake("-n", "--sdm", "conda", cwd=workdir, check=False)
    assert "envs/crsky.yaml: 'numpy=1.26' does not satisfy numpy>=2.0" in output
    assert "Job stats" not in output


@pytest.mark.slow
def test_post_deploy_script_installs_this_checkout_into_a_fresh_environment(tmp_path):
    """What Snakemake runs after `conda env create` (inside the new env), with a venv as the
    environment: crsky ends up importable from the checkout named by CRSKY_SOURCE."""
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    path = f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}"
    for name in ENV_FILES:
        script = (REPO / name).with_suffix(".post-deploy.sh")
        result = subprocess.run(
            ["bash", str(script)],
            env=dict(os.environ, PATH=path, CRSKY_SOURCE=str(REPO)),
            cwd=tmp_path,  # not the checkout: the script must not rely on the working directory
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    located = subprocess.run(
        [str(env / "bin/python"), "-c", "import crsky; print(crsky.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert Path(located) == REPO / "src/crsky/__init__.py"
