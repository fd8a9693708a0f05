"""The CPU bf16 benchmark runs both precisions on the tiny model from one set of caches, and its table
judges the goal and compares the loss curves (so the script does not rot)."""

import argparse

import pytest


def test_both_precisions_train_from_one_cache_and_record_their_loss_curves(tmp_path, capsys):
    import cpu_bf16

    assert cpu_bf16.main(["--model", "tiny", "--steps", "2", "--warmup", "1", "--threads", "1",
                          "--workdir", str(tmp_path / "work"), "--models-dir", str(tmp_path / "models"),
                          "--no-write"]) == 0

    out = capsys.readouterr().out
    assert "| fp32 (`no`) |" in out and "| bf16 autocast |" in out and "goal >= 1.5x" in out
    assert "| 3 |" in out  # warm-up and timed steps each have a loss row
    assert len(list((tmp_path / "work" / "artifacts").glob("vae_cache/*"))) == 1  # one cache for both


def test_the_table_judges_the_goal_and_measures_the_loss_gap():
    import cpu_bf16

    rows = [{"asked": "no", "precision": "no", "steps_per_s": 0.1, "peak_mb": 1000.0, "losses": [1.0, 0.5],
             "load": 1.0},
            {"asked": "bf16", "precision": "bf16", "steps_per_s": 0.16, "peak_mb": 800.0, "losses": [1.01, 0.5],
             "load": 1.0}]
    args = argparse.Namespace(model="sd15", resolution=512, batch=1, steps=2, warmup=0, threads=2, rounds=1,
                              onednn_max_isa=None)

    text = cpu_bf16.table(rows, args)

    assert "**1.60x** (goal >= 1.5x: met)" in text and "0.80x" in text
    assert cpu_bf16.loss_gap([1.0, 0.5], [1.01, 0.5]) == pytest.approx({"mean_relative": 0.005, "max_relative": 0.01})
    rows[1]["steps_per_s"] = 0.12
    assert "goal >= 1.5x: NOT met" in cpu_bf16.table(rows, args)
