"""The peer benchmark's own parts, without the peer (tests must not need ../shared): the config it gives
dreamcore, the peer's command line, and the step timestamps it reads from tqdm."""

import json
import os
import sys

import pytest


def test_dreamcore_config_trains_what_the_peer_trains(tiny_models, tmp_path):
    import transformer_peer

    from dreamcore.config import load_run_config
    from dreamcore.models.families.flux import flux_lora_targets

    settings = {"resolution": 64, "batch": 2, "rank": 4, "lr": 1e-4, "steps": 12, "seed": 0, "threads": 2,
                "t5_tokens": 64}
    path = transformer_peer.write_dreamcore_config(tmp_path / "run", "flux", tiny_models["flux"], tmp_path, settings)
    config = load_run_config(path)

    training = config.training
    assert flux_lora_targets(training) == transformer_peer.PEER_LORA_TARGETS["flux"]
    assert (training.lora_rank, training.train_batch_size, training.max_train_steps) == (4, 2, 12)
    assert training.tokenizer_max_length == 64 and training.mixed_precision == "no"
    assert config.dataset("subject").instance_prompt == transformer_peer.INSTANCE_PROMPT
    peer = transformer_peer.peer_command(tmp_path, "flux", tiny_models["flux"], tmp_path, tmp_path / "out", settings)
    assert peer[peer.index("--max_sequence_length") + 1] == "64"
    assert peer[peer.index("--instance_prompt") + 1] == transformer_peer.INSTANCE_PROMPT


def test_qwen_image_trains_the_peers_targets_at_its_caption_length_into_its_own_results_file(tiny_models, tmp_path):
    import transformer_peer

    from dreamcore.config import load_run_config

    settings = {"resolution": 64, "batch": 2, "rank": 4, "lr": 1e-4, "steps": 12, "seed": 0, "threads": 2,
                "t5_tokens": 32}
    path = transformer_peer.write_dreamcore_config(tmp_path / "run", "qwen_image", tiny_models["qwen_image"],
                                                   tmp_path, settings)
    training = load_run_config(path).training
    assert training.lora_target_modules == transformer_peer.PEER_LORA_TARGETS["qwen_image"]
    assert training.tokenizer_max_length == 32
    peer = transformer_peer.peer_command(tmp_path, "qwen_image", tiny_models["qwen_image"], tmp_path, tmp_path / "out",
                                         settings)
    assert peer[peer.index("--max_sequence_length") + 1] == "32"
    assert str(tmp_path / "train_dreambooth_lora_qwen_image.py") in peer
    assert transformer_peer.results_name(["qwen_image"]) == "transformer_peer_qwen_image.md"
    assert transformer_peer.results_name(["flux", "sd3"]) == "transformer_peer.md"


def test_step_timestamps_come_from_a_tqdm_bar_in_another_process(tmp_path):
    import transformer_peer

    script = "from tqdm import tqdm\nfor _ in tqdm(range(12), desc='train'):\n    pass\nprint('done')\n"
    env = transformer_peer.tool_environment(threads=1, pythonpath=[])
    measured = transformer_peer.run_processes([[sys.executable, "-c", script]], env, tmp_path / "bar")

    stamps = transformer_peer.step_times(measured["output"], "train")
    assert sorted(stamps) == list(range(13))
    assert transformer_peer.steady_steps_per_s(stamps, 12) > 0
    assert measured["peak_mb"] > 0 and len(measured["process_s"]) == 1
    with pytest.raises(RuntimeError, match="no timestamp"):
        transformer_peer.steady_steps_per_s(stamps, 20)


def test_a_failing_process_stops_the_run_and_shows_its_output(tmp_path):
    import transformer_peer

    failing = [sys.executable, "-c", "print(" + json.dumps("config refused") + "); raise SystemExit(3)"]
    never = [sys.executable, "-c", f"open({str(tmp_path / 'ran')!r}, 'w')"]
    with pytest.raises(RuntimeError, match="exited 3(.|\n)*config refused"):
        transformer_peer.run_processes([failing, never], dict(os.environ), tmp_path / "run")
    assert not (tmp_path / "ran").exists()


def test_lumina2_trains_the_peers_layers_at_its_length_into_its_own_results_file(tiny_models, tmp_path):
    import transformer_peer

    from dreamcore.config import load_run_config
    from dreamcore.models import family_named

    settings = {"resolution": 64, "batch": 2, "rank": 4, "lr": 1e-4, "steps": 12, "seed": 0, "threads": 2,
                "t5_tokens": 64}
    path = transformer_peer.write_dreamcore_config(tmp_path / "run", "lumina2", tiny_models["lumina2"], tmp_path,
                                                   settings)
    training = load_run_config(path).training
    # the peer's default lora_layers: to_k, to_q, to_v, to_out.0
    assert family_named("lumina2").lora_targets(training) == ["to_k", "to_q", "to_v", "to_out.0"]
    assert training.tokenizer_max_length == 64
    peer = transformer_peer.peer_command(tmp_path, "lumina2", tiny_models["lumina2"], tmp_path, tmp_path / "out",
                                         settings)
    assert peer[peer.index("--max_sequence_length") + 1] == "64" and "--system_prompt" not in peer  # its default
    assert transformer_peer.results_name(["lumina2"]) == "transformer_peer_lumina2.md"
    assert transformer_peer.results_name(["flux", "sd3"]) == "transformer_peer.md"
