"""The contract every remote store implements: push, pull, list."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from ..bundler import LocalStore, StoredBundle
from ..errors import BundleNotFound
from ._progress import Advance, TransferProgress


@dataclass
class TransferReport:
    """What a push or pull moved and what it could skip."""

    sent_blobs: int = 0
    sent_bytes: int = 0
    skipped_blobs: int = 0
    skipped_bytes: int = 0
    sent: list[str] = field(default_factory=list)  # names of the blobs (or parts) moved


@dataclass(frozen=True)
class RemoteBundle:
    name: str
    version: str


class BaseStore(ABC):
    """A place that holds many bundles. Implementations: FileStore, S3Store, OCIStore."""

    #: the URL the store was opened with, for messages
    url: str

    @abstractmethod
    def push(self, bundle: StoredBundle, progress: TransferProgress) -> TransferReport:
        """Upload what the store lacks, then make the bundle visible (its index is written last)."""

    @abstractmethod
    def pull(self, name: str, version: str, local: LocalStore, progress: TransferProgress) -> tuple[StoredBundle, TransferReport]:
        """Download what ``local`` lacks, verify every digest and the RECORD, commit atomically."""

    @abstractmethod
    def list(self) -> list[RemoteBundle]:
        """Every complete bundle in the store."""

    @abstractmethod
    def created_at(self, name: str, version: str) -> str:
        """When the bundle ``name:version`` was built: its manifest's ``created_at``."""

    def latest(self, name: str) -> str:
        """The newest version of ``name`` here: the last built (``created_at``, as the local store orders them)."""
        versions = [bundle.version for bundle in self.list() if bundle.name == name]
        if not versions:
            names = sorted({bundle.name for bundle in self.list()})
            hint = f"; bundles there: {', '.join(names[:10])}" if names else "; the store holds no bundles"
            raise BundleNotFound(f"no bundle named {name!r} in {self.url}{hint}")
        # created_at has whole seconds: two builds within one second fall back to the version's order
        return max(versions, key=lambda version: (self.created_at(name, version), version))

    # -- weights by digest (``bundle push/pull --with-weights``); see _weights.py ------------------
    @abstractmethod
    def has_weight(self, digest: str) -> bool:
        """True if the store holds the weight blob ``sha256:<digest>``."""

    @abstractmethod
    def put_weight(self, digest: str, source: Path, advance: Advance) -> None:
        """Upload a verified local file as the weight blob ``digest``."""

    @abstractmethod
    def get_weight(self, digest: str, destination: Path, advance: Advance) -> None:
        """Download the weight blob ``digest`` to ``destination`` (the caller verifies it)."""

    def close(self) -> None:  # noqa: B027 - optional for implementations without connections
        """Release connections."""
