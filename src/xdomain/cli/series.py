"""``xdomain classify``: a frozen speech or vision model reprogrammed to classify UCR time series
(TimeSeriesClassifier) or audio/fsdd recordings (AudioClassifier), beside a logistic regression."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from xdomain.backbones.audio_features import VGGishLogMel
from xdomain.backbones.speech import VGGishBackbone
from xdomain.baselines.log_mel import log_mel_statistics
from xdomain.cli.common import (
    LIMIT_HELP,
    TRAINING,
    Subparsers,
    add_run,
    add_training,
    classify_and_report,
    given,
    limit_note,
    limit_split,
    linear_size,
    log,
    positive,
    set_threads,
)
from xdomain.cli.outdir import out_folder
from xdomain.datasets.frames import series_matrix
from xdomain.datasets.fsdd import load_fsdd
from xdomain.datasets.ucr import load_ucr
from xdomain.estimators.audio import AudioClassifier
from xdomain.estimators.series import PROGRAMS, TimeSeriesClassifier
from xdomain.heads.label_mapping import MAPPINGS


def dataset_name(text: str) -> str:
    """``UCR/<name>`` or ``audio/fsdd``, spelled canonically (the UCR name itself is checked on loading)."""
    family, _, name = text.partition("/")
    if family.lower() == "ucr" and name and "/" not in name:
        return f"UCR/{name}"
    if text.lower() == "audio/fsdd":
        return "audio/fsdd"
    raise argparse.ArgumentTypeError(
        f"unknown data set {text!r}; expected UCR/<name> (a UCR archive set in the data home, e.g. "
        "UCR/GunPoint) or audio/fsdd"
    )


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "classify",
        help="reprogram a frozen speech or vision model to classify time series or audio (Voice2Series)",
        description="Train on the official TRAIN split (the best epoch picked on a validation cut of it), "
        "report accuracy on every sample of the official TEST split, trainable parameters and train "
        "seconds, beside a logistic-regression baseline trained and scored in the same run. UCR sets use "
        "TimeSeriesClassifier; audio/fsdd uses AudioClassifier (FSDD's official split).",
    )
    p.add_argument(
        "--dataset",
        required=True,
        type=dataset_name,
        help="UCR/<name> (e.g. UCR/GunPoint, from <data home>/UCR/<name>/) or audio/fsdd",
    )
    p.add_argument(
        "--backbone",
        default=None,
        help="crepe-tiny (UCR default), crepe-full, speaker-encoder (audio default), efficientnet-lite0 "
        "(series as images), or none (no backbone: a linear head reads the programmed input)",
    )
    p.add_argument(
        "--mapping",
        default=None,
        choices=MAPPINGS,
        help="output alignment: a label mapping over the source classes, or a linear head "
        "(default ilm for UCR, linear for audio)",
    )
    p.add_argument(
        "--program",
        default=None,
        choices=PROGRAMS,
        help="where the additive program acts (default full; outside is for UCR series only; audio takes "
        "full or none)",
    )
    p.add_argument(
        "--clip-length",
        type=positive,
        default=None,
        help="UCR: samples per waveform for a speech backbone given by name (default the estimator's, "
        "4,096; vggish needs at least 15,600 and defaults to 16,000, one second)",
    )
    p.add_argument(
        "--backbone-weights",
        metavar="PATH_OR_URL",
        default=None,
        help="vggish only: the torchvggish state dict (a local file, or an https URL downloaded once); "
        "without it VGGish has random weights",
    )
    p.add_argument(
        "--missing",
        default=None,
        choices=("error", "interpolate"),
        help="UCR series with NaN values: an error (default), or interpolate them linearly (for the "
        "baseline too)",
    )
    add_training(p, "30 epochs, batch 16, lr 0.01, patience 10, validation fraction 0.2")
    add_run(p, LIMIT_HELP)
    p.add_argument("--no-baseline", action="store_true", help="skip the logistic-regression baseline")
    p.set_defaults(handler=run)


def _estimator_settings(args: argparse.Namespace, audio: bool) -> dict[str, Any]:
    """The estimator's keyword arguments from the flags given; ``--backbone vggish`` made an instance."""
    params = given(args, ("backbone", "mapping", "program", "missing", *TRAINING))
    vggish = args.backbone == "vggish"
    if args.backbone_weights is not None and not vggish:
        raise ValueError(f"--backbone-weights is for --backbone vggish, got --backbone {args.backbone!r}")
    if args.clip_length is not None and audio:
        raise ValueError("--clip-length applies to UCR series; audio/fsdd clips keep the backbone's length")
    clip = args.clip_length or (16000 if vggish else None)
    if vggish:
        if clip is not None and clip < VGGishLogMel.min_samples():
            raise ValueError(
                f"--clip-length {clip} is too short for vggish: it needs at least "
                f"{VGGishLogMel.min_samples()} samples (one 0.96 s log-mel example at 16 kHz)"
            )
        params["backbone"] = VGGishBackbone(weights=args.backbone_weights, input_length=clip or 16000)
    elif clip is not None:
        params["clip_length"] = clip
    return params


def run(args: argparse.Namespace) -> int:
    set_threads(args)
    audio = args.dataset == "audio/fsdd"
    if audio and args.program == "outside":
        raise ValueError(
            "--program outside places the program around a series; audio/fsdd takes --program full or none"
        )
    if audio and args.missing is not None:
        raise ValueError("--missing applies to UCR series; audio/fsdd holds no missing values")
    folder = out_folder(args.out, args.overwrite)
    x_train: Any
    x_test: Any
    if audio:
        train_set, test_set = load_fsdd("train", args.data_home), load_fsdd("test", args.data_home)
        x_train, y_train = train_set.paths, train_set.labels
        x_test, y_test = test_set.paths, test_set.labels
    else:
        name = args.dataset.split("/", 1)[1]
        x_train, y_train = load_ucr(name, "train", args.data_home)
        x_test, y_test = load_ucr(name, "test", args.data_home)
    x_train, y_train, x_test, y_test = limit_split(x_train, y_train, x_test, y_test, args.limit, args.seed)
    log(
        f"{args.dataset}: {len(y_train)} training and {len(y_test)} test samples, "
        f"{len(np.unique(y_train))} classes" + limit_note(args.limit)
    )
    params = _estimator_settings(args, audio)
    est: Any = (AudioClassifier if audio else TimeSeriesClassifier)(
        **params, random_state=args.seed, verbose=args.verbose
    )
    s = est.get_params()
    baseline = None
    if not args.no_baseline:
        features: Callable[[Any], Any] = (
            log_mel_statistics if audio else functools.partial(series_matrix, missing=args.missing or "error")
        )
        what = "mean and std of 40 log-mel bands" if audio else "the raw series"
        pipeline = make_pipeline(
            FunctionTransformer(features), StandardScaler(), LogisticRegression(max_iter=5000)
        )
        baseline = (pipeline, f"logistic regression on {what}", lambda b: linear_size(b[-1]))
    head = {
        "command": "classify",
        "dataset": args.dataset,
        "split": "official TRAIN/TEST" if not audio else "official FSDD split (recording index 0-4 test)",
    }
    return classify_and_report(
        args,
        folder,
        head,
        est,
        f"{s['backbone']} + {s['mapping']} (program {s['program']})",
        baseline,
        (x_train, y_train),
        (x_test, y_test),
    )
