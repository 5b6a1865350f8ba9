"""The bounded client of a dump mirror: listings and files over http(s), from file:// or a local folder.

A misbehaving mirror cannot make us read without end (a listing is read up to LISTING_MAX_BYTES within
LISTING_DEADLINE_S; `growgpt.wiki.dumps` reads a file up to its listed size), stall us past a deadline
(a socket read times out after TIMEOUT_S, and a deadline shuts the connection even against a server
that trickles a byte at a time), make us retry forever (RETRIES attempts in a row that bring no new
bytes, waits doubling from BACKOFF_S), or send us elsewhere (redirects only within the mirror's scheme,
host and port, at most MAX_REDIRECTS). 5xx, 408, 429, timeouts, resets and early ends are retried; 404
and other 4xx stop at once (`Unavailable`). stdlib urllib: no requests dependency."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from growgpt.errors import UserError

TIMEOUT_S = 60  # a connect or socket read that gets no byte for this long has stalled
READ_BYTES = 1 << 20
USER_AGENT = "growgpt/0.1 (Wikipedia dump fetcher; python-urllib)"
# Read at call time (not bound as defaults), so tests can make them small.
RETRIES = 5  # per file or listing: failed attempts in a row that brought no new bytes
BACKOFF_S = 0.5  # the first wait between attempts; it doubles after each attempt without new bytes
MAX_BACKOFF_S = 60.0
LISTING_MAX_BYTES = 8 << 20  # dumpstatus.json, sums files, folder indexes: enwiki's largest is ~100 kB
LISTING_DEADLINE_S = 60.0  # for one listing document, all its attempts included
MAX_REDIRECTS = 5


def show(value: Any, limit: int = 80) -> str:
    """`value` as it appears in an error message: repr, cut short (servers can send megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def local_path(url: str) -> Path | None:
    return Path(url2pathname(urlsplit(url).path)) if url.startswith("file:") else None


class Deadline:
    """When reading must stop: `seconds` from now (None: never), and the reason an error gives then."""

    def __init__(self, seconds: float | None, reason: str):
        self.at = None if seconds is None else time.monotonic() + seconds
        self.reason = reason

    def remaining(self) -> float | None:
        return None if self.at is None else max(self.at - time.monotonic(), 0.0)

    def check(self, url: str) -> None:
        if self.at is not None and time.monotonic() >= self.at:
            raise self.error(url)

    def error(self, url: str) -> UserError:
        return UserError(f"gave up on {url}: {self.reason}")

    def sooner(self, seconds: float | None, reason: str) -> Deadline:
        """Whichever comes first: this deadline, or one `seconds` from now."""
        other = Deadline(seconds, reason)
        if other.at is None or (self.at is not None and self.at <= other.at):
            return self
        return other


@dataclass
class Patience:
    """How long a call keeps trying: its overall deadline, and per document or file the failed
    attempts in a row (that brought no new bytes) and the first wait between them."""
    deadline: Deadline
    retries: int
    backoff: float


def make_patience(timeout: float | None, retries: int | None, backoff: float | None) -> Patience:
    if timeout is not None and not timeout > 0:  # also refuses NaN
        raise UserError(f"timeout {timeout!r}: expected a number of seconds above 0")
    reason = f"the fetch did not finish within its timeout of {timeout:g} s" if timeout is not None else ""
    return Patience(Deadline(timeout, reason), RETRIES if retries is None else retries,
                    BACKOFF_S if backoff is None else backoff)


def _listing_deadline(patience: Patience) -> Deadline:
    return patience.deadline.sooner(
        LISTING_DEADLINE_S, f"a listing must arrive within {LISTING_DEADLINE_S:g} s; the mirror is stalled or too slow")


class Unavailable(UserError):
    """The mirror says the URL is not there or refuses it (404, other 4xx): a listing may fall back
    to another source. Every other UserError (a bad redirect, a deadline, a malformed answer) may not."""


class Dropped(ConnectionError):
    """The connection ended before the whole document or file arrived."""


TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) with the default port filled in; None for a URL without a usable one."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the scheme, host and port of the URL first asked for (the mirror),
    and at most MAX_REDIRECTS of them: a listing or file must not be fetched from anywhere else."""

    max_repeats = max_redirections = MAX_REDIRECTS + 1  # our own count below speaks first

    def __init__(self, url: str):
        super().__init__()
        self.first_url = url
        self.origin = _origin(url)
        self.followed = 0

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location:
            target = urljoin(req.full_url, location.strip())
            if _origin(target) != self.origin:
                fp.close()
                raise UserError(f"{self.first_url} redirects to {show(target, 200)}, outside the mirror; "
                                "refusing to follow a redirect to another host")
            self.followed += 1
            if self.followed > MAX_REDIRECTS:
                fp.close()
                raise UserError(f"{self.first_url}: more than {MAX_REDIRECTS} redirects; refusing to follow more")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class _Cutoff:
    """Shuts the sockets of one request when its deadline passes. The socket timeout only bounds
    each read, so without this a server sending a byte every few seconds could hold a read forever."""

    def __init__(self, deadline: Deadline):
        self.lock = threading.Lock()
        self.connections: list[http.client.HTTPConnection] = []
        self.sockets: list[socket.socket] = []
        self.fired = False
        remaining = deadline.remaining()
        self.timer = None
        if remaining is not None:
            self.timer = threading.Timer(remaining, self._cut)
            self.timer.daemon = True
            self.timer.start()

    def track(self, connection_class: Callable) -> Callable:
        """A stand-in for `connection_class` that registers each connection and its socket."""
        def make(*args, **kwargs):
            connection = connection_class(*args, **kwargs)
            create = getattr(connection, "_create_connection", None)  # http.client's hook for making the socket

            def create_and_track(*a, **kw):
                sock = create(*a, **kw)
                with self.lock:
                    self.sockets.append(sock)
                    fired = self.fired
                if fired:  # the deadline passed while connecting
                    _shutdown(sock)
                return sock
            if create is not None:
                connection._create_connection = create_and_track
            with self.lock:
                self.connections.append(connection)
            return connection
        return make

    def _cut(self) -> None:
        with self.lock:
            self.fired = True
            # connection.sock is the TLS socket once wrapped; the raw one covers the time before
            sockets = [c.sock for c in self.connections if c.sock is not None] + self.sockets
        for sock in sockets:
            _shutdown(sock)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    try:  # the plain socket method works on a TLS socket too, at the OS level, from another thread
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Tracking:
    """Mixed into urllib's HTTP(S) handler: every connection it opens is registered with a _Cutoff."""

    def __init__(self, cutoff: _Cutoff):
        super().__init__()
        self.cutoff = cutoff

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(self.cutoff.track(http_class), req, **kwargs)


# One tracking handler per scheme urllib has here (a Python built without ssl has no HTTPSHandler).
_HANDLERS: list[type] = [type(f"_Tracked{base.__name__}", (_Tracking, base), {})
                         for base in (urllib.request.HTTPHandler, getattr(urllib.request, "HTTPSHandler", None))
                         if base is not None]


@dataclass
class Reply:
    body: Any  # has .read1(n)
    resumed: bool  # the body starts at the offset asked for (206, or a local file); else at byte 0
    length: int | None  # bytes in the body (Content-Length); None when not said
    first_byte: int | None = None  # where a 206's Content-Range says the body starts
    total: int | None = None  # the whole file's size, per a 206's Content-Range


def _content_length(value: str | None, url: str) -> int | None:
    if value is None:
        return None
    value = value.strip()
    # ASCII digits only: '²'.isdigit() is True and int(' 1_0 ') works, but neither is a length
    if not re.fullmatch(r"[0-9]{1,20}", value):
        raise UserError(f"{url}: header Content-Length is {show(value)}, not a number of bytes")
    return int(value)


def _content_range(value: str | None, url: str) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    m = re.fullmatch(r"bytes ([0-9]{1,20})-[0-9]{1,20}/([0-9]{1,20}|\*)", value.strip())
    if not m:
        raise UserError(f"{url}: header Content-Range is {show(value)}, expected 'bytes FIRST-LAST/SIZE'")
    return int(m.group(1)), None if m.group(2) == "*" else int(m.group(2))


@contextlib.contextmanager
def open_url(url: str, deadline: Deadline, start: int = 0, method: str = "GET") -> Iterator[Reply]:
    """The answer to `url` from byte `start` (Range), open while the with-block runs. Raises
    Unavailable for 4xx, transient errors (retry them) for 5xx, 408, 429 and network trouble."""
    path = local_path(url)
    if path is not None:
        if not path.is_file():
            raise Unavailable(f"not found: {url}")
        try:
            f = open(path, "rb")
        except OSError as e:
            raise UserError(f"cannot read {path}: {e.strerror or e}") from None
        with f:
            f.seek(start)
            yield Reply(f, True, max(os.fstat(f.fileno()).st_size - start, 0))
        return
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    remaining = deadline.remaining()
    timeout = TIMEOUT_S if remaining is None else max(min(TIMEOUT_S, remaining), 0.01)
    cutoff = _Cutoff(deadline)
    try:
        opener = urllib.request.build_opener(_SameOriginRedirects(url), *(h(cutoff) for h in _HANDLERS))
        try:
            response = opener.open(urllib.request.Request(url, headers=headers, method=method), timeout=timeout)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code in (404, 410):
                raise Unavailable(f"not found (HTTP {e.code}): {url}") from None
            if e.code < 500 and e.code not in (408, 429):
                raise Unavailable(f"HTTP {e.code} {show(e.reason)} from {url}") from None
            raise
        with response:
            length = _content_length(response.headers.get("Content-Length"), url)
            first_byte, total = (_content_range(response.headers.get("Content-Range"), url)
                                 if response.status == 206 else (None, None))
            yield Reply(response, response.status == 206, length, first_byte, total)
        if cutoff.fired:  # a cut can look like a normal end (headers or body ending early): never trust it
            raise deadline.error(url)
    finally:
        cutoff.cancel()


def read_chunk(body, n: int) -> bytes:
    """Up to `n` bytes, as soon as any arrive (a trickle must not block a deadline check)."""
    try:
        return body.read1(n)
    except (http.client.HTTPException, OSError) as e:  # incl. a TLS socket the deadline shut
        raise Dropped(f"connection failed: {e}") from None


def retrying(attempt: Callable, url: str, patience: Patience, deadline: Deadline,
             furthest: Callable[[], int] = lambda: 0):
    """attempt() until it returns, retrying transient network errors with backoff. Only an attempt
    that moved `furthest()` (the furthest byte reached) on restarts the count of failures, so a server
    that sends the same bytes again and again, or none, is given up on after `patience.retries` more."""
    failures = 0
    while True:
        before = furthest()
        try:
            return attempt()
        except TRANSIENT as e:
            deadline.check(url)
            failures = 0 if furthest() > before else failures + 1
            if failures > patience.retries:
                raise UserError(f"giving up on {url}: {failures} tries in a row brought no new bytes "
                                f"(last: {show(str(e), 200)})") from None
            delay = min(patience.backoff * 2 ** max(failures - 1, 0), MAX_BACKOFF_S)
            remaining = deadline.remaining()
            time.sleep(delay if remaining is None else min(delay, remaining))
            deadline.check(url)


def read_listing(url: str, patience: Patience) -> bytes:
    """A listing document: at most LISTING_MAX_BYTES, within LISTING_DEADLINE_S (and the call's deadline)."""
    deadline = _listing_deadline(patience)
    limit = LISTING_MAX_BYTES

    def too_big():
        return UserError(f"{url} is larger than {limit:,} bytes, far more than any dump listing; refusing to read it")

    def attempt():
        with open_url(url, deadline) as reply:
            if reply.length is not None and reply.length > limit:
                raise too_big()
            data = bytearray()
            while chunk := read_chunk(reply.body, min(READ_BYTES, limit + 1 - len(data))):
                data += chunk
                if len(data) > limit:
                    raise too_big()
                deadline.check(url)
            if reply.length is not None and len(data) < reply.length:
                raise Dropped(f"connection closed after {len(data)} of {reply.length} bytes")
            return bytes(data)
    return retrying(attempt, url, patience, deadline)


def head_size(url: str, patience: Patience) -> int | None:
    """The Content-Length of `url`, None when the mirror does not say; UserError when it says nonsense."""
    try:
        with open_url(url, _listing_deadline(patience), method="HEAD") as reply:
            return reply.length
    except (Unavailable, *TRANSIENT):
        return None
