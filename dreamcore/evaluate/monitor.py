"""In-training validation: images (+ previews) every validation_steps, eval loss every eval_steps_interval.

The trainer calls `on_start(base, adapter)` once before its first step and `on_step(step, base)`
after every optimiser step, on the main process only. `base` is the trainer's BaseModel (unet
with the adapter applied, noise_scheduler, prediction_type, family); `adapter.disabled()` gives
the base model's UNet for the "before" row. Results go to `<folder>/step-<8 digits>/` (result.json
last), which the evaluate stage's report shows as "During training". With the subject-fidelity
protocol on, every validation also draws the protocol's quick subset (5 prompts) and scores it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dreamcore.drawing.cascade import with_first_stage
from dreamcore.drawing.pipelines import fixed_variance, load_validation_pipeline, pipeline_dtype
from dreamcore.evaluate.eval_set import eval_set_of_caches
from dreamcore.evaluate.evaluation import Evaluation, read_evaluation, save_evaluation
from dreamcore.evaluate.plans import validation_plan_for
from dreamcore.evaluate.setup import evaluation_size, make_evaluator
from dreamcore.evaluate.subject_fidelity import subject_setup
from dreamcore.evaluate.validation import ValidationPlan, live_unet

if TYPE_CHECKING:
    from dreamcore.cache.batch import TrainingBatch
    from dreamcore.config import TrainingConfig
    from dreamcore.evaluate.subject_fidelity import SubjectSetup
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.plan import TrainPlan

logger = logging.getLogger(__name__)


def monitor_folder(train_stage_folder: str) -> str:
    """Where a train stage's in-training validation results live."""
    return f"{train_stage_folder}/monitor"


def training_monitor_factory(plan: TrainPlan, store: ArtifactStore):
    """`make_monitor` for train_stage: a TrainingMonitor per train stage folder, or None when nothing
    is due during training. The eval rows come from the cache results the plan trains on (loaded only when
    eval loss is asked for); the family is the plan's."""
    training, config = plan.training, plan.run_config
    eval_batches = []
    if training.eval_steps_interval and plan.caches is not None:
        eval_batches = eval_set_of_caches(config, store, plan.caches.vae_cache, plan.caches.text_cache).batches
    validation = None
    if training.validation_steps and not training.validation_disable:  # a refiner's plan reads the datasets
        validation = validation_plan_for(config, store, plan.model_family())
    subject = subject_setup(config, store, quick=True) if training.validation_steps else None
    if not TrainingMonitor(training, store, "", eval_batches, plan=validation, subject=subject).active:
        return None
    return lambda folder: TrainingMonitor(training, store, monitor_folder(folder), eval_batches, plan=validation,
                                          subject=subject)


class TrainingMonitor:
    """Validation images, CLIP scores, eval loss and previews at fixed step intervals during training."""

    def __init__(self, config: TrainingConfig, store: ArtifactStore, folder: str,
                 eval_batches: list[TrainingBatch] | None = None, device=None, plan: ValidationPlan | None = None,
                 subject: SubjectSetup | None = None) -> None:
        self.config, self.store, self.folder = config, store, folder
        self.subject = subject  # the protocol's quick subset, drawn with every validation
        # What validation draws: the config's prompts, or (refiner) dataset images to refine.
        self.plan = plan if plan is not None else ValidationPlan.from_config(config)
        self.eval_batches = list(eval_batches or [])
        self.device = device
        self.evaluations: list[Evaluation] = []
        self._evaluator = None
        self._pipe = None

    @property
    def active(self) -> bool:
        """True when some step will validate or evaluate."""
        return self._draws or bool(self.config.eval_steps_interval and self.eval_batches)

    @property
    def _draws(self) -> bool:
        """True when validations draw something: validation prompts or the protocol."""
        return bool(self.config.validation_steps and (self.plan.prompts or self.subject is not None))

    def due(self, step: int) -> tuple[bool, bool]:
        """(draw images, compute eval loss) at this optimiser step."""
        config = self.config
        images = bool(self._draws and step % config.validation_steps == 0)
        loss = bool(config.eval_steps_interval and step % config.eval_steps_interval == 0 and self.eval_batches)
        return images, loss

    def on_start(self, base, adapter) -> Evaluation | None:
        """The base model's row (adapter off) at step 0, unless disable_benchmark or nothing is due ever."""
        if not self.active or self.config.disable_benchmark:
            return None
        images = self._draws
        loss = bool(self.config.eval_steps_interval and self.eval_batches)
        with adapter.disabled() as base_unet:
            return self._run(0, "base", base_unet, base, images, loss)

    def on_step(self, step: int, base) -> Evaluation | None:
        """Validate and/or evaluate when `step` is due; returns what was measured (None when nothing was due)."""
        images, loss = self.due(step)
        if not (images or loss):
            return None
        return self._run(step, f"step-{step}", base.unet, base, images, loss)

    def close(self) -> None:
        """Free the validation pipeline (VAE, text encoders) and CLIP."""
        self._pipe = self._evaluator = None

    def _run(self, step: int, name: str, unet, base, images: bool, loss: bool) -> Evaluation:
        part = f"{self.folder}/step-{step:08d}"
        done = read_evaluation(self.store, part, with_images=False)
        if done is not None:  # a resumed run already has it
            return done
        evaluator = self._setup(base)
        pipe = self._pipeline(unet, base.family) if images else None
        if pipe is not None:
            with live_unet(pipe, unet) as live, fixed_variance(live) as ready:
                result = evaluator.evaluate(ready, unet, base.noise_scheduler, base.prediction_type, name, step,
                                            images=True, loss=loss)
        else:
            result = evaluator.evaluate(None, unet, base.noise_scheduler, base.prediction_type, name, step,
                                        images=False, loss=loss)
        save_evaluation(self.store, part, result)
        self.evaluations.append(result)
        logger.info("step %d: %s", step, result.summary_row())
        return result

    def _setup(self, base):
        if self._evaluator is None:
            device = self.device or next(base.unet.parameters()).device
            self._evaluator = make_evaluator(self.config, self.eval_batches, base.noise_scheduler, base.family, device,
                                             self.plan, self.subject)
            images = f"every {self.config.validation_steps} steps" if self._draws else "never"
            loss = f"every {self.config.eval_steps_interval} steps" if self.config.eval_steps_interval else "never"
            logger.info("in-training evaluation (images %s, eval loss %s), each: %s", images, loss,
                        evaluation_size(self._evaluator, 1, self.plan.size))
        return self._evaluator

    def _pipeline(self, unet, family):
        if self._pipe is None:
            device = self.device or next(unet.parameters()).device
            dtype = pipeline_dtype(self.config.mixed_precision, device)
            pipe = load_validation_pipeline(self.config.pretrained_model_name_or_path, device, dtype, with_unet=False,
                                            family=family)
            self._pipe = with_first_stage(pipe, self.config, family, device, dtype)  # an upscaler's stage I
        return self._pipe
