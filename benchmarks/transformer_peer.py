"""Benchmark: dreamcore against diffusers' DreamBooth LoRA scripts on tiny SD3, Flux, Qwen-Image and Lumina2, side
by side.

The peer is the tool our users would otherwise run: diffusers' `examples/dreambooth/
train_dreambooth_lora_sd3.py`, `train_dreambooth_lora_flux.py`, `train_dreambooth_lora_qwen_image.py` and
`train_dreambooth_lora_lumina2.py` (an unmodified copy lives in
../shared/peer, read at run time; see its README). Per family, both train the same tiny model
(`dreamcore tiny-models`) on the same square images with the same prompt, resolution, batch,
rank, learning rate, steps, seed, LoRA target modules, text sequence length (T5; Lumina2's Gemma2, after its
system prompt) and CPU threads, in
fp32, without prior preservation or validation. dreamcore runs as its users run it locally:
`dreamcore run CONFIG --until train` (ingest, cache and train in one process, cold storage each
round); the peer as its README says (`accelerate launch`, one training process).

Per run:
- steady steps/s: 1 / the median interval between optimiser steps 10..N, from the timestamps each
  tool's own tqdm bar prints (TQDM_MININTERVAL=0, a TQDM_BAR_FORMAT with {elapsed_s}); robust to
  other processes briefly taking the cores;
- wall time: from the first process's start to the last one's exit (model loading, ingest and
  caching, training, saving the LoRA: everything a user waits for);
- peak RSS: the largest maximum resident set of any of the run's processes (wait4's rusage, which
  covers the process and its reaped children, e.g. accelerate's launcher and its trainer).

Peer and dreamcore alternate (the order swaps every round) over --rounds; the table shows the
median over rounds.

    .venv/bin/python benchmarks/transformer_peer.py                        # flux and sd3, ~4 minutes
    .venv/bin/python benchmarks/transformer_peer.py --families flux --steps 60 --rounds 3
    .venv/bin/python benchmarks/transformer_peer.py --families qwen_image   # -> results/transformer_peer_qwen_image.md
    .venv/bin/python benchmarks/transformer_peer.py --families lumina2   # results/transformer_peer_lumina2.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
DEFAULT_PEER_DIR = REPOSITORY.parent / "shared" / "peer"
PEER_SCRIPTS = {"flux": "train_dreambooth_lora_flux.py", "sd3": "train_dreambooth_lora_sd3.py",
                "lumina2": "train_dreambooth_lora_lumina2.py",
                "sd1x": "train_dreambooth_lora.py",  # benchmarks/peer_side_by_side.py
                "sdxl": "train_dreambooth_lora_sdxl.py",  # benchmarks/gpu_suite.py
                "deepfloyd": "train_dreambooth_lora.py",  # benchmarks/peer_side_by_side.py --family deepfloyd
                "qwen_image": "train_dreambooth_lora_qwen_image.py",
                }
TRANSFORMER_FAMILIES = ("flux", "sd3", "qwen_image", "lumina2")
DEFAULT_FAMILIES = ("flux", "sd3")  # results/transformer_peer.md; another choice writes its own results file
# The peer scripts' default LoRA targets; dreamcore is given the same list so both train the same layers
# (the SD 1.x script's targets are dreamcore's defaults, to_k/q/v/out.0: its add_k/v_proj are not in a SD UNet).
PEER_LORA_TARGETS = {
    "flux": ["attn.to_k", "attn.to_q", "attn.to_v", "attn.to_out.0", "attn.add_k_proj", "attn.add_q_proj",
             "attn.add_v_proj", "attn.to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj",
             "ff_context.net.2"],
    "sd3": ["attn.add_k_proj", "attn.add_q_proj", "attn.add_v_proj", "attn.to_add_out", "attn.to_k",
            "attn.to_out.0", "attn.to_q", "attn.to_v"],
    "qwen_image": ["to_k", "to_q", "to_v", "to_out.0"],
}
# The peer's text options per family: IF stage I's T5 as diffusers' IF DreamBooth docs run it (77 tokens with the
# attention mask, as IFPipeline.encode_prompt and dreamcore's text cache encode; embeddings computed once).
PEER_TEXT_OPTIONS = {"deepfloyd": ["--pre_compute_text_embeddings", "--tokenizer_max_length", "77",
                                   "--text_encoder_use_attention_mask"]}
# What each tool's training progress bar is called (tqdm's desc).
STEP_BARS = {"peer": "Steps", "dreamcore": "train"}
INSTANCE_PROMPT = "a photo of sks toy"
IMAGES = 8
TORCHVISION_VERSION = "0.28.0"  # pure-python transforms that import against this torch without its C ops
STEADY_FROM = 10  # steps before this one are warm-up (first-step allocations, lazy imports)


# ---------------------------------------------------------------- the project both tools train on


def model_folder(family: str, models_dir: Path) -> Path:
    """The tiny diffusers folder of `family` (sd3, flux or qwen_image), written once under models_dir."""
    from dreamcore.models.tiny import write_tiny_models

    return write_tiny_models(models_dir)[family]


def write_images(folder: Path, resolution: int) -> Path:
    """IMAGES square PNGs and nothing else (the peer opens every file in its instance folder as an image)."""
    from PIL import Image

    from dreamcore.data.demo import write_demo_dataset
    from dreamcore.train.memory import centre_square

    demo = write_demo_dataset(folder.parent / "demo-source", n_images=IMAGES, include_masks=False)
    folder.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(demo.image_paths):
        square, _ = centre_square(Image.open(path).convert("RGB"), resolution)
        square.save(folder / f"image_{index:02d}.png")
    return folder


def write_dreamcore_config(work: Path, family: str, model: Path, images: Path, settings: dict) -> Path:
    """config.json + multidatabackend.json for `family` under work (its own, cold storage root);
    settings["precision"] (default "no") is the mixed_precision of both tools."""
    datasets = [
        {"id": "subject", "type": "local", "instance_data_dir": str(images), "caption_strategy": "instanceprompt",
         "instance_prompt": INSTANCE_PROMPT, "resolution": settings["resolution"], "resolution_type": "pixel",
         "minimum_image_size": settings["resolution"]},
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds", "default": True},
    ]
    work.mkdir(parents=True, exist_ok=True)
    (work / "multidatabackend.json").write_text(json.dumps(datasets, indent=2))
    config = {"--model_family": family, "--pretrained_model_name_or_path": str(model), "--model_type": "lora",
              "--lora_rank": settings["rank"], "--learning_rate": settings["lr"], "--optimizer": "adamw",
              "--mixed_precision": settings.get("precision", "no"),
              "--max_train_steps": settings["steps"], "--checkpointing_steps": 1_000_000,
              "--train_batch_size": settings["batch"], "--seed": settings["seed"], "--eval_dataset_fraction": 0,
              "--storage_root": str(work / "artifacts"), "--output_dir": str(work / "output"),
              "--data_backend_config": "multidatabackend.json"}
    if family in PEER_LORA_TARGETS:
        config["--peft_lora_target_modules"] = PEER_LORA_TARGETS[family]
    if family in TRANSFORMER_FAMILIES:
        config["--tokenizer_max_length"] = settings["t5_tokens"]
    path = work / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


# ---------------------------------------------------------------- the two tools' commands


def dreamcore_commands(config: Path) -> list[list[str]]:
    """The one local process a user runs: ingest, cache and train chained (`--until train`)."""
    return [[sys.executable, "-m", "dreamcore.cli", "run", str(config), "--until", "train"]]


def peer_command(peer_dir: Path, family: str, model: Path, images: Path, output: Path, settings: dict,
                 cpu: bool = True) -> list[str]:
    """The peer script under accelerate, as ../shared/peer/README.md runs it, with the same settings
    (on the GPU when cpu is False)."""
    precision = settings.get("precision", "no")
    t5 = ["--max_sequence_length", str(settings["t5_tokens"])] if family in TRANSFORMER_FAMILIES else []
    t5 += PEER_TEXT_OPTIONS.get(family, [])
    return [sys.executable, "-m", "accelerate.commands.launch", *(["--cpu"] if cpu else []), "--num_processes", "1",
            "--num_machines", "1", "--mixed_precision", precision, "--dynamo_backend", "no",
            "--num_cpu_threads_per_process", str(settings["threads"]), str(peer_dir / PEER_SCRIPTS[family]),
            "--pretrained_model_name_or_path", str(model), "--instance_data_dir", str(images),
            "--instance_prompt", INSTANCE_PROMPT, "--resolution", str(settings["resolution"]),
            "--train_batch_size", str(settings["batch"]), "--max_train_steps", str(settings["steps"]),
            "--learning_rate", str(settings["lr"]), "--rank", str(settings["rank"]), "--output_dir", str(output),
            "--seed", str(settings["seed"]), "--mixed_precision", precision, "--checkpointing_steps", "1000000",
            *t5]


def torchvision_shim(site: Path, shim: Path) -> Path:
    """A `torchvision` package that extends its path to the wheel's files under `site` (installed there
    without dependencies, once): the peer imports torchvision.transforms, and the registry's torchvision
    would pull in a second torch. Returns the folder to put first on PYTHONPATH."""
    if not (site / "torchvision" / "transforms").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                        f"torchvision=={TORCHVISION_VERSION}"], check=True)
    package = shim / "torchvision"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(
        f"__path__.append({str(site / 'torchvision')!r})\n__version__ = {TORCHVISION_VERSION!r}\n")
    return shim


def tool_environment(threads: int, pythonpath: list[Path]) -> dict[str, str]:
    """The environment both tools run in: offline, `threads` CPU threads, tqdm printing every step's time."""
    env = dict(os.environ)
    path = [str(p) for p in pythonpath] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env.update({"PYTHONPATH": os.pathsep.join(path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads),
                "MKL_NUM_THREADS": str(threads), "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1",
                "TQDM_BAR_FORMAT": "{desc} {n_fmt}/{total_fmt} t={elapsed_s}\n",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TOKENIZERS_PARALLELISM": "false"})
    return env


# ---------------------------------------------------------------- one timed run


def run_processes(commands: list[list[str]], env: dict[str, str], logs: Path) -> dict:
    """Run `commands` one after another (stopping at a failure; output in logs.<index>.log); wall seconds,
    peak RSS and their output."""
    peak_kib, output, seconds = 0, [], []
    started = time.perf_counter()
    for index, command in enumerate(commands):
        process_started = time.perf_counter()
        log = logs.with_name(f"{logs.name}.{index}.log")
        with open(log, "w") as sink:
            process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        seconds.append(time.perf_counter() - process_started)
        output.append(log.read_text(errors="replace"))
        # KiB on Linux; covers the process's reaped children. A child also inherits this parent's high-water
        # mark across fork and exec: the figure is the child's own while this script stays the smaller (it
        # peaks at ~45 MB for the tiny model, ~390 MB for the SD 1.5 architecture; the tools at 0.5-11 GB).
        peak_kib = max(peak_kib, usage.ru_maxrss)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:6])} ... exited {process.returncode}; its output:\n"
                               f"{output[-1][-4000:]}")
    return {"wall_s": time.perf_counter() - started, "process_s": seconds, "peak_mb": peak_kib / 1024,
            "output": "\n".join(output)}


def step_times(output: str, bar: str) -> dict[int, float]:
    """Step -> seconds since the bar started, from the lines tqdm printed for the bar called `bar`."""
    stamps = {}
    for step, elapsed in re.findall(rf"(?:^|[\r\n])[ \t]*{re.escape(bar)} (\d+)/\d+ t=([0-9.]+)", output):
        stamps.setdefault(int(step), float(elapsed))  # tqdm reprints the last step on close
    return stamps


def steady_steps_per_s(stamps: dict[int, float], steps: int, first: int = STEADY_FROM) -> float:
    """1 / the median interval between consecutive steps first..steps."""
    missing = [s for s in range(first - 1, steps + 1) if s not in stamps]
    if missing:
        raise RuntimeError(f"the progress output has no timestamp for steps {missing[:5]}...; is tqdm printing?")
    return 1.0 / statistics.median(stamps[s] - stamps[s - 1] for s in range(first, steps + 1))


def run_tool(tool: str, family: str, round_dir: Path, model: Path, images: Path, settings: dict,
             peer_dir: Path, env: dict[str, str]) -> dict:
    """One cold run of `tool` (peer or dreamcore) on `family`; its steady steps/s, wall time and peak RSS."""
    round_dir.mkdir(parents=True, exist_ok=True)
    if tool == "peer":
        commands = [peer_command(peer_dir, family, model, images, round_dir / "peer-output", settings)]
    else:
        commands = dreamcore_commands(write_dreamcore_config(round_dir / "dreamcore", family, model, images, settings))
    measured = run_processes(commands, env, round_dir / tool)
    stamps = step_times(measured["output"], STEP_BARS[tool])
    return {"family": family, "tool": tool, "wall_s": measured["wall_s"], "process_s": measured["process_s"],
            "peak_mb": measured["peak_mb"],
            "steps_per_s": steady_steps_per_s(stamps, settings["steps"], settings.get("steady_from", STEADY_FROM))}


# ---------------------------------------------------------------- the whole benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(DEFAULT_FAMILIES), choices=TRANSFORMER_FAMILIES)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=40, help=f"optimiser steps (steady rate over {STEADY_FROM}..)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each tool's process")
    parser.add_argument("--t5-tokens", type=int, default=64,
                        help="T5 (Qwen-Image: Qwen2.5-VL) sequence length of both (peer --max_sequence_length, "
                        "dreamcore tokenizer_max_length)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--peer-dir", type=Path, default=DEFAULT_PEER_DIR, help="folder holding the peer scripts")
    parser.add_argument("--torchvision-site", type=Path, default=Path(".dreamcore/benchmark-torchvision"),
                        help=f"where torchvision {TORCHVISION_VERSION} is installed (--no-deps) for the peer")
    parser.add_argument("--models-dir", type=Path, default=Path(".dreamcore/benchmark-models"),
                        help="where the tiny models are written (reused when complete)")
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary folder (kept: logs are there)")
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write the results file")
    args = parser.parse_args()
    if args.steps <= STEADY_FROM:
        raise SystemExit(f"--steps {args.steps}: needs more than {STEADY_FROM} steps (the steady rate starts there)")
    missing = [PEER_SCRIPTS[family] for family in args.families if not (args.peer_dir / PEER_SCRIPTS[family]).is_file()]
    if missing:
        raise SystemExit(f"--peer-dir {args.peer_dir}: no {', '.join(missing)}; point it at the copy of "
                         "diffusers' examples/dreambooth scripts (../shared/peer)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = {name: getattr(args, name) for name in
                ("resolution", "batch", "rank", "lr", "steps", "seed", "threads", "t5_tokens")}
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="dreamcore-transformer-peer-"))).resolve()
    shim = torchvision_shim(args.torchvision_site.resolve(), work / "shim")
    env = tool_environment(args.threads, [shim, REPOSITORY])
    images = write_images(work / "images", args.resolution)
    rows = []
    for family in args.families:
        model = model_folder(family, args.models_dir.resolve() / "tiny")
        for round_index in range(args.rounds):
            order = ("peer", "dreamcore") if round_index % 2 == 0 else ("dreamcore", "peer")
            for tool in order:
                row = run_tool(tool, family, work / family / f"round-{round_index}", model, images, settings,
                               args.peer_dir, env)
                row["load"] = os.getloadavg()[0]
                rows.append(row)
                print(json.dumps(row), flush=True)
    table = _table(rows, args)
    print(table)
    print(f"logs and outputs: {work}")
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / results_name(args.families)).write_text(table)


def results_name(families: list[str]) -> str:
    """transformer_peer.md for SD3 and Flux; transformer_peer_<families>.md for any other choice."""
    return "transformer_peer.md" if set(families) <= set(DEFAULT_FAMILIES) else \
        f"transformer_peer_{'_'.join(families)}.md"


def _table(rows: list[dict], args) -> str:
    command = (f"`.venv/bin/python benchmarks/transformer_peer.py --families {' '.join(args.families)} "
               f"--resolution {args.resolution} --batch {args.batch} --rank {args.rank} --lr {args.lr} "
               f"--steps {args.steps} --seed {args.seed} --threads {args.threads} --t5-tokens {args.t5_tokens} "
               f"--rounds {args.rounds}`")
    loads = [r["load"] for r in rows]
    lines = [
        f"# dreamcore vs diffusers' DreamBooth LoRA scripts on tiny {', '.join(args.families)}",
        "",
        (f"{command} on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, cpu, "
         f"{time.strftime('%Y-%m-%d')}; 1-minute load average after each run {min(loads):.1f}-{max(loads):.1f}."),
        (f"{IMAGES} square images at {args.resolution} px, one instance prompt, batch {args.batch}, LoRA rank "
         f"{args.rank} on the peer's default target modules (both), AdamW lr {args.lr}, {args.steps} steps, fp32, "
         f"text length {args.t5_tokens}, {args.threads} threads, no prior preservation, no validation. steps/s = 1 / "
         f"median step interval over steps {STEADY_FROM}..{args.steps} (each tool's tqdm timestamps); wall = first "
         "process start to last exit, cold (dreamcore: one `--until train` process; peer: accelerate launch); "
         f"peak RSS = largest of the run's processes. {args.rounds} alternating round(s). The machine is shared "
         "with other jobs: the load column records it."),
        "",
        "| family | figure | peer | dreamcore | dreamcore / peer |",
        "|---|---|---|---|---|",
    ]
    for family in args.families:
        peer = [r for r in rows if r["family"] == family and r["tool"] == "peer"]
        ours = [r for r in rows if r["family"] == family and r["tool"] == "dreamcore"]
        for figure, key, pick, digits in FIGURES:
            mine, theirs = pick(r[key] for r in ours), pick(r[key] for r in peer)
            lines.append(f"| {family} | {figure} | {theirs:.{digits}f} | {mine:.{digits}f} | {mine / theirs:.2f}x |")
    lines += ["", "Every run (in the order they ran):", "",
              "| family | tool | steps/s | wall s | seconds per process | peak MB | load |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['family']} | {r['tool']} | {r['steps_per_s']:.3g} | {r['wall_s']:.1f} | "
              f"{' + '.join(f'{s:.1f}' for s in r['process_s'])} | {r['peak_mb']:.0f} | "
              f"{r['load']:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"


# The table's rows: the median over rounds, and the least disturbed round (fastest steps, shortest wall):
# on a shared machine one busy neighbour can slow a run several times over.
FIGURES = [
    ("steady steps/s, median", "steps_per_s", statistics.median, 1),
    ("steady steps/s, best round", "steps_per_s", max, 1),
    ("wall s, median", "wall_s", statistics.median, 1),
    ("wall s, best round", "wall_s", min, 1),
    ("peak RSS MB, median", "peak_mb", statistics.median, 0),
]


if __name__ == "__main__":
    main()
