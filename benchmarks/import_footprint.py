"""Benchmark: where each tool's peak memory goes on the tiny model, libraries against work.

peer_side_by_side.py's tiny project, run cold once by each tool (dreamcore: `run --until train`, one
process; the peer: diffusers' train_dreambooth_lora.py under accelerate, when its copy is present). A
`sitecustomize` on PYTHONPATH records, as each tool's training process exits, its peak RSS and every
module it imported. Then a fresh process imports exactly that module set and nothing else: its peak RSS
is the tool's library footprint, and the run's peak above it is what its work (models, caches, activations,
optimiser) cost. For dreamcore the set is also imported without pyarrow (the Parquet caches' library, which
the peer does not load), to price it. The recorder also sums each process's resident memory at exit by
mapping (/proc/self/smaps): anonymous memory (heap, tensors, Python objects) against the pages of each
package's shared libraries.

    .venv/bin/python benchmarks/import_footprint.py     # about a minute; writes results/import_footprint.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import transformer_peer

RESULTS = Path(__file__).parent / "results"
SETTINGS = {"resolution": 64, "steps": 30, "batch": 2, "rank": 4, "lr": 1e-4, "seed": 0, "threads": 1,
            "precision": "no"}
# This process's own peak RSS in MB: VmHWM, not ru_maxrss, which a child inherits from a larger parent
# (the test runner) across fork and exec.
PEAK_MB = """\
def _peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
"""
# Written as the recording sitecustomize: at exit, the process that trained (it imported diffusers) writes
# its peak RSS, module names and resident kB by mapped file ("" for anonymous memory) to
# $DREAMCORE_MODULE_RECORD.
RECORDER = PEAK_MB + """\
import atexit, json, os, re, sys

def _resident_by_mapping():
    resident, mapping = {}, ""
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
                fields = line.split()
                mapping = fields[5] if len(fields) > 5 and fields[5].startswith("/") else ""
            elif line.startswith("Rss:"):
                resident[mapping] = resident.get(mapping, 0) + int(line.split()[1])
    return resident

def _record():
    if "diffusers" in sys.modules:
        with open(os.environ["DREAMCORE_MODULE_RECORD"], "w") as out:
            json.dump({"peak_mb": _peak_mb(), "modules": sorted(sys.modules),
                       "resident_kb": _resident_by_mapping()}, out)

atexit.register(_record)
"""
# Imports every module of a recorded set (some only import as a side effect of others: those are skipped)
# and prints this process's peak RSS in MB.
IMPORTER = PEAK_MB + """\
import importlib, json, sys
for name in json.load(open(sys.argv[1])):
    try:
        importlib.import_module(name)
    except BaseException:
        pass
print(_peak_mb())
"""
# dreamcore's module set less these top-level packages, to price what only dreamcore loads.
WITHOUT = {"without pyarrow": ("pyarrow",)}
# Resident memory at exit, summed by where it is mapped from.
MAPPING_GROUPS = ("anonymous (heap, tensors, Python objects)", "torch's libraries", "pyarrow's libraries",
                  "other files")


def record_run(tool: str, work: Path, model: Path, images: Path, peer_dir: Path, pythonpath: list[Path]) -> dict:
    """One cold run of `tool`; its training process's peak RSS and module names."""
    recorder = work / "recorder"
    recorder.mkdir(parents=True, exist_ok=True)
    (recorder / "sitecustomize.py").write_text(RECORDER)
    record = work / f"{tool}-modules.json"
    env = transformer_peer.tool_environment(SETTINGS["threads"], [recorder, *pythonpath])
    env["DREAMCORE_MODULE_RECORD"] = str(record)
    if tool == "peer":
        commands = [transformer_peer.peer_command(peer_dir, "sd1x", model, images, work / "peer-output", SETTINGS)]
    else:
        commands = transformer_peer.dreamcore_commands(
            transformer_peer.write_dreamcore_config(work / "dreamcore", "sd1x", model, images, SETTINGS))
    transformer_peer.run_processes(commands, env, work / tool)
    return json.loads(record.read_text())


def import_peak_mb(modules: list[str], work: Path, pythonpath: list[Path]) -> float:
    """Peak RSS of a fresh process that imports `modules` and does nothing else."""
    listing = work / f"modules-{len(modules)}.json"
    listing.write_text(json.dumps([m for m in modules if not m.startswith("__")]))
    env = transformer_peer.tool_environment(SETTINGS["threads"], pythonpath)
    done = subprocess.run([sys.executable, "-c", IMPORTER, str(listing)], env=env, check=True, capture_output=True,
                          text=True)
    return float(done.stdout.strip().splitlines()[-1])


def footprints(records: dict[str, dict], work: Path, pythonpath: list[Path]) -> list[dict]:
    """Per tool (and dreamcore's module set less pandas / pyarrow): the run's peak, its imports' peak and the
    work above them."""
    rows = []
    for tool, record in records.items():
        imports = import_peak_mb(record["modules"], work, pythonpath)
        rows.append({"what": tool, "run_peak_mb": record["peak_mb"], "imports_mb": imports,
                     "work_mb": record["peak_mb"] - imports, "modules": len(record["modules"])})
        if tool == "dreamcore":
            for label, packages in WITHOUT.items():
                kept = [m for m in record["modules"] if m.split(".")[0] not in packages]
                rows.append({"what": f"dreamcore's modules {label}", "modules": len(kept),
                             "imports_mb": import_peak_mb(kept, work, pythonpath)})
    return rows


def mapping_group(path: str) -> str:
    """Which of MAPPING_GROUPS a mapped file's resident pages count under."""
    if not path:
        return MAPPING_GROUPS[0]
    for package, group in (("/torch/", MAPPING_GROUPS[1]), ("/pyarrow/", MAPPING_GROUPS[2])):
        if package in path:
            return group
    return MAPPING_GROUPS[3]


def resident_by_group(record: dict) -> dict[str, float]:
    """A run's resident MB at exit per MAPPING_GROUPS entry."""
    totals = dict.fromkeys(MAPPING_GROUPS, 0.0)
    for path, kb in record.get("resident_kb", {}).items():
        totals[mapping_group(path)] += kb / 1024
    return totals


def only_in(records: dict[str, dict], tool: str, other: str) -> list[tuple[str, int]]:
    """Top-level packages `tool` imported and `other` did not (with their module counts), largest first."""
    mine = [m.split(".")[0] for m in records[tool]["modules"]]
    theirs = {m.split(".")[0] for m in records[other]["modules"]}
    counts = {package: mine.count(package) for package in set(mine) - theirs}
    return sorted(counts.items(), key=lambda item: -item[1])


def table(rows: list[dict], records: dict[str, dict]) -> str:
    lines = [
        "# Import footprint: each tool's peak RSS, libraries against work (tiny SD)",
        "",
        f"`.venv/bin/python benchmarks/import_footprint.py` on {platform.machine()}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}: peer_side_by_side.py's tiny project ({SETTINGS['steps']} steps, batch "
        f"{SETTINGS['batch']}, 64 px, 1 thread), one cold run per tool; the imports figure is a fresh process "
        "importing exactly the module set the run's training process ended with.",
        "",
        "| what | modules | run peak RSS MB | its imports alone MB | work above the imports MB |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        run = f"{row['run_peak_mb']:.0f}" if "run_peak_mb" in row else ""
        work = f"{row['work_mb']:.0f}" if "work_mb" in row else ""
        lines.append(f"| {row['what']} | {row['modules']} | {run} | {row['imports_mb']:.0f} | {work} |")
    lines += ["", "Resident memory as each training process exits, by mapping, MB (/proc/self/smaps):", "",
              "| mapping | " + " | ".join(records) + " |", "|---|" + "---|" * len(records)]
    groups = {tool: resident_by_group(record) for tool, record in records.items()}
    for group in MAPPING_GROUPS:
        lines.append(f"| {group} | " + " | ".join(f"{groups[tool][group]:.0f}" for tool in records) + " |")
    lines.append("| total | " + " | ".join(f"{sum(groups[tool].values()):.0f}" for tool in records) + " |")
    if "peer" in records:
        for tool, other in (("dreamcore", "peer"), ("peer", "dreamcore")):
            packages = ", ".join(f"{name} ({count})" for name, count in only_in(records, tool, other)[:8])
            lines += ["", f"Top-level packages only {tool} imported (modules): {packages or 'none'}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-dir", type=Path, default=transformer_peer.DEFAULT_PEER_DIR)
    parser.add_argument("--torchvision-site", type=Path, default=Path(".dreamcore/benchmark-torchvision"))
    parser.add_argument("--models-dir", type=Path, default=Path(".dreamcore/benchmark-models"))
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary folder (kept: logs are there)")
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write the results file")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="dreamcore-import-footprint-"))).resolve()
    model = transformer_peer.model_folder("sd", args.models_dir.resolve() / "tiny")
    images = transformer_peer.write_images(work / "images", SETTINGS["resolution"])
    tools = ["dreamcore"]
    pythonpath = [transformer_peer.REPOSITORY]
    if (args.peer_dir / transformer_peer.PEER_SCRIPTS["sd1x"]).is_file():
        tools.append("peer")
        pythonpath.insert(0, transformer_peer.torchvision_shim(args.torchvision_site.resolve(), work / "shim"))
    else:
        print(f"import_footprint: no peer copy in {args.peer_dir}: dreamcore only")
    records = {tool: record_run(tool, work / tool, model, images, args.peer_dir, pythonpath) for tool in tools}
    text = table(footprints(records, work, pythonpath), records)
    print(text)
    print(f"logs: {work}")
    if not args.no_write and "peer" in records:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "import_footprint.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
