"""The run report: config, data, loss curves, eval tables, validation grids and the subject-fidelity
protocol (metrics per weights, trend, best and worst prompts), in Markdown and HTML.

Written into the evaluate stage folder from what is stored there (and in the train stage folder),
so `dreamcore report RUN` can rebuild it any time: `report.md` links the PNGs beside it, and
`report.html` embeds them (one self-contained file, readable straight from S3).
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dreamcore.drawing.images import png_bytes
from dreamcore.evaluate import charts
from dreamcore.evaluate.evaluation import protocol_file, read_evaluation
from dreamcore.evaluate.subject_fidelity import METRIC_SENTENCES
from dreamcore.evaluate.validation import ValidationPlan

if TYPE_CHECKING:
    from dreamcore.evaluate.evaluation import Evaluation
    from dreamcore.storage import ArtifactStore

PICTURES = {"grid": "grid.png", "eval_loss_plot": "eval_loss.png", "trend_plot": "trend.png",
            "training_loss_plot": "training_loss.png", "monitor_grid": "monitor_grid.png",
            "monitor_trend_plot": "monitor_trend.png", "subject_trend_plot": "subject_trend.png",
            "prompt_grid": "prompt_extremes.png"}
_CONFIG_KEYS = ("pretrained_model_name_or_path", "model_type", "lora_type", "lora_rank", "lora_alpha",
                "base_model_precision", "learning_rate", "lr_scheduler", "max_train_steps", "train_batch_size",
                "gradient_accumulation_steps", "mixed_precision", "seed", "snr_gamma", "prior_loss_weight",
                "use_ema", "checkpointing_steps", "validation_prompt", "validation_negative_prompt",
                "num_validation_images", "validation_num_inference_steps", "validation_guidance",
                "validation_resolution", "evaluation_type", "pretrained_evaluation_model_name_or_path",
                "eval_timesteps", "eval_steps_interval", "validation_steps", "evaluation_prompt_set",
                "evaluation_token", "evaluation_class", "evaluation_images_per_prompt", "evaluation_dino_model")


def write_outputs(store: ArtifactStore, folder: str, plan: ValidationPlan, evaluations: Sequence[Evaluation],
                  monitor: Sequence[Evaluation] = (), history: Sequence[dict] = (),
                  protocol: dict | None = None) -> tuple[dict[str, str], list[str]]:
    """Draw the grid and plots that have data into `folder`; (name -> relative path, best/worst prompt captions)."""
    extremes = _prompt_extremes(store, folder, evaluations, protocol)
    pictures = {
        "grid": charts.validation_grid(evaluations, plan),
        "eval_loss_plot": charts.eval_loss_plot(evaluations),
        "trend_plot": charts.trend_plot(evaluations, "Base, checkpoints and final: relative to the base"),
        "training_loss_plot": charts.training_loss_plot(history),
        "monitor_grid": charts.validation_grid(monitor, plan),
        "monitor_trend_plot": charts.trend_plot(monitor, "During training"),
        "subject_trend_plot": charts.subject_trend_plot(evaluations),
        "prompt_grid": extremes[0] if extremes else None,
    }
    written = {}
    for name, image in pictures.items():
        if image is not None:
            written[name] = f"{folder}/{PICTURES[name]}"
            store.write_bytes(written[name], png_bytes(image))
    return written, (extremes[1] if extremes else [])


def _prompt_extremes(store: ArtifactStore, folder: str, evaluations: Sequence[Evaluation], protocol: dict | None):
    """The best/worst prompt grid of the final weights (else the last scored ones), or None."""
    from PIL import Image

    scored = [e for e in evaluations if e.subject is not None and e.name != "base"]
    if not protocol or not scored:
        return None
    chosen = next((e for e in scored if e.name == "final"), scored[-1])

    def load(prompt_index: int, seed: int):
        path = f"{folder}/weights/{chosen.name}/{protocol_file(prompt_index, seed)}"
        return Image.open(io.BytesIO(store.read_bytes(path))).convert("RGB") if store.exists(path) else None

    found = charts.prompt_extremes_grid(chosen.subject, protocol["seeds"], load)
    return (found[0], [f"{chosen.name}, by DINO: " + line for line in found[1]]) if found else None


def write_report(store: ArtifactStore, folder: str) -> tuple[str, dict[str, str]]:
    """(Re)draw the pictures, write report.md + report.html of an evaluate folder; (report.md path, pictures)."""
    run = store.read_json(f"{folder}/run.json")
    plan = ValidationPlan.from_dict(run["plan"])
    evaluations = _evaluations(store, f"{folder}/weights", order=[w["name"] for w in _weights(run)])
    train_folder = f"{run['train']['stage']}/{run['train']['key']}"
    history = store.read_json(f"{train_folder}/report.json")["history"] if store.exists(f"{train_folder}/report.json") else []
    monitor = _evaluations(store, f"{train_folder}/monitor")
    written, captions = write_outputs(store, folder, plan, evaluations, monitor, history, run.get("protocol"))
    blocks = _blocks(run, evaluations, monitor, written, captions)
    store.write_bytes(f"{folder}/report.md", _markdown(blocks).encode())
    store.write_bytes(f"{folder}/report.html", html_report(blocks, store).encode())
    return f"{folder}/report.md", written


def _weights(run: dict) -> list[dict]:
    return run.get("weights") or []


def _evaluations(store: ArtifactStore, parent: str, order: Sequence[str] = ()) -> list[Evaluation]:
    found = [e for e in (read_evaluation(store, path) for path in store.list(parent)) if e is not None]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(found, key=lambda e: (rank.get(e.name, len(rank)), e.step if e.step is not None else -1))


def _blocks(run: dict, evaluations, monitor, pictures: dict[str, str], captions: Sequence[str] = ()) -> list[tuple[str, Any]]:
    config, train = run["config"]["training"], run["train"]
    summary = (f"Base model `{config['pretrained_model_name_or_path']}`, {train['details'].get('adapter', '?')} "
               f"training of {train['counts'].get('steps', '?')} steps (train stage `{train['key']}`, final loss "
               f"{_number(train['details'].get('final_loss'))}). Weights: {train['output_uri']}")
    datasets = [{"dataset": d["id"], "type": d["dataset_type"], "folder": d.get("instance_data_dir"),
                 "resolution": d.get("resolution"), "regularisation": d.get("is_regularisation_data")}
                for d in run["config"]["datasets"]]
    eval_samples = (f"Eval loss samples: {run['eval_set']['source']} ({len(run['eval_set']['paths'])} images); "
                    f"timesteps {run['timesteps']}.")
    scales = ("CLIP score: 100 x cosine similarity of CLIP image and prompt embeddings, clamped at 0 "
              "(torchmetrics' scale). Eval loss: MSE at fixed timesteps with fixed noise.")
    blocks: list[tuple[str, Any]] = [
        ("h1", "Dreambooth run report"), ("p", summary),
        ("h2", "Config"), ("table", [{"key": k, "value": str(config.get(k))} for k in _CONFIG_KEYS if k in config]),
        ("h2", "Data"), ("table", datasets), ("p", eval_samples),
    ]
    if "training_loss_plot" in pictures:
        blocks += [("h2", "Training loss"), ("image", pictures["training_loss_plot"])]
    blocks += [("h2", "Evaluation"), ("p", scales),
               ("table", [_rounded(e.summary_row()) for e in evaluations])]
    for name, title in (("eval_loss_plot", "Eval loss per timestep"), ("trend_plot", "Trend"),
                        ("grid", "Validation images (same seeds in every row)")):
        if name in pictures:
            blocks += [("h2", title), ("image", pictures[name])]
    if run.get("protocol"):
        blocks += _subject_blocks(run["protocol"], evaluations, pictures, captions)
    if monitor:
        blocks += [("h2", "During training"), ("table", [_rounded(e.summary_row()) for e in monitor])]
        if any(e.subject is not None for e in monitor):
            blocks += [("table", [_rounded(e.subject_row()) for e in monitor if e.subject is not None])]
        blocks += [("image", pictures[n]) for n in ("monitor_trend_plot", "monitor_grid") if n in pictures]
    return blocks


def _subject_blocks(protocol: dict, evaluations, pictures: dict[str, str], captions: Sequence[str]):
    """The subject-fidelity section: what each metric means, the table per weights, trend and prompt grid."""
    size = (f"{len(protocol['prompts'])} prompts (class prompt {protocol['class_prompt']!r} for PRES), "
            f"{len(protocol['seeds'])} images each, seeds {protocol['seeds']}. Each value is the mean over prompts, "
            "*_std the standard deviation over prompts (PRES: over the class images).")
    blocks: list[tuple[str, Any]] = [("h2", "Subject fidelity (DreamBooth protocol)"), ("p", size)]
    blocks += [("p", sentence) for sentence in METRIC_SENTENCES.values()]
    blocks.append(("table", [_rounded(e.subject_row()) for e in evaluations]))
    if "subject_trend_plot" in pictures:
        blocks += [("h2", "Subject fidelity over training"), ("image", pictures["subject_trend_plot"])]
    if "prompt_grid" in pictures:
        blocks += [("h2", "Best and worst prompts"), ("image", pictures["prompt_grid"])]
        blocks += [("p", line) for line in captions]
    return blocks


def _rounded(row: dict) -> dict:
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}


def _number(value) -> str:
    return f"{value:.5f}" if isinstance(value, (int, float)) else "n/a"


def _markdown(blocks) -> str:
    out = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + value)
        elif kind == "p":
            out.append(value)
        elif kind == "image":
            name = value.rsplit("/", 1)[-1]
            out.append(f"![{name}]({name})")
        elif kind == "table" and value:
            keys = list(value[0])
            out += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            out += ["| " + " | ".join(_cell(row.get(k)) for k in keys) + " |" for row in value]
        out.append("")
    return "\n".join(out)


def _cell(value) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def html_report(blocks: Sequence[tuple[str, Any]], store: ArtifactStore) -> str:
    """The report page from templates/report.html.j2, pictures embedded as data URIs, user text escaped."""
    page = []
    for kind, value in blocks:
        if kind == "image":
            page.append({"kind": kind, "name": value.rsplit("/", 1)[-1],
                         "png_base64": base64.b64encode(store.read_bytes(value)).decode("ascii")})
        else:
            page.append({"kind": kind, "value": value})
    return _templates().get_template("report.html.j2").render(blocks=page)


@functools.cache
def _templates():
    """The package's templates, autoescaped (the .j2 suffix would hide .html from select_autoescape)."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("dreamcore.evaluate"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.filters["blank_if_none"] = lambda value: "" if value is None else value
    return environment
