"""The GPU suite runs on CPU with the tiny SDXL (so the script cannot rot): the bf16 variant through the
whole script (its own process), the int8-quanto one in this process over the same caches, both with their
FLOP count; the peer is left out without its copy, and its command line carries the suite's settings and
leaves the CPU when there is a GPU."""

import json


def test_the_suite_runs_on_cpu_with_the_tiny_sdxl(tmp_path, capsys):
    import gpu_suite

    work = tmp_path / "work"
    assert gpu_suite.main(["--model", "tiny", "--resolution", "64", "--batch", "1", "--steps", "2", "--warmup", "1",
                           "--rank", "4", "--threads", "1", "--variants", "bf16", "--workdir", str(work),
                           "--models-dir", str(tmp_path / "models"), "--peer-dir", str(tmp_path / "no-peer"),
                           "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "no train_dreambooth_lora_sdxl.py in" in out
    (row,) = [json.loads(line) for line in out.splitlines() if line.startswith('{"variant"')]
    assert row["variant"] == "bf16" and row["tool"] == "dreamcore"
    assert row["steps_per_s"] > 0 and row["peak_mb"] > 0 and row["step_tflop"] > 0 and row["tflop_per_s"] > 0
    assert "| dreamcore | bf16 |" in out

    settings = {"steps": 2, "warmup": 1, "threads": 1}
    quantised = gpu_suite.run_variant(work / "config-int8-quanto+lora.json", "int8-quanto", settings)
    assert quantised["steps_per_s"] > 0 and quantised["step_tflop"] > 0


def test_peer_command_has_the_suite_settings_and_uses_the_gpu_when_there_is_one(tmp_path):
    import gpu_suite

    settings = {"resolution": 1024, "batch": 1, "steps": 20, "warmup": 3, "rank": 16, "threads": 8}
    on_gpu = gpu_suite.peer_command(tmp_path, tmp_path / "sdxl", tmp_path / "images", tmp_path / "out", settings, True)
    on_cpu = gpu_suite.peer_command(tmp_path, tmp_path / "sdxl", tmp_path / "images", tmp_path / "out", settings, False)

    assert "--cpu" not in on_gpu and "--cpu" in on_cpu
    assert str(tmp_path / "train_dreambooth_lora_sdxl.py") in on_gpu
    assert on_gpu[on_gpu.index("--max_train_steps") + 1] == "23" and on_gpu[on_gpu.index("--resolution") + 1] == "1024"
    assert on_gpu.count("bf16") == 2 and on_gpu[on_gpu.index("--rank") + 1] == "16"
