"""Content digests of weight files: what they hold, not how a process happened to lay out their bytes.

A safetensors file's bytes depend on more than its tensors: the header's key order and JSON values
written from Python sets (peft's target_modules) change from process to process (hash seeds). The
digest of a safetensors file is therefore over its tensors (names sorted, dtype, shape, bytes) and
its metadata canonicalised (JSON values parsed and re-dumped with sorted keys, order-free lists
sorted); a JSON file is digested canonicalised too; anything else by its bytes. Exports are also written
laid out canonically (`canonical_safetensors`), so the same training gives the same bytes in any process.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

# peft/LyCORIS config lists whose order means nothing (they are sets of module names or layer ids).
ORDER_FREE_LISTS = frozenset({"target_modules", "exclude_modules", "modules_to_save", "layers_to_transform"})


def canonical_metadata_value(value: Any, key: str | None = None) -> Any:
    """`value` with sets and order-free lists sorted and dict keys sorted (recursively): JSON-ready."""
    if isinstance(value, dict):
        return {str(k): canonical_metadata_value(v, str(k)) for k, v in sorted(value.items(), key=lambda i: str(i[0]))}
    order_free = key is not None and key.rsplit(".", 1)[-1] in ORDER_FREE_LISTS  # diffusers writes unet.target_modules
    if isinstance(value, (set, frozenset)) or (isinstance(value, (list, tuple)) and order_free):
        return sorted((canonical_metadata_value(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [canonical_metadata_value(v) for v in value]
    return value


def _canonical_text(text: str) -> str:
    """A metadata string that holds JSON, re-dumped canonically; any other string as it is."""
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text
    return json.dumps(canonical_metadata_value(parsed), sort_keys=True, separators=(",", ":"))


def safetensors_digest(data: bytes) -> str:
    """sha256 over the tensors (sorted names, dtype, shape, bytes) and canonical metadata of a safetensors file."""
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_size])
    body = memoryview(data)[8 + header_size:]
    metadata = {key: _canonical_text(value) for key, value in (header.pop("__metadata__", None) or {}).items()}
    digest = hashlib.sha256(b"metadata\0" + json.dumps(metadata, sort_keys=True).encode())
    for name in sorted(header):
        tensor = header[name]
        start, end = tensor["data_offsets"]
        described = json.dumps([name, tensor["dtype"], tensor["shape"]]).encode()
        digest.update(described + b"\0" + hashlib.sha256(body[start:end]).digest())
    return digest.hexdigest()


def canonical_safetensors(data: bytes) -> bytes:
    """The same safetensors file with its header metadata in sorted key order (safetensors' writer keeps the
    metadata in a Rust HashMap, so each process orders it differently); tensors, their order and every
    value are kept as written. The header is padded with spaces to 8 bytes, as the writer pads it."""
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_size])
    metadata = header.pop("__metadata__", None)
    ordered = ({"__metadata__": dict(sorted(metadata.items()))} if metadata is not None else {}) | header
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + header_size:]


def content_digest(name: str, data: bytes) -> str:
    """The content digest of one file, by its kind (safetensors, JSON, other bytes)."""
    if name.endswith(".safetensors"):
        return safetensors_digest(data)
    if name.endswith(".json"):
        try:
            parsed = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha256(json.dumps(canonical_metadata_value(parsed), sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(data).hexdigest()
