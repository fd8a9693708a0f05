"""The `dreamcore` command. The one door upward: `run` may start Prefect flows (imported lazily)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path

from dreamcore.config import ConfigError, RunConfig, load_config
from dreamcore.config.loader import LoadedConfig, load_run_config, note_on_stderr, warn_on_stderr
from dreamcore.config.options.webhooks import plain_secrets
from dreamcore.storage.faults import RunFault

# Areas that add their own subcommands: each module has `register(commands)` taking the
# subparsers object, and must not import heavy libraries at module level (keeps --help instant).
COMMAND_MODULES: tuple[str, ...] = ("dreamcore.masks.commands", "dreamcore.regularise.commands",
                                    "dreamcore.tokens.commands", "dreamcore.evaluate.commands", "dreamcore.gc.commands")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dreamcore` console script."""
    _temporary_server_settings()
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        # One line per problem, no traceback: the config is wrong, not the program.
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        for warning in error.warnings:
            warn_on_stderr(warning)
        return 2
    except RunFault as error:  # disk full, read-only storage, missing folders or credentials: one line
        print(f"error: {error}", file=sys.stderr)
        return 2


def _temporary_server_settings() -> None:
    """Without PREFECT_API_URL, a run starts a temporary Prefect server from this process's settings. Its
    telemetry would reach out to the internet (and fail offline with an ERROR), so it is off; its first start
    migrates a fresh database, which takes longer than Prefect's 20 s on a busy machine, so it may take 2 min.
    Set before Prefect is imported, so the server subprocess and the SDK's own analytics (which asks the same
    setting when there is no API URL) see them too. A server of your own keeps its settings (these reach only
    servers this process starts), and an explicit environment variable wins."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamcore", description="Dreambooth fine-tuning as a Prefect pipeline.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    config = commands.add_parser("config", help="check config files").add_subparsers(required=True, metavar="ACTION")
    check = config.add_parser("check", help="print the resolved config or its errors")
    check.add_argument("files", nargs="+", help="config.json and/or multidatabackend.json files (merged in order)")
    check.set_defaults(handler=_config_check)

    run = commands.add_parser("run", help="run the dreambooth flow, or one stage locally")
    run.add_argument("files", nargs="+", help="config.json (its data_backend_config is followed) and/or dataset lists")
    local = run.add_mutually_exclusive_group()
    local.add_argument("--stage", help="run only this stage, in this process, without Prefect (for debugging)")
    local.add_argument("--until", metavar="STAGE",
                       help="run the stages up to and including STAGE in this one process, without Prefect")
    local.add_argument("--stages", metavar="A,B,C", help="run these stages (in pipeline order) in this one process, "
                       "without Prefect")
    run.add_argument("--quick", action="store_true",
                     help="evaluate with the protocol's quick subset (5 prompts; sets evaluation_quick)")
    run.set_defaults(handler=_run)

    sweep = commands.add_parser("sweep", help="train and evaluate a grid or random search of training keys, ranked")
    sweep.add_argument("config", help="the run's config.json (its data_backend_config is followed)")
    sweep.add_argument("spec", help="SWEEP.json: name, mode (grid|random), parameters, rank_by, max_concurrent ...")
    sweep.set_defaults(handler=_sweep)

    demo = commands.add_parser("demo", help="build tiny models and a demo dataset, then run the pipeline")
    demo.add_argument("--workdir", default=".dreamcore/demo", help="where models, data and artifacts go")
    demo.add_argument("--no-run", action="store_true", help="only write the models, data and config files")
    demo.add_argument("--family", help="model family of the tiny base model (e.g. sd3, flux); default: SD 1.x")
    demo.add_argument("--json", action="store_true", help="end with every stage's result as JSON (as `run` prints "
                      "it) instead of the short summary")
    demo.set_defaults(handler=_demo)

    serve = commands.add_parser("serve", help="register the Prefect deployments (with a schedule) and run them")
    serve.add_argument("files", nargs="+", help="config files giving the deployments' default parameters")
    serve.add_argument("--cron", default="0 3 * * 0", help="retraining schedule (cron); '' for none")
    serve.add_argument("--name", default="default", help="deployment name (flow name/deployment name)")
    serve.add_argument("--gpus", type=int, default=1, help="slots of the dreamcore-gpu concurrency limit")
    serve.add_argument("--gc-cron", default="", help="schedule (cron) of the gc deployment, which deletes what "
                       "neither the config nor a run record needs; '' (default) for none")
    serve.set_defaults(handler=_serve)

    tiny = commands.add_parser("tiny-models", help="write tiny random-weight models (offline) into a folder")
    tiny.add_argument("folder")
    tiny.set_defaults(handler=_tiny_models)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def _config_check(args: argparse.Namespace) -> int:
    loaded = load_config(*args.files)
    _report(loaded)
    _report_defaults(loaded)
    resolved: dict = {}
    if loaded.training is not None:
        resolved["training"] = loaded.training.model_dump(mode="json")
    if loaded.datasets is not None:
        resolved["datasets"] = [d.model_dump(mode="json") for d in loaded.datasets]
    if _is_a_run(loaded):
        _checked_run_config(loaded)  # everything `run` would refuse at start-up
    else:
        note_on_stderr("a config fragment (no datasets, no model): checked on its own; `dreamcore run` also needs "
                       "pretrained_model_name_or_path and a data_backend_config")
    print(json.dumps(resolved, indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        chain = _local_chain(args)
    except ValueError as error:  # an unknown stage name: said before the config and models load
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = _config_to_run(args.files, args.quick)
    if args.stage or chain:  # stages in this process, without Prefect
        from dreamcore.pipeline import run_stage_locally, run_stages_locally

        _log_dreamcore_info()  # e.g. "train/<key> is being computed by <owner>; waiting for its commit"
        _add_checkout_to_path()
        from tasks.secrets import with_secret_blocks_loaded

        config = with_secret_blocks_loaded(config)  # webhook Secret blocks, in memory only
        done = run_stage_locally(config, args.stage) if args.stage else run_stages_locally(
            config, chain, on_stage=_print_stage_line)
        print(json.dumps(done, indent=2))
        return 0
    print(json.dumps(run_dreambooth(config), indent=2, default=str))
    return 0


def _config_to_run(files: list[str], quick: bool) -> RunConfig:
    """The config files as the RunConfig a run starts with (warnings and notes said; ConfigError otherwise)."""
    loaded = load_config(*files)
    _report(loaded)
    _report_defaults(loaded)
    return with_quick_evaluation(_checked_run_config(loaded), quick)


def _report(loaded: LoadedConfig) -> None:
    for warning in loaded.warnings:
        warn_on_stderr(warning)
    for notice in loaded.notices:
        note_on_stderr(notice)


def _report_defaults(loaded: LoadedConfig) -> None:
    """`config check` and `run`: the unset keys whose default is not SimpleTuner's, and why."""
    for note in loaded.default_notes:
        note_on_stderr(note)


def _is_a_run(loaded: LoadedConfig) -> bool:
    """Files that name a model or datasets are meant to run; anything else is a fragment to merge later."""
    explicit_model = loaded.training is not None and "pretrained_model_name_or_path" in loaded.training.model_fields_set
    return loaded.datasets is not None or explicit_model


def _checked_run_config(loaded: LoadedConfig) -> RunConfig:
    """The RunConfig, or ConfigError with everything that would stop a run at start-up."""
    from dreamcore.data.preflight import preflight_problems

    config = loaded.run_config()
    problems = preflight_problems(config, ", ".join(loaded.sources))
    if problems:
        raise ConfigError(problems)
    return config


def with_quick_evaluation(config, quick: bool):
    """`--quick`: the config with evaluation_quick on (validated: the key is in the evaluate stage key)."""
    if not quick:
        return config
    training = type(config.training).model_validate(config.training.model_dump() | {"evaluation_quick": True})
    return config.model_copy(update={"training": training})


def _log_dreamcore_info() -> None:
    """dreamcore's INFO lines on stderr for a stage run in this process (no Prefect logging here)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("dreamcore").setLevel(logging.INFO)


def _local_chain(args: argparse.Namespace) -> list[str]:
    """The stages of `--until`/`--stages` (empty otherwise); `--stage` is checked here too. ValueError
    naming the stages for an unknown name."""
    if not (args.stage or args.until or args.stages):
        return []
    from dreamcore.pipeline import chosen_stages, find_stage, stages_until

    if args.stage:
        find_stage(args.stage)
        return []
    return stages_until(args.until) if args.until else chosen_stages(args.stages)


def _print_stage_line(name: str, summary: dict) -> None:
    print(f"stage {name}: {summary['status']} in {summary['seconds']:.2f} s, peak RSS {summary['peak_rss_mb']:.0f} MB",
          file=sys.stderr, flush=True)


def run_dreambooth(config) -> dict:
    """Run the dreambooth flow in this process (what `dreamcore run` does) and return its results.

    Without a Prefect server (PREFECT_API_URL unset: a temporary in-process API) no runner watches
    flow-run heartbeats, so they are switched off: Prefect 3.9 joins its heartbeat thread for up to
    a second when a flow ends, most of a warm (all Cached) rerun.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    dreambooth = _import_flows().dreambooth
    if PREFECT_API_URL.value():
        return dreambooth(config)
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return dreambooth(config)


def _sweep(args: argparse.Namespace) -> int:
    from dreamcore.sweep import load_sweep, sweep_points

    loaded = load_config(args.config)
    _report(loaded)
    config = _checked_run_config(loaded)
    spec = load_sweep(args.spec)
    sweep_points(config, spec)  # every point validated before anything runs
    _add_checkout_to_path()
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.sweep import sweep

    if PREFECT_API_URL.value():
        outcome = sweep(config, spec)
    else:
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            outcome = sweep(config, spec)
    print(json.dumps(outcome, indent=2, default=str))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dreamcore.demo import run_summary, write_demo_project

    try:
        config_path = write_demo_project(Path(args.workdir), args.family, subject_fidelity=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"demo project written: {config_path}")
    if args.no_run:
        return 0
    results = run_dreambooth(_config_to_run([str(config_path)], quick=False))  # exactly `dreamcore run CONFIG`
    print(json.dumps(results, indent=2, default=str) if args.json else run_summary(results))
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = load_run_config(*args.files, on_warning=warn_on_stderr, on_notice=note_on_stderr)
    plain = plain_secrets(config.training.webhook_config)
    if plain:  # Prefect stores a deployment's parameters redacted: the run could never read these
        raise RunFault(f"{', '.join(plain)}: a secret written in the config cannot reach a deployment run (Prefect "
                       "stores parameters redacted); name it instead with the matching *_env or *_secret key")
    _add_checkout_to_path()
    from deployments.serve import serve_deployments

    serve_deployments(config, cron=args.cron or None, name=args.name, gpus=args.gpus, gc_cron=args.gc_cron or None)
    return 0


def _tiny_models(args: argparse.Namespace) -> int:
    from dreamcore.models.tiny import write_tiny_models

    for name, folder in write_tiny_models(Path(args.folder)).items():
        print(f"{name}: {folder}")
    return 0


def _import_flows():
    _add_checkout_to_path()
    import flows.dreambooth

    return flows.dreambooth


def _add_checkout_to_path() -> None:
    """flows/, tasks/ and deployments/ sit beside the dreamcore package: at the repository root in a
    checkout (put on sys.path here, as Prefect deployments from a checkout expect), or in site-packages
    when installed from the wheel (importable already)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "flows" / "dreambooth.py").exists():
        raise SystemExit(f"flows/ not found beside the dreamcore package ({root}): reinstall dreamcore "
                         "(`pip install .` ships flows/, tasks/ and deployments/) or run from a checkout")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


if __name__ == "__main__":
    raise SystemExit(main())
