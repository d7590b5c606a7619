"""Train and evaluate jobs report, in their logs, the devices they see: TensorFlow's build (CUDA
or CPU-only), each visible GPU with its compute capability, and the batch system's GPU assignment
(no GPU here: the CPU-only path, and the error a GPU request meets on it)."""

import os
import subprocess

from train_toy import TINY_DEEPSPHERE, train_command

SETTINGS = {"epochs": 1, "batch_size_per_replica": 64, "shuffle_buffer": 500}


def run(tmp_path, settings, toy_chunks, **env) -> subprocess.CompletedProcess:
    """``crsky train`` without any GPU assignment variable of the calling shell, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if "GPU" not in k and "CUDA" not in k}
    return subprocess.run(
        train_command(tmp_path / "model", TINY_DEEPSPHERE, settings, toy_chunks),
        capture_output=True,
        text=True,
        check=False,
        env={**clean, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
    )


def test_a_gpu_request_on_a_cpu_only_build_names_the_build_and_the_assignment(toy_chunks, tmp_path):
    result = run(tmp_path, {**SETTINGS, "gpus": 2}, toy_chunks, _CONDOR_AssignedGPUs="GPU-0d1e")
    assert result.returncode == 2
    log = result.stderr
    assert "devices: TensorFlow 2." in log and "CPU-only build; GPUs visible: none" in log
    assert "GPU assignment: _CONDOR_AssignedGPUs=GPU-0d1e" in log
    assert "'train.gpus' is 2 but this job sees 0 GPU(s)" in log
    assert "CPU-only build); request fewer or run on a GPU node with the gpu extra" in log


def test_a_cpu_job_logs_its_devices(toy_chunks, tmp_path):
    result = run(tmp_path, SETTINGS, toy_chunks)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GPUs visible: none; GPU assignment: none" in result.stderr
