"""The typed details of the cache stages' results: what training and evaluation read from them."""

from __future__ import annotations

from pydantic import Field

from dreamcore.storage import StageDetails


class VaeCacheDetails(StageDetails):
    """One dataset's committed VAE cache: its index and where its rows live."""

    dataset_id: str | None = None
    index: str = Field(description="the index table (one row per image), relative to the store")
    cache_uri: str = Field(description="the shared shard folder the rows live in")
    buckets: dict[str, int] = Field(default_factory=dict, description="images per aspect bucket")
    is_regularisation: bool = False


class TextCacheDetails(StageDetails):
    """The run's committed text cache: its caption index, where its rows live and the family that encoded them."""

    index: str = Field(description="the caption index table, relative to the store")
    cache_uri: str = Field(description="the shared shard folder the rows live in")
    family: str = Field(description="the family whose text encoders encoded the captions")
