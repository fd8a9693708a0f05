"""Benchmark: the DreamBooth evaluation protocol on the tiny model, 4 weights x 25 prompts x 4 images.

A tiny SD LoRA is trained for 6 steps with a checkpoint every 2 (weights: base, step-2, step-4,
final); the evaluate stage then draws and scores the full dreambooth_object protocol (25 prompts +
the class prompt, 4 images each: 104 images per weights, 416 in all) plus the eval loss, once per
protocol batch size. The real images' embeddings are computed by the first run only (they are
cached by content digest), and a rerun of a committed evaluation does no work.

    .venv/bin/python benchmarks/evaluation_protocol.py   # writes benchmarks/results/evaluation_protocol.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "evaluation_protocol.md"


def build_run(workdir: Path, steps: int, images_per_prompt: int):
    """Tiny models, the demo subject ingested, a 6-step LoRA training; (config, store, train result, eval set)."""
    from dreamcore.config import DatasetSpec, RunConfig
    from dreamcore.evaluate.eval_set import EvalSet
    from dreamcore.models import write_tiny_models
    from dreamcore.pipeline import run_ingest
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.memory import InMemoryBatchSource, collate, demo_samples
    from dreamcore.train.plan import plan_training
    from dreamcore.train.stage import train_stage

    models = write_tiny_models(workdir / "models")
    samples = demo_samples(models["sd"], workdir / "demo", subjects=6, regularisation=0, masks=False)
    config = RunConfig(
        training={"pretrained_model_name_or_path": str(models["sd"]), "model_family": "sd1x",
                  "mixed_precision": "no", "max_train_steps": 6, "checkpointing_steps": 2, "train_batch_size": 2,
                  "lora_rank": 4, "learning_rate": 1e-2, "optimizer": "adamw",
                  "storage_root": str(workdir / "artifacts"), "validation_prompt": "a sks toy",
                  "validation_num_inference_steps": steps, "validation_resolution": 64, "eval_timesteps": 4,
                  "evaluation_prompt_set": "dreambooth_object", "evaluation_token": "sks", "evaluation_class": "toy",
                  "evaluation_images_per_prompt": images_per_prompt,
                  "evaluation_dino_model": str(models["dino"]),
                  "pretrained_evaluation_model_name_or_path": str(models["clip"])},
        datasets=[DatasetSpec(id="subject", instance_data_dir=str(workdir / "demo" / "instance_images"))],
    )
    store = ArtifactStore(config.training.resolved_storage_root)
    run_ingest(config, store)
    train = train_stage(plan_training(config, {"latents": "benchmark"}), store, InMemoryBatchSource(samples[:4], 2),
                        show_progress=False)
    return config, store, train, EvalSet([collate(samples[4:])], "demo", ["s4", "s5"], "benchmark")


class _EmbeddingCounter(logging.Handler):
    """Collects the 'real subject images' log lines (how many embeddings each run computed)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(("real subject images", "evaluating ")):
            self.lines.append(record.getMessage())


class _Timers:
    """Seconds spent in the protocol's drawing, its scoring and the image files, per run."""

    def __init__(self) -> None:
        from dreamcore.evaluate import evaluation, subject_fidelity

        self.seconds = {"draw": 0.0, "score": 0.0, "save": 0.0}
        evaluation.generate_batched = self._timed("draw", evaluation.generate_batched)
        subject_fidelity.SubjectScorer.score = self._timed("score", subject_fidelity.SubjectScorer.score)
        evaluation.save_evaluation = self._timed("save", evaluation.save_evaluation)

    def _timed(self, name, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        return timed

    def take(self) -> dict[str, float]:
        taken, self.seconds = self.seconds, dict.fromkeys(self.seconds, 0.0)
        return taken


def measure(batch_sizes: list[int], steps: int, images_per_prompt: int, threads: int) -> dict:
    import torch

    from dreamcore.evaluate.stage import evaluate_stage

    torch.set_num_threads(threads)
    counter = _EmbeddingCounter()
    logging.getLogger("dreamcore.evaluate").addHandler(counter)
    logging.getLogger("dreamcore.evaluate").setLevel(logging.INFO)
    timers = _Timers()  # the stage imports save_evaluation when it runs: it gets the timed one
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        config, store, train, eval_set = build_run(Path(tmp), steps, images_per_prompt)
        for batch_size in batch_sizes:
            run_config = config.model_copy(update={"training": config.training.model_copy(
                update={"evaluation_batch_size": batch_size})})
            counter.lines.clear()
            timers.take()
            start = time.perf_counter()
            result, worked = evaluate_stage(run_config, store, train, eval_set, device="cpu")
            seconds = time.perf_counter() - start
            parts = timers.take()
            assert worked
            start = time.perf_counter()
            _, again = evaluate_stage(run_config, store, train, eval_set, device="cpu")
            rerun = time.perf_counter() - start
            assert not again
            rows = result.details["rows"]
            runs.append({"batch_size": batch_size, "seconds": seconds, "rerun_seconds": rerun, **parts,
                         "weights": len(rows), "log": list(counter.lines),
                         "rows": [{k: r[k] for k in ("weights", "dino", "clip_i", "clip_t", "pres", "div")}
                                  for r in rows]})
    return {"runs": runs, "steps": steps, "images_per_prompt": images_per_prompt, "threads": threads}


def write_results(measured: dict, command: str) -> None:
    runs = measured["runs"]
    protocol_images = 4 * (25 + 1) * measured["images_per_prompt"]
    lines = [
        "# Evaluation protocol: 4 weights x 25 prompts x 4 images on the tiny model",
        "",
        f"Command: `{command}` ({datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, CPU, "
        f"{measured['threads']} torch thread(s); the machine is shared with other jobs).",
        f"Tiny SD (64 px), LoRA 6 steps, weights base / step-2 / step-4 / final; protocol dreambooth_object "
        f"(25 prompts + the class prompt for PRES) x {measured['images_per_prompt']} images = {protocol_images} "
        f"protocol images, plus 1 validation image per weights and the eval loss (2 eval images x 4 timesteps); "
        f"{measured['steps']} sampling steps per image. Each run is a fresh evaluate stage (the batch size is in its "
        "key): drawing, PNGs, DINO + CLIP-I + CLIP-T + PRES + DIV, report and pictures.",
        "",
        "| protocol batch size | evaluate stage, s | of which drawing protocol images, s | scoring (DINO, CLIP-I, "
        "CLIP-T, PRES, DIV), s | writing results + PNGs, s | protocol images / s | rerun (committed), s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(f"| {run['batch_size']} | {run['seconds']:.1f} | {run['draw']:.1f} | {run['score']:.1f} | "
                     f"{run['save']:.1f} | {protocol_images / run['seconds']:.1f} | {run['rerun_seconds']:.2f} |")
    lines += ["", "Real-image embeddings (6 subject images; cached by content digest and model fingerprint):", ""]
    lines += [f"- batch size {run['batch_size']}: "
              + "; ".join(line for line in run["log"] if line.startswith("real subject images")) for run in runs]
    lines += ["", f"Size logged before the first run: `{runs[0]['log'][-1] if runs[0]['log'] else 'n/a'}`", "",
              "Metrics of the first run (random tiny models: the values only show every weights gets every metric):",
              "", "| weights | dino | clip_i | clip_t | pres | div |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['weights']} | {r['dino']:.4f} | {r['clip_i']:.4f} | {r['clip_t']:.2f} | {r['pres']:.4f} | "
              f"{r['div']:.4f} |" for r in runs[0]["rows"]]
    lines += ["", "Raw: " + json.dumps([{k: v for k, v in r.items() if k not in ("rows", "log")} for r in runs]), ""]
    RESULTS.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps", type=int, default=4, help="sampling steps per image")
    parser.add_argument("--images-per-prompt", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    measured = measure(args.batch_sizes, args.steps, args.images_per_prompt, args.threads)
    command = "HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/evaluation_protocol.py" + (
        f" --batch-sizes {' '.join(map(str, args.batch_sizes))}" if args.batch_sizes != [1, 8] else "")
    write_results(measured, command)
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
