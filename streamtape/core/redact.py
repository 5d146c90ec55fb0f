"""What never reaches disk: credentials in headers, query parameters and body fields.

Redaction runs in memory on every exchange before it is encoded, because a secret
written first and scrubbed later survives in a crash or in a zstd frame that cannot
be patched. Afterwards the request and the response headers are scanned for known
key shapes, and a hit refuses the write (fail closed): a new provider's header name
must not leak silently.

Pure: ``Redactor.apply`` returns a new ``Exchange`` and leaves its input alone.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import msgspec

from streamtape.core.exchange import Exchange, Headers, RecordedRequest, first_header
from streamtape.core.jsonpath import Path, replace_path, split_path
from streamtape.errors import RedactConfigError, SecretLeakError

PLACEHOLDER = "<redacted>"

DEFAULT_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "cookie2",
        "set-cookie2",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
        "x-amz-security-token",
        "x-ms-token-aad-access-token",
    }
)
"""Header names whose values are always replaced (compared lower-case)."""

_SENSITIVE_WORDS = frozenset(
    {
        "authorization",
        "auth",
        "secret",
        "token",
        "password",
        "passwd",
        "session",
        "apikey",
        "credential",
        "cookie",
        "signature",
    }
)
_SENSITIVE_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key")})
_WORD_SPLIT = re.compile(r"[-_.\s]+")

DEFAULT_QUERY = frozenset(
    {
        "key",
        "api_key",
        "api-key",
        "apikey",
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "auth",
        "sig",
        "signature",
        "client_secret",
        "password",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)
"""Query parameter names whose values are always replaced (compared lower-case)."""

DEFAULT_BODY_PATHS = ("api_key", "client_secret", "password", "access_token", "refresh_token")
"""Top-level request body fields some gateways accept credentials in."""


class RedactOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The dict form of ``redact=``: what to redact on top of the defaults."""

    headers: list[str] = msgspec.field(default_factory=list)
    query: list[str] = msgspec.field(default_factory=list)
    body_paths: list[str] = msgspec.field(default_factory=list)
    scan: bool = True


class Finding(msgspec.Struct, frozen=True):
    """Something that looks like a credential: where and what kind, never the value."""

    field: str
    """E.g. ``request.header:x-custom``, ``request.url``, ``request.body``."""
    kind: str
    offset: int
    """Byte offset of the match within that field."""


_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("Anthropic API key (sk-ant-...)", re.compile(rb"sk-ant-")),
    ("secret key (sk-...)", re.compile(rb"sk-[A-Za-z0-9_-]{20,}")),
    ("Google API key (AIza...)", re.compile(rb"AIza[0-9A-Za-z_-]{35}")),
    # A token of 16+ token characters, so prose such as "Bearer tokens" is not a hit.
    ("bearer token", re.compile(rb"(?i:bearer)\s+[A-Za-z0-9._~+/-]{16,}")),
)


def scan_text(data: bytes | str, field: str = "") -> list[Finding]:
    """Every credential-shaped match in ``data``, by offset; overlapping matches count once."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    hits: list[tuple[int, int, str]] = []
    for kind, pattern in _SECRET_PATTERNS:
        hits.extend((m.start(), m.end(), kind) for m in pattern.finditer(raw))
    hits.sort()
    findings: list[Finding] = []
    end = -1
    for start, stop, kind in hits:
        if start < end:
            continue
        findings.append(Finding(field, kind, start))
        end = max(end, stop)
    return findings


def scrub_text(data: bytes, placeholder: str = PLACEHOLDER) -> tuple[bytes, list[tuple[int, int]]]:
    """``data`` with every credential-shaped match replaced, and the replaced spans.

    For cassettes recorded before a pattern was known (``streamtape redact``); a
    recorder refuses such exchanges instead.
    """
    spans: list[tuple[int, int]] = []
    for kind, pattern in _SECRET_PATTERNS:
        for m in pattern.finditer(data):
            end = m.end()
            if kind.startswith("Anthropic"):  # the prefix alone is the pattern; take the token
                end = _token_end(data, end)
            spans.append((m.start(), end))
    if not spans:
        return data, []
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    out = bytearray()
    pos = 0
    token = placeholder.encode()
    for start, end in merged:
        out += data[pos:start] + token
        pos = end
    out += data[pos:]
    return bytes(out), merged


def _token_end(data: bytes, pos: int) -> int:
    while pos < len(data) and (data[pos : pos + 1].isalnum() or data[pos] in b"_-"):
        pos += 1
    return pos


def scan_exchange(exchange: Exchange, *, response_body: bool = False) -> list[Finding]:
    """Scan request headers, URL and body, and response headers (and body on request)."""
    req = exchange.request
    found: list[Finding] = []
    for name, value in req.headers:
        found += scan_text(value, f"request.header:{name.lower()}")
    found += scan_text(req.url, "request.url")
    found += scan_text(req.body, "request.body")
    for name, value in exchange.response_headers:
        found += scan_text(value, f"response.header:{name.lower()}")
    if response_body:
        found += scan_text(exchange.body, "response.body")
    return found


def is_sensitive_header(name: str) -> bool:
    """Whether a header name looks like it carries a credential, by its words.

    Whole words only, so ``x-ratelimit-remaining-tokens`` is kept while
    ``x-auth-token`` and ``x-session-id`` are not.
    """
    lowered = name.lower()
    if lowered in DEFAULT_HEADERS:
        return True
    words = [w for w in _WORD_SPLIT.split(lowered) if w]
    if any(w in _SENSITIVE_WORDS for w in words):
        return True
    return any(pair in _SENSITIVE_PAIRS for pair in itertools.pairwise(words))


def _split_path(dotted: str) -> Path:
    try:
        return split_path(dotted)
    except ValueError:
        raise RedactConfigError(f"empty body path {dotted!r}") from None


class Redactor:
    """Replaces credentials with a placeholder, then refuses exchanges that still hold one.

    ``headers``, ``query`` and ``body_paths`` add to the defaults (``defaults=False``
    drops them). Header names also match by their words (see ``is_sensitive_header``).
    ``hook`` runs last on the redacted exchange and its result is scanned too.
    """

    def __init__(
        self,
        *,
        headers: Iterable[str] = (),
        query: Iterable[str] = (),
        body_paths: Iterable[str] = (),
        hook: Callable[[Exchange], Exchange] | None = None,
        defaults: bool = True,
        scan: bool = True,
        placeholder: str = PLACEHOLDER,
    ) -> None:
        for what, value in (("headers", headers), ("query", query), ("body_paths", body_paths)):
            if isinstance(value, str):
                raise RedactConfigError(f"{what} must be a list of names, not the string {value!r}")
        self.defaults = defaults
        self.headers = frozenset(h.lower() for h in headers) | (
            DEFAULT_HEADERS if defaults else frozenset()
        )
        self.query = frozenset(q.lower() for q in query) | (
            DEFAULT_QUERY if defaults else frozenset()
        )
        self.body_paths = tuple(
            dict.fromkeys([*(DEFAULT_BODY_PATHS if defaults else ()), *body_paths])
        )
        self._paths = [(p, _split_path(p)) for p in self.body_paths]
        self.hook = hook
        self.scan = scan
        self.placeholder = placeholder
        self._query_placeholder = quote(placeholder, safe="")
        self._form_names = frozenset(p.lower() for p in self.body_paths if "." not in p)

    def __repr__(self) -> str:
        return (
            f"Redactor(headers={sorted(self.headers)}, query={sorted(self.query)}, "
            f"body_paths={list(self.body_paths)}, defaults={self.defaults}, scan={self.scan}, "
            f"hook={self.hook!r})"
        )

    @classmethod
    def disabled(cls) -> Redactor:
        """Redact nothing and scan nothing: the explicit opt-out (``redact=False``)."""
        return cls(defaults=False, scan=False)

    @classmethod
    def coerce(cls, value: object) -> Redactor:
        """Turn a ``redact=`` argument into a Redactor.

        ``None``/``True``: the defaults. ``False``: nothing at all. A ``Redactor``: as is.
        A dict or ``RedactOptions`` with ``headers``, ``query``, ``body_paths``
        (and ``scan``): those on top of the defaults. A callable ``(Exchange) ->
        Exchange``: run after the defaults.
        """
        if value is None or value is True:
            return cls()
        if value is False:
            return cls.disabled()
        if isinstance(value, Redactor):
            return value
        if isinstance(value, Mapping):
            try:
                value = msgspec.convert(dict(value), RedactOptions)
            except msgspec.ValidationError as exc:
                raise RedactConfigError(
                    f"invalid redact= options: {exc}; expected keys headers, query, "
                    "body_paths (lists of names) and scan (bool)"
                ) from None
        if isinstance(value, RedactOptions):
            return cls(
                headers=value.headers,
                query=value.query,
                body_paths=value.body_paths,
                scan=value.scan,
            )
        if callable(value):
            return cls(hook=value)
        raise RedactConfigError(
            f"cannot use {value!r} as redact=: pass None (defaults), False (nothing), a "
            "Redactor, a dict of headers/query/body_paths, or a function Exchange -> Exchange"
        )

    # -- parts --

    def header_is_secret(self, name: str) -> bool:
        """Whether this redactor replaces header ``name``."""
        lowered = name.lower()
        return lowered in self.headers or (self.defaults and is_sensitive_header(lowered))

    def redact_headers(self, headers: Headers, prefix: str) -> tuple[Headers, list[str]]:
        """A new header list with secret values replaced, and the names replaced."""
        out: Headers = []
        names: list[str] = []
        for name, value in headers:
            if self.header_is_secret(name) and value != self.placeholder:
                out.append((name, self.placeholder))
                entry = f"{prefix}.header:{name.lower()}"
                if entry not in names:
                    names.append(entry)
            else:
                out.append((name, value))
        return out, names

    def redact_url(self, url: str) -> tuple[str, list[str]]:
        """The URL with secret query values and any userinfo password replaced."""
        parts = urlsplit(url)
        names: list[str] = []
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            netloc = f"{user}:{self._query_placeholder}@{hostport}"
            names.append("request.url:password")
        query = parts.query
        if query and self.query:
            segments = query.split("&")
            for i, segment in enumerate(segments):
                raw_name, sep, raw_value = segment.partition("=")
                name = unquote_plus(raw_name)
                if (
                    sep
                    and raw_value
                    and raw_value != self._query_placeholder
                    and name.lower() in self.query
                ):
                    segments[i] = f"{raw_name}={self._query_placeholder}"
                    entry = f"request.query:{name}"
                    if entry not in names:
                        names.append(entry)
            query = "&".join(segments)
        if not names:
            return url, names
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), names

    def redact_body(self, headers: Headers, body: bytes) -> tuple[bytes, list[str]]:
        """The request body with configured JSON paths (or form fields) replaced."""
        if not body or not self._paths or first_header(headers, "content-encoding"):
            return body, []
        ctype = (first_header(headers, "content-type") or "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            return self._redact_form(body)
        if "json" not in ctype and body.lstrip()[:1] not in (b"{", b"["):
            return body, []
        try:
            value = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return body, []
        names = [
            f"request.body:{dotted}"
            for dotted, parts in self._paths
            if replace_path(value, parts, self.placeholder)
        ]
        if not names:
            return body, []
        return msgspec.json.encode(value), names

    def _redact_form(self, body: bytes) -> tuple[bytes, list[str]]:
        text = body.decode("latin-1")
        segments = text.split("&")
        names: list[str] = []
        for i, segment in enumerate(segments):
            raw_name, sep, raw_value = segment.partition("=")
            name = unquote_plus(raw_name)
            if sep and raw_value and name.lower() in self._form_names:
                segments[i] = f"{raw_name}={self._query_placeholder}"
                entry = f"request.body:{name}"
                if entry not in names:
                    names.append(entry)
        if not names:
            return body, []
        return "&".join(segments).encode("latin-1"), names

    def redact_request(self, request: RecordedRequest) -> tuple[RecordedRequest, list[str]]:
        """A redacted copy of a request, and the names of what changed.

        Replay can run a sent request through this too, so it compares equal to the
        redacted recording.
        """
        headers, names = self.redact_headers(request.headers, "request")
        url, url_names = self.redact_url(request.url)
        body, body_names = self.redact_body(request.headers, request.body)
        new = msgspec.structs.replace(request, url=url, headers=headers, body=body)
        return new, names + url_names + body_names

    # -- whole exchange --

    def apply(self, exchange: Exchange) -> Exchange:
        """A redacted copy of ``exchange``, its ``redacted`` list extended with what changed.

        Raises ``SecretLeakError`` naming the field (never the value) if something
        credential-shaped is left and scanning is on.
        """
        request, names = self.redact_request(exchange.request)
        response_headers, response_names = self.redact_headers(
            exchange.response_headers, "response"
        )
        redacted = list(exchange.redacted)
        for name in names + response_names:
            if name not in redacted:
                redacted.append(name)
        out = msgspec.structs.replace(
            exchange,
            request=request,
            response_headers=response_headers,
            reads=list(exchange.reads),
            redacted=redacted,
        )
        if self.hook is not None:
            out = self.hook(out)
            if not isinstance(out, Exchange):
                raise RedactConfigError(
                    f"the redact hook {self.hook!r} returned {type(out).__name__}, not an Exchange"
                )
        if self.scan:
            self.check(out)
        return out

    def __call__(self, exchange: Exchange) -> Exchange:
        return self.apply(exchange)

    def check(self, exchange: Exchange) -> None:
        """Raise ``SecretLeakError`` if the exchange still holds something credential-shaped."""
        findings = scan_exchange(exchange)
        if not findings:
            return
        fields = list(dict.fromkeys(f"{f.field} ({f.kind})" for f in findings))
        first = findings[0].field
        if first.startswith(("request.header:", "response.header:")):
            hint = f"redact={{'headers': [{first.partition(':')[2]!r}]}}"
        elif first == "request.url":
            hint = "redact={'query': ['<param name>']}"
        else:
            hint = "redact={'body_paths': ['<field.path>']}"
        raise SecretLeakError(
            f"refusing to record {exchange.request.method} exchange: after redaction "
            f"{', '.join(fields)} still look(s) like a credential. Add it to the redaction "
            f"(e.g. {hint}), or, if it is not a secret, turn the check off with "
            "Redactor(scan=False) or redact={'scan': False}"
        )
