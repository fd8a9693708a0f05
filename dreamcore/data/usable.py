"""Does a dataset hold any image that ingest would accept? Answered cheaply, before a run starts.

The folder is listed and each image judged by ingest's own rules as far as they go without decoding: the
file name (data.images.is_image_name), the header (images.header_reason: empty, not an image, too many
pixels, too small) and the captions (data.captions.caption_for: a textfile caption is a small read). The
first image that passes ends the look, so a good dataset costs one header. Ingest still decodes every file
and rejects those that only fail then (truncated or corrupt data, exact duplicates).
"""

from __future__ import annotations

import posixpath
from collections import Counter

from dreamcore.config import DatasetSpec
from dreamcore.data.captions import caption_for
from dreamcore.data.images import header_reason, is_image_name
from dreamcore.data.ingest import needs_captions, skip_reason
from dreamcore.data.sources import dataset_fs, dataset_location

# Caption strategies judged here: the others read a caption table (parquet, huggingface), left to ingest.
_PER_FILE_CAPTIONS = ("textfile", "filename", "instanceprompt")
_HEADER_BYTES = 1 << 16  # remote files are read in blocks this small: a header, not the whole image
# What to do about a kind of rejection, keyed by the reason's first words; and the key the fix is made in.
_FIXES = {
    "too small": ("minimum_image_size", "add larger images or lower minimum_image_size"),
    "caption file missing": ("caption_strategy", "write a .txt caption beside each image or choose another "
                             "caption_strategy (e.g. instanceprompt)"),
    "caption file empty": ("caption_strategy", "write a caption in each .txt file or choose another "
                           "caption_strategy (e.g. instanceprompt)"),
}


def no_usable_image(spec: DatasetSpec) -> tuple[str, str] | None:
    """None when some image of the dataset passes the checks above; otherwise (key, message): the config key to
    fix and one line naming the folder and summing up why each file fails, with one example per reason.
    For local and fsspec datasets with an existing folder (others are checked when ingest opens them)."""
    fs, root = dataset_fs(spec)
    files = sorted(posixpath.relpath(path, root) for path in fs.find(root))
    images = [name for name in files if is_image_name(name)]
    where = f"no usable image in {dataset_location(spec)}"
    if not images:
        others = [f"{name}: {skip_reason(spec, name)}" for name in files]
        found = f" ({len(files)} other file(s); e.g. {others[0]})" if others else " (the folder is empty)"
        return "instance_data_dir", f"{where}: no image files{found}; add images to the folder"
    present, reasons = set(files), {}
    for name in images:
        reason = _header_reason(fs, posixpath.join(root, name), spec) or _caption_reason(fs, root, name, present, spec)
        if not reason:
            return None
        reasons[name] = reason
    return _summary(where, reasons)


def _header_reason(fs, path: str, spec: DatasetSpec) -> str:
    with fs.open(path, "rb", block_size=_HEADER_BYTES) as file:
        return header_reason(file, minimum_image_size=spec.minimum_image_size, resolution_type=spec.resolution_type)


def _caption_reason(fs, root: str, name: str, present: set[str], spec: DatasetSpec) -> str:
    if not needs_captions(spec) or spec.caption_strategy not in _PER_FILE_CAPTIONS:
        return ""

    def read_text(relative: str) -> str | None:
        if relative not in present:
            return None
        return fs.cat_file(posixpath.join(root, relative)).decode("utf-8", errors="replace")

    try:
        return caption_for(name, spec.caption_strategy, instance_prompt=spec.instance_prompt,
                           read_text=read_text).reason
    except ValueError:  # a caption setting the config check reports itself (instanceprompt without a prompt)
        return ""


def _summary(where: str, reasons: dict[str, str]) -> tuple[str, str]:
    """(key, message): counts of each kind of reason, an example of each, and the fix when there is one kind."""
    kinds = Counter(reason.split(":", 1)[0] for reason in reasons.values())
    examples = {}
    for name, reason in reasons.items():
        examples.setdefault(reason.split(":", 1)[0], f"{name}: {reason}")
    counts = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
    message = f"{where}: {counts} (e.g. {'; '.join(examples.values())})"
    key, fix = _FIXES.get(next(iter(kinds)), ("instance_data_dir", "")) if len(kinds) == 1 else ("instance_data_dir", "")
    return key, message + (f"; {fix}" if fix else "")
