"""Train digests are content digests: the same training in two processes (different hash seeds) and two
storage roots gives one digest; and its export files are byte-identical, their metadata laid out canonically
whichever process wrote them."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load, save, save_file

from dreamcore.storage.digests import canonical_safetensors, content_digest, safetensors_digest

SCRIPT = Path(__file__).with_name("digest_training.py")
REPO = Path(__file__).resolve().parents[3]


def _safetensors(tmp_path: Path, tensors: dict, metadata: dict) -> bytes:
    path = tmp_path / "w.safetensors"
    save_file(tensors, path, metadata=metadata)
    return path.read_bytes()


def test_safetensors_digest_is_over_tensors_and_canonical_metadata(tmp_path) -> None:
    a, b = torch.arange(6.0).reshape(2, 3), torch.ones(4)
    config = {"r": 4, "unet.target_modules": ["to_q", "to_k", "to_v"], "lora_alpha": 4}
    reordered = {"lora_alpha": 4, "unet.target_modules": ["to_v", "to_q", "to_k"], "r": 4}
    first = _safetensors(tmp_path, {"a": a, "b": b}, {"format": "pt", "cfg": json.dumps(config)})
    second = _safetensors(tmp_path, {"b": b, "a": a}, {"cfg": json.dumps(reordered, indent=2), "format": "pt"})
    assert first != second  # different bytes...
    assert safetensors_digest(first) == safetensors_digest(second)  # ...same content
    assert content_digest("x.safetensors", first) == safetensors_digest(first)
    changed = _safetensors(tmp_path, {"a": a, "b": b * 2}, {"format": "pt", "cfg": json.dumps(config)})
    other_meta = _safetensors(tmp_path, {"a": a, "b": b}, {"format": "pt", "cfg": json.dumps(config | {"r": 8})})
    reshaped = _safetensors(tmp_path, {"a": a.reshape(3, 2), "b": b}, {"format": "pt", "cfg": json.dumps(config)})
    half = _safetensors(tmp_path, {"a": a.half(), "b": b}, {"format": "pt", "cfg": json.dumps(config)})
    digests = {safetensors_digest(d) for d in (first, changed, other_meta, reshaped, half)}
    assert len(digests) == 5
    # An ordered list (not a set of names) keeps its order.
    ordered = _safetensors(tmp_path, {"a": a}, {"cfg": json.dumps({"layers": [1, 2]})})
    swapped = _safetensors(tmp_path, {"a": a}, {"cfg": json.dumps({"layers": [2, 1]})})
    assert safetensors_digest(ordered) != safetensors_digest(swapped)
    assert struct.unpack("<Q", first[:8])[0] > 0


def test_canonical_safetensors_is_one_layout_of_one_content() -> None:
    """safetensors keeps metadata in a hash map seeded per map: saving one content again lays it out anew."""
    tensors = {"b": torch.ones(3, dtype=torch.float16), "a": torch.arange(4.0)}
    metadata = {"format": "pt", "ss_network_dim": "4", "ss_network_alpha": "4.0", "cfg": json.dumps({"r": 4}),
                "note": "caf\u00e9"}
    raw = [save(tensors, metadata=dict(reversed(metadata.items())) if i % 2 else metadata) for i in range(12)]
    assert len(set(raw)) > 1  # the writer's own layouts differ (what the exports used to carry)
    canonical = {canonical_safetensors(data) for data in raw}
    assert len(canonical) == 1
    (data,) = canonical
    (size,) = struct.unpack("<Q", data[:8])
    assert size % 8 == 0 and list(json.loads(data[8:8 + size])["__metadata__"]) == sorted(metadata)
    assert safetensors_digest(data) == safetensors_digest(raw[0])
    loaded = load(data)
    assert all(torch.equal(loaded[name], tensor) for name, tensor in tensors.items())
    assert canonical_safetensors(data) == data


@pytest.mark.slow
def test_the_same_training_in_two_processes_gives_one_digest(sd_samples, make_config, tmp_path) -> None:
    samples_file, config_file = tmp_path / "samples.pt", tmp_path / "config.json"
    torch.save(sd_samples, samples_file)
    config_file.write_text(make_config(max_train_steps=2, checkpointing_steps=2).model_dump_json())
    results, metadata, exports = [], [], []
    for seed in ("1", "2"):
        root = tmp_path / f"root-{seed}"
        env = os.environ | {"PYTHONHASHSEED": seed, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                            "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, str(SCRIPT), str(samples_file), str(config_file), str(root)],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        (export,) = root.glob("train/*/export")
        exports.append({p.relative_to(export).as_posix(): p.read_bytes() for p in export.rglob("*") if p.is_file()})
        weights = export / "diffusers" / "pytorch_lora_weights.safetensors"
        data = weights.read_bytes()
        (size,) = struct.unpack("<Q", data[:8])
        metadata.append(json.loads(data[8:8 + size])["__metadata__"])
    assert results[0]["key"] == results[1]["key"]
    assert results[0]["digest"] == results[1]["digest"]
    assert sorted(exports[0]) == ["diffusers/pytorch_lora_weights.safetensors", "kohya/lora_kohya.safetensors"]
    assert exports[0] == exports[1]  # byte-identical files, not only equal digests
    # The adapter metadata is written in a stable order too (target_modules sorted).
    assert metadata[0] == metadata[1]
    modules = json.loads(metadata[0]["lora_adapter_metadata"])["unet.target_modules"]
    assert modules == sorted(modules)
