"""What never reaches disk: credentials in headers, query parameters and body fields.

Redaction runs in memory on every exchange before it is encoded, because a secret
written first and scrubbed later survives in a crash or in a zstd frame that cannot
be patched. Every writer (the transports, the proxy, ``import``, ``redact``) goes
through ``Redactor.apply``, so the rules are the same everywhere:

1. by name: headers, query parameters, form fields and JSON keys at any depth whose
   name marks a credential (``credential_names``), and the configured ones;
2. by value: each value so replaced is masked wherever else it appears in the
   exchange, response included (``scrub``), with a mask of the same length;
3. by shape: key-shaped text left in the request refuses the write (fail closed,
   ``scan``): a new provider's header name must not leak silently, and the user can
   name it in the redaction. In response headers (and, with ``scan_response``, the
   response body) it is masked the same way as in 2: the answer is the upstream's, and
   the rest of it is worth keeping.

A gzip or deflate request body is decoded for all of this and, if something changed,
encoded again the same way each time (no timestamp), so the recorded body is still
what the header says and replay, which redacts the sent request the same way,
compares equal bytes.

Pure: ``Redactor.apply`` returns a new ``Exchange`` and leaves its input alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import msgspec

from streamtape.core.body_fields import redact_json_pairs, redact_multipart
from streamtape.core.codings import coding_of, decode, encode
from streamtape.core.credential_names import DEFAULT_KEEP, is_credential_name, normal_name
from streamtape.core.credential_shapes import find_shapes
from streamtape.core.exchange import Exchange, Headers, RecordedRequest, first_header
from streamtape.core.jsonpath import Path, locations, split_path
from streamtape.core.scan import Finding, scan_exchange, scan_text
from streamtape.core.scrub import Echoes, Labeled, apply_mask, mask_headers, mask_reads
from streamtape.errors import RedactConfigError, SecretLeakError

__all__ = [
    "DEFAULT_BODY_PATHS",
    "DEFAULT_HEADERS",
    "DEFAULT_QUERY",
    "PLACEHOLDER",
    "Finding",
    "RedactOptions",
    "Redactor",
    "is_sensitive_header",
    "scan_exchange",
    "scan_text",
]

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
    keep: list[str] = msgspec.field(default_factory=list)
    scan: bool = True
    scan_response: bool = False


def is_sensitive_header(name: str) -> bool:
    """Whether a header name looks like it carries a credential, by its words.

    Whole words only, so ``x-ratelimit-remaining-tokens`` is kept while
    ``x-auth-token``, ``Ocp-Apim-Subscription-Key`` and ``x-session-id`` are not.
    """
    return name.lower() in DEFAULT_HEADERS or is_credential_name(name)


def _split_path(dotted: str) -> Path:
    try:
        return split_path(dotted)
    except ValueError:
        raise RedactConfigError(f"empty body path {dotted!r}") from None


class Redactor:
    """Replaces credentials with a placeholder, then refuses exchanges that still hold one.

    ``headers``, ``query`` and ``body_paths`` add to the defaults (``defaults=False``
    drops them). By default every header, query parameter, form field and JSON key at
    any depth whose name marks a credential (see ``credential_names``) is replaced too,
    when its value is a string; ``keep`` lists names (any spelling) or dotted body paths
    that stay. Each replaced value is then masked wherever else it appears in the
    exchange (URL, headers, request and response body), with a mask of the same length,
    and the response headers are searched for key shapes and masked the same way. The
    response body is searched for key shapes only with ``scan_response=True``: copies of
    request secrets are masked in it regardless, but a search of every body byte for
    every shape adds about a third to the whole recording overhead per read. A gzip or
    deflate request body is decoded for this and encoded again only if something
    changed (deterministically, so replay compares the same bytes). ``hook`` runs last
    on the redacted exchange and its result is scanned too.
    """

    def __init__(
        self,
        *,
        headers: Iterable[str] = (),
        query: Iterable[str] = (),
        body_paths: Iterable[str] = (),
        keep: Iterable[str] = (),
        hook: Callable[[Exchange], Exchange] | None = None,
        defaults: bool = True,
        scan: bool = True,
        scan_response: bool = False,
        placeholder: str = PLACEHOLDER,
    ) -> None:
        lists = (("headers", headers), ("query", query), ("body_paths", body_paths), ("keep", keep))
        for what, value in lists:
            if isinstance(value, str):
                raise RedactConfigError(f"{what} must be a list of names, not the string {value!r}")
        self.defaults = defaults
        self._extra_headers = frozenset(h.lower() for h in headers)
        self._extra_query = frozenset(q.lower() for q in query)
        self.headers = self._extra_headers | (DEFAULT_HEADERS if defaults else frozenset())
        self.query = self._extra_query | (DEFAULT_QUERY if defaults else frozenset())
        self.body_paths = tuple(
            dict.fromkeys([*(DEFAULT_BODY_PATHS if defaults else ()), *body_paths])
        )
        self._paths = [(p, _split_path(p)) for p in self.body_paths]
        self.keep = tuple(keep)
        self._keep_names = frozenset(normal_name(k) for k in self.keep if "." not in k) | (
            DEFAULT_KEEP if defaults else frozenset()
        )
        self._keep_paths = [_split_path(k) for k in self.keep if "." in k]
        self.hook = hook
        self.scan = scan
        self.scan_response = scan_response
        self.placeholder = placeholder
        self._query_placeholder = quote(placeholder, safe="")
        self._form_names = frozenset(p.lower() for p in self.body_paths if "." not in p)
        # Decisions by name, remembered: the same few names come with every request.
        self._header_names: dict[str, bool] = {}
        self._query_names: dict[str, bool] = {}
        self._key_names: dict[str, bool] = {}

    def __repr__(self) -> str:
        return (
            f"Redactor(headers={sorted(self.headers)}, query={sorted(self.query)}, "
            f"body_paths={list(self.body_paths)}, keep={list(self.keep)}, "
            f"defaults={self.defaults}, scan={self.scan}, scan_response={self.scan_response}, "
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
        A dict or ``RedactOptions`` with ``headers``, ``query``, ``body_paths``,
        ``keep`` (and ``scan``): those on top of the defaults. A callable ``(Exchange)
        -> Exchange``: run after the defaults.
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
                    "body_paths, keep (lists of names), scan and scan_response (bool)"
                ) from None
        if isinstance(value, RedactOptions):
            return cls(
                headers=value.headers,
                query=value.query,
                body_paths=value.body_paths,
                keep=value.keep,
                scan=value.scan,
                scan_response=value.scan_response,
            )
        if callable(value):
            return cls(hook=value)
        raise RedactConfigError(
            f"cannot use {value!r} as redact=: pass None (defaults), False (nothing), a "
            "Redactor, a dict of headers/query/body_paths/keep, or a function Exchange -> Exchange"
        )

    # -- which names --

    def _by_name(self, name: str, explicit: frozenset[str], defaults: frozenset[str]) -> bool:
        lowered = name.lower()
        if lowered in explicit:
            return True
        if not self.defaults or normal_name(name) in self._keep_names:
            return False
        return lowered in defaults or is_credential_name(name, ())

    def header_is_secret(self, name: str) -> bool:
        """Whether this redactor replaces header ``name``."""
        known = self._header_names.get(name)
        if known is None:
            known = self._by_name(name, self._extra_headers, DEFAULT_HEADERS)
            _remember(self._header_names, name, known)
        return known

    def query_is_secret(self, name: str) -> bool:
        """Whether this redactor replaces query parameter ``name``."""
        known = self._query_names.get(name)
        if known is None:
            known = self._by_name(name, self._extra_query, DEFAULT_QUERY)
            _remember(self._query_names, name, known)
        return known

    def _key_is_secret(self, key: str, path: tuple[str | int, ...]) -> bool:
        known = self._key_names.get(key)
        if known is None:
            known = self.defaults and is_credential_name(key, self._keep_names)
            _remember(self._key_names, key, known)
        if not known or not self._keep_paths:
            return known
        return not any(_path_names(kept, path) for kept in self._keep_paths)

    def _named_key_is_secret(self, key: str) -> bool:
        return self._key_is_secret(key, (key,))

    # -- parts --

    def redact_headers(
        self, headers: Headers, prefix: str, echoes: Echoes | None = None
    ) -> tuple[Headers, list[str]]:
        """A new header list with secret values replaced, and the names replaced."""
        out: Headers = []
        names: list[str] = []
        for name, value in headers:
            if value != self.placeholder and self.header_is_secret(name):
                out.append((name, self.placeholder))
                entry = f"{prefix}.header:{name.lower()}"
                names.append(entry)
                if echoes is not None:
                    _add_header_value(echoes, name, value, entry)
            else:
                out.append((name, value))
        return out, names

    def redact_url(self, url: str, echoes: Echoes | None = None) -> tuple[str, list[str]]:
        """The URL with secret query values and any userinfo password replaced."""
        parts = urlsplit(url)
        names: list[str] = []
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostport = netloc.rpartition("@")
            user, _, password = userinfo.partition(":")
            netloc = f"{user}:{self._query_placeholder}@{hostport}"
            names.append("request.url:password")
            if echoes is not None:
                echoes.add(unquote_plus(password), "request.url:password")
        query = parts.query
        if query:
            query = self._redact_pairs(query, "request.query", self.query_is_secret, names, echoes)
        if not names:
            return url, names
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), names

    def _redact_pairs(
        self,
        encoded: str,
        prefix: str,
        is_secret: Callable[[str], bool],
        names: list[str],
        echoes: Echoes | None,
    ) -> str:
        """``a=1&b=2`` (a query or a form body) with the secret values replaced."""
        segments = encoded.split("&")
        for i, segment in enumerate(segments):
            raw_name, sep, raw_value = segment.partition("=")
            if not (sep and raw_value and raw_value != self._query_placeholder):
                continue
            name = unquote_plus(raw_name)
            if is_secret(name):
                segments[i] = f"{raw_name}={self._query_placeholder}"
                entry = f"{prefix}:{name}"
                names.append(entry)
                if echoes is not None:
                    echoes.add(unquote_plus(raw_value), entry)
                    echoes.add(raw_value, entry)
        return "&".join(segments)

    def _form_is_secret(self, name: str) -> bool:
        return name.lower() in self._form_names or self._by_name(name, frozenset(), frozenset())

    def redact_body(
        self, headers: Headers, body: bytes, echoes: Echoes | None = None
    ) -> tuple[bytes, list[str]]:
        """The (decoded) request body with JSON keys, paths and form fields replaced."""
        if not body:
            return body, []
        ctype = (first_header(headers, "content-type") or "").split(";")[0].strip().lower()
        names: list[str] = []
        if ctype == "application/x-www-form-urlencoded":
            text = body.decode("latin-1")
            out = self._redact_pairs(text, "request.body", self._form_is_secret, names, echoes)
            return (out.encode("latin-1"), names) if names else (body, [])
        if ctype == "multipart/form-data":
            found = first_header(headers, "content-type") or ""
            return redact_multipart(found, body, self.placeholder, self._form_is_secret, echoes)
        if "json" not in ctype and body.lstrip()[:1] not in (b"{", b"["):
            return body, []
        try:
            value = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return body, []
        except RecursionError:  # nested too deep to parse: find "name": "value" pairs
            return redact_json_pairs(body, self.placeholder, self._named_key_is_secret, echoes)
        for dotted, parts in self._paths:
            for container, key in list(locations(value, parts)):
                old = container[key]
                if old is not None and old != self.placeholder:
                    container[key] = self.placeholder
                    names.append(f"request.body:{dotted}")
                    if echoes is not None and isinstance(old, str):
                        echoes.add(old, f"request.body:{dotted}")
        self._redact_keys(value, names, echoes)
        if not names:
            return body, []
        return msgspec.json.encode(value), list(dict.fromkeys(names))

    def _redact_keys(self, root: object, names: list[str], echoes: Echoes | None) -> None:
        """Replace the string value of every credential-named key, at any depth (no recursion)."""
        if not isinstance(root, (dict, list)):
            return
        queue: list[tuple[dict[str, Any] | list[Any], tuple[str | int, ...]]] = [(root, ())]
        for node, path in queue:  # grows while it is walked
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                sub = (*path, key)
                if isinstance(value, str):
                    if (
                        isinstance(key, str)
                        and value
                        and value != self.placeholder
                        and self._key_is_secret(key, sub)
                    ):
                        node[key] = self.placeholder  # type: ignore[call-overload]
                        entry = "request.body:" + ".".join(map(str, sub))
                        names.append(entry)
                        if echoes is not None:
                            echoes.add(value, entry)
                elif isinstance(value, (dict, list)) and value:
                    queue.append((value, sub))

    def redact_request(self, request: RecordedRequest) -> tuple[RecordedRequest, list[str]]:
        """A redacted copy of a request, and the names of what changed.

        Replay runs a sent request through this too, so it compares equal to the
        redacted recording.
        """
        new, names, _ = self._redact_request(request)
        return new, names

    def _redact_request(
        self, request: RecordedRequest
    ) -> tuple[RecordedRequest, list[str], Echoes]:
        echoes = Echoes()
        headers, names = self.redact_headers(request.headers, "request", echoes)
        url, url_names = self.redact_url(request.url, echoes)
        names += url_names
        body = request.body
        coding = coding_of(request.headers)
        decoded = decode(coding, body) if body else body
        if decoded is not None:
            new, body_names = self.redact_body(request.headers, decoded, echoes)
            names += body_names
            spans = echoes.find(new) if echoes else []
            if spans:
                new = apply_mask(new, spans)
                names += [f"request.body ({label})" for _, _, label in spans]
            if new is not decoded:
                body = new if coding is None else encode(coding, new)
        if echoes:
            url, url_echoes = echoes.text(url)
            names += [f"request.url ({label})" for label in url_echoes]
            headers, header_echoes = mask_headers(headers, "request", echoes.find)
            names += header_echoes
        if len(body) != len(request.body):  # keep the recorded request self-consistent
            size = str(len(body))
            headers = [(k, size if k.lower() == "content-length" else v) for k, v in headers]
        redacted = msgspec.structs.replace(request, url=url, headers=headers, body=body)
        return redacted, list(dict.fromkeys(names)), echoes

    def _response_finder(
        self, echoes: Echoes, *, body: bool
    ) -> Callable[[bytes], list[Labeled]] | None:
        """What to mask in the response: copies of redacted values and (scan) key shapes."""
        shapes = self.scan and (self.scan_response or not body)
        if not echoes and not shapes:
            return None

        def find(data: bytes) -> list[Labeled]:
            spans = echoes.find(data) if echoes else []
            if shapes:
                spans += find_shapes(data)
            return spans

        return find

    # -- whole exchange --

    def apply(self, exchange: Exchange) -> Exchange:
        """A redacted copy of ``exchange``, its ``redacted`` list extended with what changed.

        Raises ``SecretLeakError`` naming the field (never the value) if something
        credential-shaped is left in the request and scanning is on; in the response
        such a thing is masked instead (it is the upstream's answer, and the rest of it
        is worth keeping).
        """
        request, names, echoes = self._redact_request(exchange.request)
        response_headers, response_names = self.redact_headers(
            exchange.response_headers, "response"
        )
        names += response_names
        reads = list(exchange.reads)
        find = self._response_finder(echoes, body=False)
        if find is not None:
            response_headers, masked = mask_headers(response_headers, "response", find)
            names += masked
        find = self._response_finder(echoes, body=True)
        if find is not None and reads:
            body = mask_reads(reads, response_headers, find)
            if body is not None:
                reads, response_headers, labels = body
                names += [f"response.body ({label})" for label in labels]
        redacted = list(exchange.redacted)
        for name in names:
            if name not in redacted:
                redacted.append(name)
        out = msgspec.structs.replace(
            exchange,
            request=request,
            response_headers=response_headers,
            reads=reads,
            redacted=redacted,
        )
        if self.hook is not None:
            out = self.hook(out)
            if not isinstance(out, Exchange):
                raise RedactConfigError(
                    f"the redact hook {self.hook!r} returned {type(out).__name__}, not an Exchange"
                )
        if self.scan:
            # The response was searched and masked above; only a hook can have changed it.
            changed = self.hook is not None
            self._check(out, response_body=changed, response=changed)
        return out

    def __call__(self, exchange: Exchange) -> Exchange:
        return self.apply(exchange)

    def check(self, exchange: Exchange) -> None:
        """Raise ``SecretLeakError`` if the exchange still holds something credential-shaped."""
        self._check(exchange, response_body=True, response=True)

    def _check(self, exchange: Exchange, *, response_body: bool, response: bool) -> None:
        findings = scan_exchange(exchange, response_body=response_body, response=response)
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


_NAMES_REMEMBERED = 4096


def _remember(cache: dict[str, bool], name: str, verdict: bool) -> None:
    """Keep a decision by name; a flood of distinct names (user JSON) starts over."""
    if len(cache) >= _NAMES_REMEMBERED:
        cache.clear()
    cache[name] = verdict


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9-]*\s+(\S.*)")


def _add_header_value(echoes: Echoes, name: str, value: str, source: str) -> None:
    """Hunt a redacted header value elsewhere: whole, without its auth scheme, per cookie."""
    scheme = _SCHEME.fullmatch(value)
    echoes.add(value if scheme is None else scheme.group(1), source)
    if "cookie" in name.lower():
        for pair in value.split(";"):
            echoes.add(pair.partition("=")[2].strip(), source)


def _path_names(kept: Path, path: tuple[str | int, ...]) -> bool:
    """Whether a keep path names ``path`` (a list index is skipped unless the path gives it)."""
    i = 0
    for segment in path:
        if isinstance(segment, int):
            if i < len(kept) and kept[i].isdigit():
                if int(kept[i]) != segment:
                    return False
                i += 1
            continue
        if i >= len(kept) or kept[i] != segment:
            return False
        i += 1
    return i == len(kept)
