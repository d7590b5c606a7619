"""crsky train: train one model of the config's model list on skymap chunks."""

import argparse
import os

from crsky.cli._options import (
    add_stage,
    add_threads,
    json_object,
    non_negative_int,
    output_path,
    positive_int,
)

__all__ = ["PARSERS"]

_DESCRIPTION = """\
Train one model of the config's model list on skymap chunks and write its folder (model.keras,
history.csv, timings.csv, config.json, checkpoints/). A rerun resumes from the checkpoints.
Needs TensorFlow: pip install -e '.[train]' (CPU) or -e '.[gpu]' (NVIDIA GPUs)."""


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = add_stage(sub, name, help, _DESCRIPTION)
    p.add_argument("--output", type=output_path, required=True, help="model folder to write")
    p.add_argument(
        "--model", required=True, help="model spec as a JSON object (one entry of config models)"
    )
    p.add_argument(
        "--train-settings", default="{}", help="the config's train section as a JSON object"
    )
    p.add_argument("--training", nargs="+", required=True, help="training chunk files (.h5)")
    p.add_argument("--validation", nargs="+", required=True, help="validation chunk files (.h5)")
    p.add_argument("--seed", type=non_negative_int, required=True, help="master seed of the config")
    p.add_argument(
        "--nside",
        type=positive_int,
        default=None,
        help="HEALPix nside of the model's input maps (default: the chunks')",
    )
    p.add_argument(
        "--cpu-replicas",
        type=positive_int,
        default=1,
        help="without GPUs, split the CPU into this many MirroredStrategy replicas",
    )
    add_threads(p, "TensorFlow threads (default: all cores)")
    p.set_defaults(run=run)


PARSERS = {"train": add_parser}


def run(args: argparse.Namespace) -> None:
    from crsky.models import ModelSpec
    from crsky.train import TrainSettings

    spec = ModelSpec.from_config(json_object(args.model, "--model"), "model")
    settings = TrainSettings.from_config(json_object(args.train_settings, "--train-settings"))
    if args.threads is not None:  # before TensorFlow starts
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(args.threads))
    from crsky._tf_import import import_tensorflow

    import_tensorflow()
    from crsky.train.loop import TrainJob, train

    job = TrainJob(
        spec, settings, args.training, args.validation, args.seed, args.nside, args.cpu_replicas
    )
    train(job, args.output)
