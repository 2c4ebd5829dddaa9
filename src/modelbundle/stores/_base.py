"""The contract every remote store implements: push, pull, list."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..bundler import LocalStore, StoredBundle
from ._progress import TransferProgress


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

    def close(self) -> None:  # noqa: B027 - optional for implementations without connections
        """Release connections."""
