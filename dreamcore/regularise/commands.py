"""`dreamcore class-images generate CONFIG...`: draw regularisation images in this process, no Prefect."""

from __future__ import annotations

import argparse
import json
import sys

from dreamcore.config.loader import load_run_config, warn_on_stderr
from dreamcore.storage import ArtifactStore


def register(commands) -> None:
    """Add the `class-images` command group to the dreamcore CLI."""
    group = commands.add_parser("class-images", help="class (regularisation) images drawn by the base model")
    actions = group.add_subparsers(required=True, metavar="ACTION")
    generate = actions.add_parser("generate", help="generate the images config.class_images asks for (resumable)")
    generate.add_argument(
        "files", nargs="+", help="config.json (its data_backend_config is followed) and/or dataset lists"
    )
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    from dreamcore.regularise.runner import run_class_images

    config = load_run_config(*args.files, on_warning=warn_on_stderr)
    if config.training.class_images is None:
        print("nothing to do: class_images is not set in the config", file=sys.stderr)
        return 0
    store = ArtifactStore(config.training.resolved_storage_root)
    for dataset_id, result in run_class_images(config, store).items():
        print(
            f"dataset {dataset_id!r}: {result['counts']['images']} class images "
            f"({len(result['generated'])} generated now) in {result['details']['data_uri']}"
        )
        print("dataset config entry:")
        print(json.dumps(store.read_json(result["details"]["snippet"]), indent=2))
    return 0
