"""Benchmark: how fast the `dreamcore` command reaches its first unit of work.

Every figure is the fastest of --repeats fresh processes (the least disturbed on a shared machine):
- the interpreter alone (`python -c pass`), `import dreamcore.cli`, `dreamcore --help` and
  `dreamcore config check` (none should import torch, diffusers, transformers, peft, pyarrow or prefect:
  the heavy modules each loads are listed);
- a stage whose work is committed (`dreamcore run CONFIG --stage ingest|cache|train`): everything a
  stage costs before it would start working (imports, config, keys, the committed-marker look-up);
- the first training step of a cold train stage (caches committed; `--stage train`) and of cold
  ingest + cache + train (`--until train`, one process; a tree without it: three `--stage` processes):
  seconds from the (first) process start to the line tqdm prints for step 1.

--trees measures several checkouts side by side (e.g. `git archive COMMIT | tar -x -C DIR` for the one
before a change), taking turns so that a busy moment falls on all alike.

    .venv/bin/python benchmarks/startup.py                       # writes benchmarks/results/startup.md
    .venv/bin/python benchmarks/startup.py --trees /tmp/before . --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "startup.md"
HEAVY = ("torch", "diffusers", "transformers", "peft", "accelerate", "pyarrow", "datasets", "prefect")
# Run in the measured process after the command: which heavy modules the command imported.
LOADED = "import sys; print('LOADED', ','.join(m for m in {heavy!r} if m in sys.modules))"


def short_demo(work: Path) -> Path:
    """The demo project (tiny SD) with 4 training steps and no validation: a config for every stage."""
    from dreamcore.demo import write_demo_project

    config = write_demo_project(work / "demo")
    keys = {k: v for k, v in json.loads(config.read_text()).items() if "validation" not in k and "eval" not in k}
    config.write_text(json.dumps(keys | {"--max_train_steps": 4, "--checkpointing_steps": 4}))
    return config


def environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1",
                "TQDM_BAR_FORMAT": "{desc} {n_fmt}/{total_fmt}\n", "TOKENIZERS_PARALLELISM": "false",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    return env


def cli_code(argv: list[str]) -> str:
    """Python that runs `dreamcore ARGV` and then prints the heavy modules it imported."""
    return (f"from dreamcore.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            + LOADED.format(heavy=HEAVY))


def timed(code: str, env: dict[str, str], until_line: str | None = None) -> tuple[float, list[str]]:
    """Seconds from starting `python -c code` to its exit (or to the first output line starting with
    `until_line`, after which the process is left to finish), and the heavy modules it reported."""
    started = time.perf_counter()
    # cwd: the checkout measured, which `python -c` puts first on sys.path (before PYTHONPATH).
    process = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=env["PYTHONPATH"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    seconds, loaded = None, []
    for line in process.stdout:
        if until_line is not None and seconds is None and line.startswith(until_line):
            seconds = time.perf_counter() - started
        if line.startswith("LOADED"):
            loaded = [m for m in line.split(" ", 1)[1].strip().split(",") if m]
    if process.wait() != 0:
        raise RuntimeError(f"{code[:80]!r} exited {process.returncode}")
    if until_line is not None and seconds is None:
        raise RuntimeError(f"no line starting {until_line!r} from {code[:80]!r}")
    return (seconds if seconds is not None else time.perf_counter() - started), loaded


def measurements(tree: Path, work: Path) -> dict[str, Callable[[], tuple[float, list[str]]]]:
    """What to measure against the checkout at `tree`, by label: callables returning (seconds, heavy modules).
    Commits the demo's ingest, cache and train first (a demo project of its own under `work`)."""
    env = environment(tree)
    config = short_demo(work)
    root = work / "demo" / "artifacts"
    for stage in ("ingest", "cache", "train"):  # each run commits what the next one needs
        timed(cli_code(["run", str(config), "--stage", stage]), env)

    def first_step(argv: list[str], keep: tuple[str, ...]):
        for folder in root.iterdir():  # back to cold, keeping the stages named in `keep`
            if folder.name not in keep:
                shutil.rmtree(folder)
        return timed(cli_code(argv), env, until_line="train 1/")

    cached = ("ingest", "latents", "text_embeds", "vae_cache", "text_cache", "masks")
    runs = {
        "python -c pass": lambda: timed("pass", env),
        "import dreamcore.cli": lambda: timed("import dreamcore.cli\n" + LOADED.format(heavy=HEAVY), env),
        "dreamcore --help": lambda: timed(cli_code(["--help"]), env),
        "dreamcore config check CONFIG": lambda: timed(cli_code(["config", "check", str(config)]), env),
    }
    for stage in ("ingest", "cache", "train"):
        code = cli_code(["run", str(config), "--stage", stage])
        runs[f"--stage {stage}, committed (nothing to do)"] = lambda code=code: timed(code, env)
    runs["--stage train, cold (caches committed): to step 1"] = (
        lambda: first_step(["run", str(config), "--stage", "train"], cached))
    runs["ingest + cache + train, cold: to step 1"] = (
        (lambda: first_step(["run", str(config), "--until", "train"], ()))
        if "--until" in (tree / "dreamcore" / "cli.py").read_text() else _separate_stages(config, env, root))
    return runs


def _separate_stages(config: Path, env: dict[str, str], root: Path):
    """A tree without `--until`: ingest, cache and train as three processes, timed to train's step 1."""
    def run():
        shutil.rmtree(root, ignore_errors=True)
        seconds = sum(timed(cli_code(["run", str(config), "--stage", stage]), env)[0] for stage in ("ingest", "cache"))
        train, loaded = timed(cli_code(["run", str(config), "--stage", "train"]), env, until_line="train 1/")
        return seconds + train, loaded
    return run


def measure(trees: list[Path], repeats: int, work: Path) -> dict[str, list[tuple[float, list[str]]]]:
    """label -> (fastest seconds, heavy modules) per tree; the trees take turns within every repeat, so a
    busy moment on a shared machine falls on all of them alike."""
    runs = [measurements(tree, work / f"tree-{index}") for index, tree in enumerate(trees)]
    best: dict[str, list] = {label: [(float("inf"), [])] * len(trees) for label in runs[0]}
    for _ in range(repeats):
        for label in best:
            for index, tree_runs in enumerate(runs):
                seconds, loaded = tree_runs[label]()
                if seconds < best[label][index][0]:
                    best[label][index] = (seconds, loaded)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=Path, nargs="+", default=[REPOSITORY],
                        help="dreamcore checkouts to measure side by side (e.g. before and after a change)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write the results file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dreamcore-startup-") as work:
        best = measure([tree.resolve() for tree in args.trees], args.repeats, Path(work))
    table = _table(best, args)
    print(table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(table)


def _table(best: dict[str, list[tuple[float, list[str]]]], args) -> str:
    trees = [str(tree) for tree in args.trees]
    lines = [
        "# dreamcore start-up: the time to the first unit of work",
        "",
        (f"`.venv/bin/python benchmarks/startup.py --trees {' '.join(trees)} --repeats {args.repeats}` on "
         f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; "
         f"1-minute load average at the end {os.getloadavg()[0]:.1f}. Seconds: the fastest of {args.repeats} fresh "
         "processes per tree (the trees take turns); tiny SD demo project, 4 steps, no validation."),
        "",
        "| what | " + " | ".join(f"{tree} s" for tree in trees) + " | heavy modules imported |",
        "|---|" + "---|" * len(trees) + "---|",
    ]
    for label, per_tree in best.items():
        modules = " / ".join(", ".join(loaded) or "none" for _, loaded in per_tree)
        lines.append(f"| {label} | " + " | ".join(f"{seconds:.2f}" for seconds, _ in per_tree) + f" | {modules} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
