"""Benchmark: dreamcore against diffusers' `train_dreambooth_lora.py` (the SD 1.x DreamBooth LoRA script
our users would otherwise run), side by side on the same model, images and settings.

Both train the same SD 1.x model with the same 8 square images, instance prompt, resolution, batch,
LoRA rank (on to_k/q/v/out.0), AdamW learning rate, steps, seed and CPU threads, without prior
preservation or validation:
- the peer as ../shared/peer/README.md runs it (`accelerate launch`, one process, a copy read at run
  time: when the copy is absent the benchmark says so and exits 0);
- dreamcore as a user runs it locally: `dreamcore run CONFIG --until train`, one process chaining
  ingest, cache and train on cold storage.
The peer and dreamcore alternate (the order swaps every round) for --rounds. Per run: steady steps/s
(1 / the median interval between the steps the tools' own tqdm bars timestamp), wall time cold (start to
exit: imports, model loading, ingest, caching, training, saving the LoRA) and peak RSS (wait4's rusage).
The table gives the median over rounds, dreamcore / peer, and the issue's goals.

--model tiny: the tiny SD from `dreamcore tiny-models` (64 px, 60 steps by default, seconds per run);
--model sd15: SD 1.5's architecture with random weights (benchmarks/reference_models.py, ~4.3 GB on
disk; 512 px, a few steps; about 5 minutes per run on 2 CPU cores).

    .venv/bin/python benchmarks/peer_side_by_side.py --rounds 3             # tiny; writes results/peer_side_by_side.md
    .venv/bin/python benchmarks/peer_side_by_side.py --model sd15 --rounds 1   # writes results/peer_side_by_side_sd15.md
    .venv/bin/python benchmarks/peer_side_by_side.py --model sd15 --precision bf16 --rounds 1   # ..._sd15_bf16.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import transformer_peer

RESULTS = Path(__file__).parent / "results"


def results_file(model: str, precision: str = "no", family: str = "sd1x") -> Path:
    """One results file per model, precision and family, so measuring one never overwrites another's figures."""
    suffix = ("" if model == "tiny" else f"_{model}") + ("" if precision == "no" else f"_{precision}")
    return RESULTS / f"peer_side_by_side{'' if family == 'sd1x' else '_' + family}{suffix}.md"


# The families the peer's train_dreambooth_lora.py trains: SD 1.x, and DeepFloyd IF stage I (pixel space).
FAMILIES = {"sd1x": {"tiny": "sd", "title": "SD 1.x", "targets": "to_k/q/v/out.0"},
            "deepfloyd": {"tiny": "deepfloyd", "title": "DeepFloyd IF stage I",
                          "targets": "to_k/q/v/out.0 + add_k/v_proj"}}
# Per model: resolution, steps and the first step of the steady rate (earlier steps are warm-up).
MODELS = {"tiny": {"resolution": 64, "steps": 60, "steady_from": 10},
          "sd15": {"resolution": 512, "steps": 8, "steady_from": 3}}
# The goals, as (figure, dreamcore / peer must be at least / at most this).
GOALS = {"tiny": {"steps_per_s": (">=", 1.3), "wall_s": ("<=", 1.0), "peak_mb": ("<=", 1.0)},
         "sd15": {"steps_per_s": (">=", 1.5), "peak_mb": ("<=", 1.0)}}
FIGURES = (("steady steps/s", "steps_per_s", 2), ("wall s, cold", "wall_s", 1), ("peak RSS MB", "peak_mb", 0))


def peer_script(peer_dir: Path, family: str = "sd1x") -> Path | None:
    """The peer's script for `family` in peer_dir, or None when the copy is absent."""
    script = peer_dir / transformer_peer.PEER_SCRIPTS[family]
    return script if script.is_file() else None


def model_folder(model: str, models_dir: Path, family: str = "sd1x") -> Path:
    """The model both tools train: the family's tiny model or the SD 1.5 architecture (written once, reused)."""
    if model == "tiny":
        return transformer_peer.model_folder(FAMILIES[family]["tiny"], models_dir / "tiny")
    from reference_models import write_sd15_architecture

    return write_sd15_architecture(models_dir / "sd15-architecture")


def settings_for(args: argparse.Namespace) -> dict:
    """Both tools' settings; a model's defaults fill what the command line leaves out."""
    defaults = MODELS[args.model]
    return {"resolution": args.resolution or defaults["resolution"], "steps": args.steps or defaults["steps"],
            "steady_from": defaults["steady_from"], "batch": args.batch, "rank": args.rank, "lr": args.lr,
            "seed": args.seed, "threads": args.threads, "precision": args.precision, "family": args.family}


def run_round(tools: tuple[str, ...], round_dir: Path, model: Path, images: Path, settings: dict, peer_dir: Path,
              env: dict[str, str]) -> list[dict]:
    """One cold run of each tool, in this order; their rows."""
    rows = []
    for tool in tools:
        row = transformer_peer.run_tool(tool, settings.get("family", "sd1x"), round_dir, model, images, settings, peer_dir, env)
        rows.append(row | {"load": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict], model: str) -> list[dict]:
    """Per figure: the median over rounds of each tool, the ratio dreamcore / peer and the goal's verdict."""
    figures = []
    for title, key, digits in FIGURES:
        peer = statistics.median(r[key] for r in rows if r["tool"] == "peer")
        ours = statistics.median(r[key] for r in rows if r["tool"] == "dreamcore")
        ratio = ours / peer
        goal = GOALS[model].get(key)
        verdict = "" if goal is None else (
            f"{goal[0]} {goal[1]}x: {'met' if (ratio >= goal[1] if goal[0] == '>=' else ratio <= goal[1]) else 'NOT met'}")
        figures.append({"figure": title, "peer": round(peer, digits), "dreamcore": round(ours, digits),
                        "ratio": round(ratio, 2), "goal": verdict})
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODELS), default="tiny")
    parser.add_argument("--family", choices=list(FAMILIES), default="sd1x", help="deepfloyd: IF stage I (tiny only)")
    parser.add_argument("--resolution", type=int, help="default: 64 (tiny), 512 (sd15)")
    parser.add_argument("--steps", type=int, help="optimiser steps; default: 60 (tiny), 8 (sd15)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each tool's process")
    parser.add_argument("--precision", choices=["no", "bf16"], default="no", help="mixed precision of both tools")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer-dir", type=Path, default=transformer_peer.DEFAULT_PEER_DIR)
    parser.add_argument("--torchvision-site", type=Path, default=Path(".dreamcore/benchmark-torchvision"),
                        help="where torchvision is installed (--no-deps) for the peer")
    parser.add_argument("--models-dir", type=Path, default=Path(".dreamcore/benchmark-models"))
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary folder (kept: logs are there)")
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write the results file")
    args = parser.parse_args(argv)
    if args.family != "sd1x" and args.model != "tiny":
        parser.error(f"--family {args.family} runs on --model tiny only")
    if peer_script(args.peer_dir, args.family) is None:
        print(f"peer_side_by_side: no {transformer_peer.PEER_SCRIPTS[args.family]} in {args.peer_dir}: skipped (point "
              "--peer-dir at the copy of diffusers' examples/dreambooth scripts, ../shared/peer)")
        return 0
    settings = settings_for(args)
    if settings["steps"] <= settings["steady_from"]:
        parser.error(f"--steps {settings['steps']}: needs more than {settings['steady_from']} (the steady rate starts there)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="dreamcore-peer-side-by-side-"))).resolve()
    shim = transformer_peer.torchvision_shim(args.torchvision_site.resolve(), work / "shim")
    env = transformer_peer.tool_environment(args.threads, [shim, transformer_peer.REPOSITORY])
    images = transformer_peer.write_images(work / "images", settings["resolution"])
    model = model_folder(args.model, args.models_dir.resolve(), args.family)
    rows = []
    for index in range(args.rounds):
        order = ("peer", "dreamcore") if index % 2 == 0 else ("dreamcore", "peer")
        rows += run_round(order, work / f"round-{index}", model, images, settings, args.peer_dir, env)
    table = _table(rows, summary(rows, args.model), args, settings)
    print(table)
    print(f"logs and outputs: {work}")
    if not args.no_write:
        results = results_file(args.model, args.precision, args.family)
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(table)
    return 0


def _table(rows: list[dict], figures: list[dict], args, settings: dict) -> str:
    loads = [r["load"] for r in rows]
    lines = [
        f"# dreamcore vs diffusers' train_dreambooth_lora.py ({args.model} {FAMILIES[args.family]['title']})",
        "",
        (f"`.venv/bin/python benchmarks/peer_side_by_side.py --model {args.model}"
         f"{'' if args.family == 'sd1x' else ' --family ' + args.family} --resolution "
         f"{settings['resolution']} --steps {settings['steps']} --batch {args.batch} --rank {args.rank} --lr {args.lr} "
         f"--threads {args.threads} --precision {args.precision} --rounds {args.rounds}` on "
         f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; "
         f"1-minute load average after each run {min(loads):.1f}-{max(loads):.1f}."),
        (f"{transformer_peer.IMAGES} square images, one instance prompt, LoRA on {FAMILIES[args.family]['targets']}, "
         "mixed precision "
         f"{args.precision}, no prior preservation, no validation. steps/s over steps {settings['steady_from']}.."
         f"{settings['steps']} (tqdm timestamps); wall = process start to exit, cold (dreamcore: one `run --until "
         f"train` process; peer: accelerate launch); medians over {args.rounds} alternating round(s)."),
        "",
        "| figure | peer | dreamcore | dreamcore / peer | goal |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {f['figure']} | {f['peer']} | {f['dreamcore']} | {f['ratio']:.2f}x | {f['goal']} |" for f in figures]
    lines += ["", "Every run (in the order they ran):", "", "| tool | steps/s | wall s | peak MB | load |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['tool']} | {r['steps_per_s']:.3g} | {r['wall_s']:.1f} | {r['peak_mb']:.0f} | {r['load']:.1f} |"
              for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
