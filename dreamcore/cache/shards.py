"""A content-addressed store of Parquet shards: rows keyed by what they encode.

A cache location (cache_dir_vae, a text_embeds cache_dir, or a folder under the storage root)
holds `shards/<digest>.parquet`. Every row carries a `key` that hashes everything its tensors
depend on (image digest, crop, encoder fingerprint, dtype ...), so any run or experiment that
needs the same row finds it, and an interrupted stage finds the shards it already wrote: each
shard is written atomically, so a shard that exists is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamcore.cache.parquet_io import read_column, read_table, write_table
from dreamcore.storage import ArtifactStore, digest_of

SHARDS = "shards"


@dataclass
class ShardWrite:
    """What one stage call wrote: shard paths and their sizes."""

    shards: list[str] = field(default_factory=list)
    bytes: int = 0
    index: dict[str, str] = field(default_factory=dict)  # row key -> shard

    def write(self, cache: ShardedCache, rows: list[dict], schema) -> None:
        """Write `rows` as one new shard of `cache` (committed on its own) and record it."""
        shard, size = cache.write_shard(rows, schema)
        self.shards.append(shard)
        self.bytes += size
        self.index.update({row["key"]: shard for row in rows})


class ShardedCache:
    """Parquet shards under one location; rows are found by their `key` column."""

    def __init__(self, location: str) -> None:
        self.store = ArtifactStore(location)

    @property
    def uri(self) -> str:
        """URL of the cache location."""
        return self.store.uri()

    def shard_files(self) -> list[str]:
        """Relative paths of every complete shard."""
        return [p for p in self.store.list(SHARDS) if p.endswith(".parquet") and ".tmp-" not in p]

    def key_index(self) -> dict[str, str]:
        """row key -> shard path, over every shard present (reads only the key column)."""
        index: dict[str, str] = {}
        for shard in self.shard_files():
            for key in read_column(self.store, shard, "key"):
                index.setdefault(key, shard)
        return index

    def write_shard(self, rows: list[dict], schema) -> tuple[str, int]:
        """Write rows as a new shard named by their keys; returns (path, bytes)."""
        name = digest_of(sorted(r["key"] for r in rows))[:24]
        relative = f"{SHARDS}/{name}.parquet"
        return relative, write_table(self.store, relative, rows, schema)

    def read_shard(self, relative: str) -> list[dict]:
        """Every row of one shard."""
        return read_table(self.store, relative)

    def size_of(self, relative: str) -> int:
        """Bytes of one shard."""
        return int(self.store.fs.size(self.store.path(relative)))
