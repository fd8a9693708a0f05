"""TrainingMonitor: in-training validation images, eval loss and previews, called from the trainer's loop."""

from __future__ import annotations

from dreamcore.config import TrainingConfig
from dreamcore.evaluate.monitor import TrainingMonitor
from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource, collate, demo_samples
from dreamcore.train.trainer import Trainer, make_accelerator


def test_monitor_validates_and_evaluates_at_its_intervals(tiny_models, tmp_path, receiver) -> None:
    samples = demo_samples(tiny_models["sd"], tmp_path / "demo", subjects=3, regularisation=0)
    config = TrainingConfig(
        pretrained_model_name_or_path=str(tiny_models["sd"]), model_family="sd1x", mixed_precision="no",
        max_train_steps=4, checkpointing_steps=4, train_batch_size=2, lora_rank=4, learning_rate=1e-2,
        optimizer="adamw", validation_prompt="sks toy", validation_steps=2, validation_num_inference_steps=2,
        validation_resolution=64, eval_steps_interval=1, eval_timesteps=2, validation_preview=True,
        validation_preview_steps=1, validation_preview_vae=str(tiny_models["taesd"]),
        webhook_config={"callback_url": receiver.url, "auth_token": "tok"},
    )
    store = ArtifactStore(str(tmp_path / "artifacts"))
    trainer = Trainer(config, store, "train/t", InMemoryBatchSource(samples[:2], 2), make_accelerator(config),
                      show_progress=False).setup()
    monitor = TrainingMonitor(config, store, "train/t/monitor", [collate(samples[2:])])
    trainer.on_step = lambda entry: monitor.on_step(entry["step"], trainer.base)
    monitor.on_start(trainer.base, trainer.adapter)
    trainer.train()

    measured = {e.name: e for e in monitor.evaluations}
    assert list(measured) == ["base", "step-1", "step-2", "step-3", "step-4"]
    assert [len(e.images) for e in measured.values()] == [1, 0, 1, 0, 1]
    losses = [e.eval_loss.mean for e in measured.values()]
    assert len(set(losses)) == 5  # every step moved the weights, and eval loss saw it
    assert [b["label"] for b in receiver.json_bodies()] == ["base p0 seed 42"] * 2 + ["step-2 p0 seed 42"] * 2 + \
        ["step-4 p0 seed 42"] * 2
    assert store.exists("train/t/monitor/step-00000002/p00-seed42.png")
    assert store.exists("train/t/monitor/step-00000003/result.json")
    # The base row measured the untrained model: a freshly loaded base UNet gives the same eval loss.
    from diffusers import UNet2DConditionModel

    from dreamcore.evaluate.eval_loss import compute_eval_loss

    fresh = UNet2DConditionModel.from_pretrained(str(tiny_models["sd"]), subfolder="unet")
    timesteps = sorted(measured["base"].eval_loss.per_timestep)
    assert compute_eval_loss(fresh, trainer.base.noise_scheduler, trainer.base.prediction_type,
                             [collate(samples[2:])], timesteps, seed=42) == measured["base"].eval_loss
    again = TrainingMonitor(config, store, "train/t/monitor", [collate(samples[2:])]).on_start(trainer.base, trainer.adapter)
    assert again.eval_loss == measured["base"].eval_loss  # read back, not recomputed


def test_monitor_draws_the_quick_protocol_and_logs_its_size(tiny_models, tmp_path, caplog) -> None:
    import logging

    from dreamcore.config import DatasetSpec, RunConfig
    from dreamcore.evaluate.subject_fidelity import subject_setup
    from dreamcore.pipeline import run_ingest

    samples = demo_samples(tiny_models["sd"], tmp_path / "demo", subjects=2, regularisation=0, masks=False)
    config = RunConfig(
        training={"pretrained_model_name_or_path": str(tiny_models["sd"]), "model_family": "sd1x",
                  "mixed_precision": "no", "max_train_steps": 2, "checkpointing_steps": 2, "train_batch_size": 2,
                  "lora_rank": 4, "learning_rate": 1e-2, "optimizer": "adamw", "validation_steps": 2,
                  "validation_num_inference_steps": 2, "validation_resolution": 64, "validation_seed": 3,
                  "evaluation_prompt_set": "dreambooth_live", "evaluation_token": "sks", "evaluation_class": "dog",
                  "evaluation_images_per_prompt": 2, "evaluation_dino_model": str(tiny_models["dino"]),
                  "pretrained_evaluation_model_name_or_path": str(tiny_models["clip"]),
                  "storage_root": str(tmp_path / "artifacts")},
        datasets=[DatasetSpec(id="subject", instance_data_dir=str(tmp_path / "demo" / "instance_images"))],
    )
    store = ArtifactStore(config.training.resolved_storage_root)
    run_ingest(config, store)
    training = config.training
    trainer = Trainer(training, store, "train/t", InMemoryBatchSource(samples, 2), make_accelerator(training),
                      show_progress=False).setup()
    monitor = TrainingMonitor(training, store, "train/t/monitor", subject=subject_setup(config, store, quick=True))
    trainer.on_step = lambda entry: monitor.on_step(entry["step"], trainer.base)
    with caplog.at_level(logging.INFO, logger="dreamcore.evaluate"):
        monitor.on_start(trainer.base, trainer.adapter)
        trainer.train()

    assert [e.name for e in monitor.evaluations] == ["base", "step-2"]  # no validation prompt: the protocol alone
    assert all(len(e.subject.prompts) == 5 and len(e.subject.pres) == 2 for e in monitor.evaluations)
    assert [r.message for r in caplog.records if r.message.startswith("in-training evaluation")] == [
        "in-training evaluation (images every 2 steps, eval loss never), each: 1 weights x (protocol 5 prompts + "
        "class prompt x 2 images (batches of 4)), 2 sampling steps at 64x64; no eval loss"]
    saved = store.read_json("train/t/monitor/step-00000002/result.json")["subject"]
    assert saved["prompts"][2]["prompt"] == "a sks dog wearing a red hat"
