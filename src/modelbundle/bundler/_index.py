"""Read a package index the way pip is configured to: project pages of the simple API, and file downloads.

pip's index settings (``PipSettings``) decide where to look: the index and
extra indexes (``http(s)://`` or ``file://``), find-links pages, the CA bundle,
trusted hosts, and credentials written in an index URL. A project page is
asked for as PEP 691 JSON and read as HTML when the index answers with that;
each file comes with the sha256 the index publishes, when it does. The
standard library's HTTP client also honours the ``*_proxy`` variables.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from ._pip_settings import PipSettings

_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
#: seconds before a silent index counts as unreachable, and how many times a failed request is tried again
_TIMEOUT = 15
_RETRIES = 1
_CHUNK = 1 << 20
#: what reading a response can raise besides HTTPError: the connection breaking, a bad page
_READ_ERRORS = (OSError, http.client.HTTPException, ValueError, KeyError, TypeError)


class UnreachableIndex(Exception):
    """A page or file could not be read (the message names the URL and why)."""


@dataclass(frozen=True)
class FileLink:
    """A distribution file an index or find-links location offers."""

    filename: str
    url: str
    #: the sha256 the index publishes for it, if it does
    sha256: str | None
    #: on this machine (a find-links folder, a ``file://`` index): cheap to fetch
    local: bool = False
    #: the Requires-Python the index publishes for it, if it does
    requires_python: str | None = None

    @property
    def path(self) -> Path:
        """The file of a ``file://`` link."""
        return _file_path(self.url)


class IndexClient:
    """Project pages and downloads from the indexes of ``settings`` (thread-safe: one request per call)."""

    def __init__(self, settings: PipSettings) -> None:
        self.settings = settings
        self._contexts: dict[bool, ssl.SSLContext] = {}
        #: host -> Basic credentials, from the index URLs that carry them: sent to that host only
        self._credentials = {
            _host(url): _basic(url)
            for url in [settings.index_url, *settings.extra_index_urls, *settings.find_links]
            if "://" in url and urlsplit(url).username is not None
        }

    def indexes(self) -> list[str]:
        """The simple API roots to ask, in pip's order; find-links URLs are read as one page each."""
        roots = [] if self.settings.no_index else [self.settings.index_url, *self.settings.extra_index_urls]
        return roots + [link for link in self.settings.find_links if "://" in link]

    def project_files(self, root: str, project: str) -> list[FileLink]:
        """The files ``root`` lists for ``project`` (a find-links page lists every project's: callers filter)."""
        url = root if root in self.settings.find_links else f"{root.rstrip('/')}/{project}/"
        if url.startswith("file:"):
            path = _file_path(url)
            if path.is_dir():
                if root in self.settings.find_links:
                    return [FileLink(p.name, p.as_uri(), None, local=True) for p in sorted(path.iterdir()) if p.is_file()]
                path = path / "index.html"
            if not path.is_file():
                return []  # pip too: a project the index lacks
            return _parse_html(path.read_text(errors="replace"), path.as_uri())
        try:
            with self._open(url, accept=_ACCEPT) as response:
                body = response.read()
                kind = response.headers.get_content_type()
                final = response.geturl()
            if kind == _JSON:
                return _parse_json(json.loads(body), final)
            return _parse_html(body.decode("utf-8", errors="replace"), final)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise UnreachableIndex(f"{_safe(url)}: HTTP {exc.code} {exc.reason}") from None
        except _READ_ERRORS as exc:  # a broken connection or a page that is not the simple API: pip's turn
            raise UnreachableIndex(f"{_safe(url)}: {type(exc).__name__}: {exc}") from None

    def download(self, link: FileLink, target: Path) -> str:
        """Write the file to ``target``; its sha256 hex digest (checked by the caller against the lock)."""
        digest = hashlib.sha256()
        if link.url.startswith("file:"):
            with open(_file_path(link.url), "rb") as source, open(target, "wb") as out:
                _copy(source, out, digest)
            return digest.hexdigest()
        try:
            with self._open(link.url, accept="*/*") as response, open(target, "wb") as out:
                _copy(response, out, digest)
        except urllib.error.HTTPError as exc:
            raise UnreachableIndex(f"{_safe(link.url)}: HTTP {exc.code} {exc.reason}") from None
        except _READ_ERRORS as exc:
            raise UnreachableIndex(f"{_safe(link.url)}: {type(exc).__name__}: {exc}") from None
        return digest.hexdigest()

    def _open(self, url: str, *, accept: str) -> Any:
        """urlopen with pip's CA bundle, trusted hosts and URL credentials, tried ``_RETRIES`` more times."""
        parts = urlsplit(url)
        if parts.username is not None:
            url = urlunsplit((parts.scheme, _host(url), parts.path, parts.query, ""))
        trusted = parts.hostname in self.settings.trusted_hosts or parts.netloc in self.settings.trusted_hosts
        request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "modelbundle"})
        credentials = self._credentials.get(_host(url))
        if credentials is not None:
            # unredirected: a redirect to another host (a CDN, a proxy) never carries the password
            request.add_unredirected_header("Authorization", credentials)
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self._context(trusted)), _CarefulRedirects(trusted)
        )
        for attempt in range(_RETRIES + 1):
            try:
                return opener.open(request, timeout=_TIMEOUT)
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == _RETRIES:
                    raise
            except (urllib.error.URLError, OSError) as exc:
                if attempt == _RETRIES:
                    reason = getattr(exc, "reason", exc)
                    raise UnreachableIndex(f"{_safe(url)}: {reason}") from None
        raise AssertionError("unreachable")

    def _context(self, trusted: bool) -> ssl.SSLContext:
        if trusted not in self._contexts:
            cert = self.settings.cert
            if cert is None:
                context = ssl.create_default_context()
            elif Path(cert).is_dir():
                context = ssl.create_default_context(capath=cert)
            else:
                context = ssl.create_default_context(cafile=cert)
            if trusted:  # pip's --trusted-host: no certificate check for that host
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[trusted] = context
        return self._contexts[trusted]


class _CarefulRedirects(urllib.request.HTTPRedirectHandler):
    """Follows an index's redirects, but never from https to http, nor off a trusted host (whose certificate is unchecked)."""

    def __init__(self, trusted: bool) -> None:
        self.trusted = trusted

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        old, new = urlsplit(req.full_url), urlsplit(newurl)
        if (old.scheme == "https" and new.scheme != "https") or (self.trusted and new.netloc != old.netloc):
            raise urllib.error.HTTPError(newurl, code, f"refused redirect from {_safe(req.full_url)} to {_safe(newurl)}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _host(url: str) -> str:
    """host[:port] of ``url``, without credentials."""
    parts = urlsplit(url)
    return (parts.hostname or "") + (f":{parts.port}" if parts.port else "")


def _basic(url: str) -> str:
    parts = urlsplit(url)
    token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    return "Basic " + base64.b64encode(token).decode()


def _bare_name(filename: str) -> bool:
    """A file name an index may give: no folders, nothing that climbs out of the download folder."""
    return bool(filename) and filename not in (".", "..") and "/" not in filename and "\\" not in filename


def _parse_json(page: dict[str, Any], base: str) -> list[FileLink]:
    links = []
    for entry in page.get("files", []):
        sha256 = (entry.get("hashes") or {}).get("sha256")
        url = urljoin(base, str(entry["url"])).partition("#")[0]
        requires = entry.get("requires-python") or None
        if not _bare_name(str(entry["filename"])):
            continue
        links.append(FileLink(str(entry["filename"]), url, sha256, local=url.startswith("file:"), requires_python=requires))
    return links


class _Anchors(HTMLParser):
    """Each link's href and data-requires-python (the HTML parser unescapes ``&gt;=``)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        href = values.get("href")
        if tag == "a" and href:
            self.links.append((href, values.get("data-requires-python") or None))


def _parse_html(page: str, base: str) -> list[FileLink]:
    parser = _Anchors()
    parser.feed(page)
    links = []
    for href, requires in parser.links:
        url = urljoin(base, href)
        address, _, fragment = url.partition("#")
        name, _, value = fragment.partition("=")
        filename = unquote(urlsplit(address).path.rsplit("/", 1)[-1])
        sha256 = value.lower() if name == "sha256" and value else None
        if not _bare_name(filename):
            continue
        links.append(FileLink(filename, address, sha256, local=address.startswith("file:"), requires_python=requires))
    return links


def _copy(source: IO[bytes], out: IO[bytes], digest: Any) -> None:
    while block := source.read(_CHUNK):
        digest.update(block)
        out.write(block)


def _file_path(url: str) -> Path:
    return Path(urllib.request.url2pathname(urlsplit(url).path))


def _safe(url: str) -> str:
    """The URL without its credentials, for messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, parts.query, ""))
