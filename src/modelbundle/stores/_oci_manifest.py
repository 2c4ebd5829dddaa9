"""A bundle's OCI image manifest: media types, annotation keys, and the wire format as pydantic models.

    manifest (tag = bundle version), artifactType application/vnd.modelbundle.bundle.v1+json
    ├── config   bundle.json, application/vnd.modelbundle.bundle.config.v1+json
    └── layers   one tar+gzip per part: bundle, src, env, artifacts/<name>
                 annotated with the part name (title) and the digest of its file list
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import IntegrityError, RemoteStoreError

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.modelbundle.bundle.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.modelbundle.bundle.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.modelbundle.layer.v1.tar+gzip"
#: what pull accepts: ours, and the types of images, so that pulling an image says so clearly
ACCEPTED_MEDIA_TYPES = [
    MANIFEST_MEDIA_TYPE,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
]

#: weights pushed with --with-weights: NAMESPACE/weights/sha256, one manifest per blob, tagged with its hex digest
WEIGHTS_REPOSITORY = "weights/sha256"
WEIGHTS_ARTIFACT_TYPE = "application/vnd.modelbundle.weights.v1"
WEIGHTS_MEDIA_TYPE = "application/octet-stream"
EMPTY_JSON = b"{}"

TITLE = "org.opencontainers.image.title"
CREATED = "org.opencontainers.image.created"
VERSION = "org.opencontainers.image.version"
BUNDLE_NAME = "dev.modelbundle.name"
PART_DIGEST = "dev.modelbundle.part.digest"

Digest = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


class _Wire(BaseModel):
    # camelCase on the wire; fields that other tools add are kept out of our model, not refused
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class Descriptor(_Wire):
    """A content descriptor: what a blob is, its digest and size."""

    media_type: str = Field(alias="mediaType")
    digest: Digest
    size: int = Field(ge=0)
    annotations: dict[str, str] | None = None

    @property
    def title(self) -> str:
        return (self.annotations or {}).get(TITLE, "")

    def annotation(self, key: str) -> str | None:
        return (self.annotations or {}).get(key)


class ImageManifest(_Wire):
    """An OCI image manifest (schema version 2)."""

    schema_version: int = Field(default=2, alias="schemaVersion")
    media_type: str = Field(default=MANIFEST_MEDIA_TYPE, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] | None = None

    def dump(self) -> bytes:
        """Compact JSON with sorted keys: the same bundle always gives the same manifest digest."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    def is_bundle(self) -> bool:
        return self.artifact_type == ARTIFACT_TYPE or self.config.media_type == CONFIG_MEDIA_TYPE


#: the config of a manifest that has none of its own (the OCI image spec's empty descriptor)
EMPTY_CONFIG = Descriptor(
    mediaType="application/vnd.oci.empty.v1+json", digest=f"sha256:{hashlib.sha256(EMPTY_JSON).hexdigest()}", size=len(EMPTY_JSON)
)


def weights_manifest(digest: str, size: int, config: Descriptor) -> bytes:
    """The manifest that keeps one weight blob (its only layer) alive in a registry."""
    layer = Descriptor(mediaType=WEIGHTS_MEDIA_TYPE, digest=f"sha256:{digest}", size=size)
    return ImageManifest(artifactType=WEIGHTS_ARTIFACT_TYPE, config=config, layers=[layer]).dump()


def parse_manifest(body: bytes, content_type: str, where: str) -> ImageManifest:
    """The manifest of a bundle at ``where`` (``oci://host/ns/name:version``); clear errors for anything else."""
    if content_type and content_type != MANIFEST_MEDIA_TYPE:
        raise RemoteStoreError(f"{where} is not a modelbundle bundle: its manifest is {content_type} (an image, not a bundle)")
    try:
        manifest = ImageManifest.model_validate_json(body)
    except ValidationError as exc:
        raise IntegrityError(f"{where}: the manifest is not a valid OCI image manifest: {exc.errors(include_url=False)[0]['msg']}") from None
    if not manifest.is_bundle():
        raise RemoteStoreError(
            f"{where} is not a modelbundle bundle (artifactType {manifest.artifact_type or 'none'}, config "
            f"{manifest.config.media_type}); it may be a container image"
        )
    return manifest
