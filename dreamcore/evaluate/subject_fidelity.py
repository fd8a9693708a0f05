"""Subject fidelity as the DreamBooth paper measures it: DINO, CLIP-I, CLIP-T, PRES and DIV.

- DINO: cosine similarity of DINO ViT CLS embeddings (the final layer-normed CLS token) between each
  generated image and each real subject image, averaged over all pairs;
- CLIP-I: the same with CLIP's projected image embeddings;
- CLIP-T: CLIP score of each generated image against its own prompt (clip_score, 0-100 scale);
- PRES: DINO similarity between the real subject images and images drawn from the bare class
  prompt ("a dog"): high means the class prior was overwritten by the subject (lower is better);
- DIV: mean of 1 - DINO cosine over every pair of images drawn for the same prompt (higher: more
  varied images).

Every metric is averaged per prompt first; the reported value is the mean over prompts and its
spread the standard deviation over prompts (PRES: over the class images). Real-image embeddings
are cached in the store by image content digest and embedding model fingerprint, so they are
computed once per subject image and model, whatever the run.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsspec.core import url_to_fs

from dreamcore.config.options.retrain import LOWER_IS_BETTER
from dreamcore.evaluate.clip_score import ClipScorer
from dreamcore.evaluate.plans import subject_images as accepted
from dreamcore.evaluate.protocol import protocol_from_config
from dreamcore.models import hub_offline, model_fingerprint

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from dreamcore.config import RunConfig
    from dreamcore.evaluate.protocol import SubjectProtocol
    from dreamcore.storage import ArtifactStore

logger = logging.getLogger(__name__)

METRICS = ("dino", "clip_i", "clip_t", "pres", "div")
HIGHER_IS_BETTER = {metric: metric not in LOWER_IS_BETTER for metric in METRICS}  # as the guard and sweep rank
METRIC_SENTENCES = {
    "dino": "DINO: cosine similarity of DINO ViT embeddings between generated and real subject images, averaged "
            "over all pairs (subject fidelity; higher is better, 1 = identical features).",
    "clip_i": "CLIP-I: the same cosine similarity with CLIP image embeddings (subject fidelity; higher is better).",
    "clip_t": "CLIP-T: CLIP score (100 x cosine of image and prompt embeddings) of each generated image against "
              "its prompt (prompt fidelity; higher is better).",
    "pres": "PRES: DINO similarity between the real subject images and images drawn from the bare class prompt "
            "(prior preservation; lower is better: the class still draws other members of the class).",
    "div": "DIV: mean of 1 - DINO cosine over pairs of images drawn for the same prompt (diversity; higher "
           "means more varied images).",
}
EMBEDDINGS_FOLDER = "evaluate/embeddings"
_CHUNK = 32  # images embedded per forward pass


# ---------------------------------------------------------------- metrics on embeddings


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[n, m] cosine similarities between the rows of a [n, d] and b [m, d]."""
    a, b = a.float(), b.float()
    return (a / a.norm(dim=-1, keepdim=True)) @ (b / b.norm(dim=-1, keepdim=True)).T


def pair_similarity(generated: torch.Tensor, real: torch.Tensor) -> list[float]:
    """Per generated image: its mean cosine similarity to every real image."""
    return [float(v) for v in cosine_matrix(generated, real).mean(dim=1)]


def pairwise_distances(group: torch.Tensor) -> list[float]:
    """1 - cosine of every pair (i < j) of the rows of `group` (empty with fewer than two rows)."""
    import torch

    similarity = cosine_matrix(group, group)
    upper = torch.triu_indices(len(group), len(group), offset=1)
    return [float(1.0 - v) for v in similarity[upper[0], upper[1]]]


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _std(values: Sequence[float]) -> float | None:
    return statistics.pstdev(values) if values else None


@dataclass
class PromptScores:
    """The metrics of one protocol prompt (means over its images)."""

    prompt: str
    dino: float
    clip_i: float
    clip_t: float
    div: float | None  # None with one image per prompt


@dataclass
class SubjectScores:
    """The subject-fidelity metrics of one set of weights: per prompt, and PRES per class image."""

    prompts: list[PromptScores] = field(default_factory=list)
    pres: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | None]:
        """metric -> mean over prompts, metric_std -> standard deviation over prompts (PRES: class images)."""
        out: dict[str, float | None] = {}
        for metric in METRICS:
            values = self.pres if metric == "pres" else [v for p in self.prompts
                                                          if (v := getattr(p, metric)) is not None]
            out[metric], out[f"{metric}_std"] = _mean(values), _std(values)
        return out

    def ranked_prompts(self, metric: str = "dino") -> list[int]:
        """Prompt indices, best first by `metric`."""
        order = sorted(range(len(self.prompts)), key=lambda i: getattr(self.prompts[i], metric) or 0.0)
        return order[::-1] if HIGHER_IS_BETTER[metric] else order

    def as_dict(self) -> dict[str, Any]:
        return {"prompts": [asdict(p) for p in self.prompts], "pres": list(self.pres)}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> SubjectScores:
        return cls([PromptScores(**p) for p in value["prompts"]], list(value["pres"]))


def empty_summary() -> dict[str, None]:
    """The summary columns of weights without protocol images."""
    return {name: None for metric in METRICS for name in (metric, f"{metric}_std")}


# ---------------------------------------------------------------- embedding models


class DinoEmbedder:
    """A DINO ViT (ViTModel, or Dinov2Model) and its image processor: images -> CLS embeddings."""

    def __init__(self, model, processor, fingerprint: str) -> None:
        self.model, self.processor, self.fingerprint = model, processor, fingerprint

    @classmethod
    def load(cls, path_or_id: str, device=None) -> DinoEmbedder:
        """From a local folder or a hub id already in the local cache (evaluation_dino_model)."""
        from transformers import AutoConfig, AutoImageProcessor, AutoModel, ViTModel

        local_only = not Path(path_or_id).expanduser().is_dir() and hub_offline()
        try:
            config = AutoConfig.from_pretrained(str(path_or_id), local_files_only=local_only)
            # DINO v1 checkpoints are ViTModel without a pooler: its dense+tanh would be random weights.
            model = (ViTModel.from_pretrained(str(path_or_id), add_pooling_layer=False, local_files_only=local_only)
                     if config.model_type == "vit" else AutoModel.from_pretrained(str(path_or_id),
                                                                                  local_files_only=local_only))
            processor = AutoImageProcessor.from_pretrained(str(path_or_id), local_files_only=local_only)
            fingerprint = model_fingerprint(path_or_id)
        except OSError as error:
            raise FileNotFoundError(
                f"evaluation_dino_model {path_or_id!r}: no DINO ViT model and image processor there ({error}); "
                "point it at a local folder (e.g. a download of facebook/dino-vits16)"
            ) from error
        return cls(model.to(device or "cpu").eval().requires_grad_(False), processor, fingerprint)

    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """[n, hidden] float32 CPU CLS embeddings."""
        import torch

        device = next(self.model.parameters()).device
        chunks = []
        for start in range(0, len(images), _CHUNK):
            inputs = self.processor(images=list(images[start:start + _CHUNK]), return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(pixel_values=inputs["pixel_values"].to(device, self.model.dtype)).last_hidden_state
            chunks.append(hidden[:, 0].float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0)


class ClipImageEmbedder:
    """CLIP's projected image embeddings, through the scorer CLIP-T uses (one CLIP model loaded)."""

    def __init__(self, scorer: ClipScorer, fingerprint: str) -> None:
        self.scorer, self.fingerprint = scorer, fingerprint

    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        import torch

        chunks = [self.scorer.image_embeddings(images[s:s + _CHUNK]) for s in range(0, len(images), _CHUNK)]
        return torch.cat(chunks) if chunks else torch.empty(0)


# ---------------------------------------------------------------- real subject images


@dataclass(frozen=True)
class RealImage:
    """One real subject image: its content digest (the cache key of its embeddings) and where it is."""

    digest: str
    uri: str


def subject_images(config: RunConfig, store: ArtifactStore) -> list[RealImage]:
    """Every accepted image of the subject datasets (not regularisation data), by content digest."""
    return [RealImage(digest, uri) for digest, uri, _ in accepted(config, store)]


def cached_embeddings(store: ArtifactStore, images: Sequence[RealImage], embed: Callable[[list], torch.Tensor],
                      fingerprint: str) -> tuple[torch.Tensor, int]:
    """Embeddings of `images` (rows in order) and how many were computed (the rest came from the store).

    Stored per (model fingerprint, content digest) under evaluate/embeddings/, so an image that did not
    change is embedded once per model, across checkpoints, runs and reruns.
    """
    import torch

    from dreamcore.data.images import load_rgb

    def where(image: RealImage) -> str:
        return f"{EMBEDDINGS_FOLDER}/{fingerprint}/{image.digest}.json"

    found = {i.digest: torch.tensor(store.read_json(where(i))) for i in images if store.exists(where(i))}
    missing = list({i.digest: i for i in images if i.digest not in found}.values())
    if missing:
        pictures = []
        for image in missing:
            fs, path = url_to_fs(image.uri)
            pictures.append(load_rgb(fs.cat_file(path)))
        for image, row in zip(missing, embed(pictures), strict=True):
            store.write_json(where(image), [float(v) for v in row])
            found[image.digest] = row
    return torch.stack([found[i.digest].float() for i in images]), len(missing)


# ---------------------------------------------------------------- scoring one set of weights


@dataclass
class SubjectScorer:
    """DINO and CLIP with the real images' embeddings: scores the protocol images of any weights."""

    protocol: SubjectProtocol
    dino: DinoEmbedder
    clip: ClipImageEmbedder
    real_dino: torch.Tensor
    real_clip: torch.Tensor
    batch_size: int = 4

    def score(self, by_prompt: Sequence[Sequence[Image.Image]], class_images: Sequence[Image.Image]) -> SubjectScores:
        """Metrics of the images drawn for each protocol prompt (same order) and for the class prompt."""
        if len(by_prompt) != len(self.protocol.prompts):
            raise ValueError(f"{len(by_prompt)} image groups for {len(self.protocol.prompts)} protocol prompts")
        flat = [image for group in by_prompt for image in group]
        prompts = [prompt for prompt, group in zip(self.protocol.prompts, by_prompt, strict=True) for _ in group]
        dino, clip_i = self.dino.embed(flat), self.clip.embed(flat)
        clip_t = self.clip.scorer.score(flat, prompts)
        dino_sim, clip_sim = pair_similarity(dino, self.real_dino), pair_similarity(clip_i, self.real_clip)
        scores, start = [], 0
        for prompt, group in zip(self.protocol.prompts, by_prompt, strict=True):
            part = slice(start, start + len(group))
            start += len(group)
            scores.append(PromptScores(prompt, statistics.fmean(dino_sim[part]), statistics.fmean(clip_sim[part]),
                                       statistics.fmean(clip_t[part]), _mean(pairwise_distances(dino[part]))))
        pres = pair_similarity(self.dino.embed(list(class_images)), self.real_dino) if class_images else []
        return SubjectScores(scores, pres)


@dataclass(frozen=True)
class SubjectSetup:
    """What a SubjectScorer is loaded from: the run (models, datasets), its store and the protocol."""

    config: RunConfig
    store: ArtifactStore
    protocol: SubjectProtocol

    def load(self, device, clip: ClipScorer | None = None) -> SubjectScorer:
        """DINO + CLIP (reusing `clip` when the evaluator already loaded it) and the real images' embeddings."""
        training = self.config.training
        real = subject_images(self.config, self.store)
        if not real:
            raise ValueError("the subject-fidelity protocol compares with the real subject images, but no image "
                             "dataset (other than regularisation data) has accepted images; check the ingest report")
        dino = DinoEmbedder.load(training.evaluation_dino_model, device)
        clip_path = training.pretrained_evaluation_model_name_or_path
        clip_embedder = ClipImageEmbedder(clip or ClipScorer.load(clip_path, device), model_fingerprint(clip_path))
        real_dino, new_dino = cached_embeddings(self.store, real, dino.embed, dino.fingerprint)
        real_clip, new_clip = cached_embeddings(self.store, real, clip_embedder.embed, clip_embedder.fingerprint)
        logger.info("real subject images: %d (embeddings computed now: DINO %d, CLIP %d; the rest reused from %s)",
                    len(real), new_dino, new_clip, EMBEDDINGS_FOLDER)
        return SubjectScorer(self.protocol, dino, clip_embedder, real_dino, real_clip, training.evaluation_batch_size)


def subject_setup(config: RunConfig, store: ArtifactStore, quick: bool = False) -> SubjectSetup | None:
    """The run's protocol setup, or None when the protocol is off."""
    protocol = protocol_from_config(config.training, quick)
    return SubjectSetup(config, store, protocol) if protocol is not None else None


# ---------------------------------------------------------------- for sweeps and guards


def metrics_by_weights(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """weights name -> every metric of the evaluate stage's summary rows (details["rows"] of its result).

    The keys a ranking can use: eval_loss, clip_mean and the protocol's dino, clip_i, clip_t, pres, div
    (with *_std); see HIGHER_IS_BETTER for their directions (eval loss: lower is better).
    """
    keys = ("eval_loss", "clip_mean", *(name for m in METRICS for name in (m, f"{m}_std")))
    return {row["weights"]: {key: row.get(key) for key in keys} for row in rows}


def rank_weights(rows: Sequence[dict[str, Any]], metric: str) -> list[str]:
    """Weights names, best first by `metric` (weights without it last)."""
    directions = {**HIGHER_IS_BETTER, "eval_loss": False, "clip_mean": True}
    if metric not in directions:
        raise ValueError(f"metric {metric!r}: rank by one of {', '.join(sorted(directions))}")
    table = metrics_by_weights(rows)
    scored = sorted((n for n in table if table[n][metric] is not None), key=lambda n: table[n][metric],
                    reverse=directions[metric])
    return scored + [n for n in table if table[n][metric] is None]
