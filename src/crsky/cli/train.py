"""``crsky train``: train one model of the config's model list on skymap chunks and write its
folder (model.keras, history.csv, config.json, checkpoints/). A rerun resumes from the
checkpoints."""

import argparse
import os

from crsky.cli._options import add_threads, json_object, non_negative_int, positive_int

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=__doc__, description=__doc__)
    p.add_argument("--output", required=True, help="model folder to write")
    p.add_argument(
        "--model", required=True, help="model spec as a JSON object (one models[] entry)"
    )
    p.add_argument("--train-settings", default="{}", help="the config's train section as JSON")
    p.add_argument("--training", nargs="+", required=True, help="training chunk files (.h5)")
    p.add_argument("--validation", nargs="+", required=True, help="validation chunk files (.h5)")
    p.add_argument("--seed", type=non_negative_int, required=True, help="config seed")
    p.add_argument(
        "--nside", type=positive_int, default=None, help="model nside (default: the chunks')"
    )
    p.add_argument(
        "--cpu-replicas",
        type=positive_int,
        default=1,
        help="without GPUs, split the CPU into this many MirroredStrategy replicas",
    )
    add_threads(p, "TensorFlow threads (default: all)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from crsky.models import ModelSpec
    from crsky.train import TrainSettings

    spec = ModelSpec.from_config(json_object(args.model, "--model"), "model")
    settings = TrainSettings.from_config(json_object(args.train_settings, "--train-settings"))
    if args.threads is not None:  # before TensorFlow starts
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(args.threads))
    from crsky.train.loop import TrainJob, train

    job = TrainJob(
        spec, settings, args.training, args.validation, args.seed, args.nside, args.cpu_replicas
    )
    train(job, args.output)
