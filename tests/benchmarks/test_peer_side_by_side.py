"""The SD 1.x peer benchmark's own parts, without the peer (tests must not need ../shared): it skips
cleanly when the peer copy is absent, the dreamcore side runs as one `--until train` process and
yields the figures, the peer's command line carries the same settings, and the goals are judged."""

import pytest


def test_without_the_peer_copy_it_says_so_and_exits_0(tmp_path, capsys):
    import peer_side_by_side

    assert peer_side_by_side.main(["--peer-dir", str(tmp_path), "--workdir", str(tmp_path / "work")]) == 0
    assert "no train_dreambooth_lora.py in" in capsys.readouterr().out
    assert not (tmp_path / "work").exists()  # nothing was built or run


def test_dreamcore_side_is_one_process_and_gives_steps_wall_and_rss(tiny_models, tmp_path):
    import peer_side_by_side
    import transformer_peer

    settings = {"resolution": 64, "steps": 12, "steady_from": 10, "batch": 2, "rank": 4, "lr": 1e-4, "seed": 0,
                "threads": 1, "precision": "no"}
    images = transformer_peer.write_images(tmp_path / "images", 64)
    env = transformer_peer.tool_environment(1, [transformer_peer.REPOSITORY])
    (row,) = peer_side_by_side.run_round(("dreamcore",), tmp_path / "round", tiny_models["sd"], images, settings,
                                         tmp_path, env)

    assert len(row["process_s"]) == 1 and row["steps_per_s"] > 0 and row["peak_mb"] > 0
    config = transformer_peer.write_dreamcore_config(tmp_path / "again", "sd1x", tiny_models["sd"], images, settings)
    assert "--peft_lora_target_modules" not in config.read_text()  # dreamcore's defaults are the peer's targets


def test_peer_command_carries_the_settings(tmp_path):
    import transformer_peer

    settings = {"resolution": 64, "steps": 60, "batch": 2, "rank": 4, "lr": 1e-4, "seed": 0, "threads": 2,
                "precision": "bf16"}
    command = transformer_peer.peer_command(tmp_path, "sd1x", tmp_path / "model", tmp_path, tmp_path / "out", settings)

    assert command[command.index("--rank") + 1] == "4" and command[command.index("--max_train_steps") + 1] == "60"
    assert command.count("bf16") == 2  # accelerate's and the script's --mixed_precision
    assert "--max_sequence_length" not in command and str(tmp_path / "train_dreambooth_lora.py") in command


@pytest.mark.parametrize(("ours", "goal"), [(13.0, ">= 1.3x: met"), (12.0, ">= 1.3x: NOT met")])
def test_summary_takes_medians_and_judges_the_goals(ours, goal):
    import peer_side_by_side

    rows = [{"tool": "peer", "steps_per_s": 10.0, "wall_s": 10.0, "peak_mb": 500.0},
            {"tool": "peer", "steps_per_s": 1.0, "wall_s": 30.0, "peak_mb": 500.0},
            {"tool": "peer", "steps_per_s": 11.0, "wall_s": 9.0, "peak_mb": 500.0},
            {"tool": "dreamcore", "steps_per_s": ours, "wall_s": 9.0, "peak_mb": 510.0}]
    steps, wall, rss = peer_side_by_side.summary(rows, "tiny")

    assert (steps["peer"], steps["dreamcore"], steps["goal"]) == (10.0, ours, goal)
    assert (wall["ratio"], wall["goal"]) == (0.9, "<= 1.0x: met")
    assert rss["goal"] == "<= 1.0x: NOT met"


def test_each_model_and_precision_has_its_own_results_file():
    import peer_side_by_side

    names = {peer_side_by_side.results_file(model, precision).name
             for model in ("tiny", "sd15") for precision in ("no", "bf16")}

    assert names == {"peer_side_by_side.md", "peer_side_by_side_bf16.md", "peer_side_by_side_sd15.md",
                     "peer_side_by_side_sd15_bf16.md"}


def test_deepfloyd_runs_the_same_peer_script_on_if_stage_one_with_its_t5_settings(tmp_path):
    import peer_side_by_side
    import transformer_peer

    settings = {"resolution": 64, "steps": 60, "batch": 2, "rank": 4, "lr": 1e-4, "seed": 0, "threads": 2}
    command = transformer_peer.peer_command(tmp_path, "deepfloyd", tmp_path / "model", tmp_path, tmp_path / "out",
                                            settings)

    assert str(tmp_path / "train_dreambooth_lora.py") in command
    assert command[command.index("--tokenizer_max_length") + 1] == "77"  # IFPipeline.encode_prompt's length
    assert "--text_encoder_use_attention_mask" in command and "--pre_compute_text_embeddings" in command
    assert peer_side_by_side.results_file("tiny", "no", "deepfloyd").name == "peer_side_by_side_deepfloyd.md"
