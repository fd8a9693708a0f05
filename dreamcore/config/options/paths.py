"""Where inputs are found and outputs go."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PathOptions(BaseModel):
    """Where inputs are found and outputs go."""

    output_dir: str = Field("output", description="Where exported weights and reports go (path or fsspec URL).")
    data_backend_config: str | None = Field(
        None, description="Path to the multidatabackend.json dataset list (relative to the config file)."
    )
    storage_root: str | None = Field(
        None,
        description="fsspec URL where stage artifacts and caches live (default: the artifacts folder inside output_dir).",
    )
