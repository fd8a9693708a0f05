"""`dreamcore masks generate CONFIG...`: make (or check) masked-loss masks in this process, no Prefect."""

from __future__ import annotations

import argparse
import json
import sys

from dreamcore.config.loader import load_run_config, warn_on_stderr
from dreamcore.storage import ArtifactStore


def register(commands) -> None:
    """Add the `masks` command group to the dreamcore CLI."""
    masks = commands.add_parser("masks", help="masked-loss masks: generate with CLIPSeg or check yours")
    actions = masks.add_subparsers(required=True, metavar="ACTION")
    generate = actions.add_parser(
        "generate", help="generate masks for mask_generation.dataset and check user-provided mask datasets"
    )
    generate.add_argument(
        "files", nargs="+", help="config.json (its data_backend_config is followed) and/or dataset lists"
    )
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    from dreamcore.masks.runner import run_masks

    config = load_run_config(*args.files, on_warning=warn_on_stderr)
    store = ArtifactStore(config.training.resolved_storage_root)
    results = run_masks(config, store)
    if not results:
        print("nothing to do: set mask_generation, or conditioning_data on an image dataset", file=sys.stderr)
    for dataset_id, result in results.items():
        details = result["details"]
        print(
            f"dataset {dataset_id!r}: {result['counts']['masks']} masks ({details['mode']}), report {result['report_uri']}"
        )
        for path in details["undetected"]:
            print(f"  flagged: {path}: nothing detected, all-white mask")
        if details["mode"] == "generate":
            print("dataset config entry for the generated masks:")
            print(json.dumps(store.read_json(details["snippet"]), indent=2))
    return 0
