"""``validation``: which references a pushed manifest must find in its repository.

``validation.manifests.indexes`` is distribution 3's: ``platforms`` is ``all`` (every child
manifest of an index must be in the repository: the default), ``none`` (no child needs to be) or
``list`` (only the children whose platform is in ``platformlist``). ``validation.manifests.images``
is dockyard's own: ``sparse: true`` accepts an image manifest whose config or layers are not all
in the repository (a mirror keeping only some of an image); pulling such an image fails at the
first missing blob, so it is off by default and separate from the indexes' key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dockyard.config.base import Section


class PlatformEntry(Section):
    architecture: str
    os: str


class IndexValidation(Section):
    platforms: Literal["all", "none", "list"] = "all"
    platformlist: list[PlatformEntry] = Field(default_factory=list)

    @field_validator("platforms", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v  # distribution lower-cases it too

    @model_validator(mode="after")
    def _list_needs_entries(self) -> IndexValidation:
        if self.platforms == "list" and not self.platformlist:
            raise ValueError("platforms: list needs a platformlist of {architecture, os} entries")
        return self


class ImageValidation(Section):
    sparse: bool = False


class ManifestValidation(Section):
    indexes: IndexValidation = IndexValidation()
    images: ImageValidation = ImageValidation()


class Validation(Section):
    manifests: ManifestValidation = ManifestValidation()
