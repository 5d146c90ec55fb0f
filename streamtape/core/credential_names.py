"""Which field names mark a credential, in any case and separator style.

One rule for header names, query parameters, form fields and JSON keys: a name is split
into words (``apiKey``, ``api_key``, ``API-KEY`` and ``x-api-key`` all give ``api``,
``key``), and it marks a credential when one of its words is a credential word, or a
single fused word ends in one (``apikey``, ``authtoken``). Whole words only, so
``max_tokens``, ``x-ratelimit-remaining-tokens`` and ``author`` are ordinary names.

Names are compared in their *normal form* (words joined by ``_``), so a keep-list entry
written ``promptCacheKey`` keeps ``prompt_cache_key`` too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CREDENTIAL_WORDS = frozenset(
    {
        "auth",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "creds",
        "key",
        "pass",
        "passphrase",
        "passwd",
        "password",
        "pwd",
        "secret",
        "session",
        "sig",
        "signature",
        "subscription",
        "token",
    }
)
"""A name holding any of these words marks a credential (``tokens`` is not one: it counts)."""

_FUSED_SUFFIXES = (
    "apikey",
    "accesskey",
    "authkey",
    "privatekey",
    "secretkey",
    "subscriptionkey",
    "token",
    "secret",
    "password",
    "passwd",
    "credential",
    "credentials",
)
"""Endings of a single fused word that mark it (``xapikey``, ``accesstoken``, ``clientsecret``)."""

DEFAULT_KEEP = frozenset(
    {
        "access_control_allow_credentials",
        "idempotency_key",
        "prompt_cache_key",
    }
)
"""Names that hold a credential word but never a secret (kept unless asked otherwise)."""

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def name_words(name: str) -> list[str]:
    """The lower-case words of a name: ``"Ocp-Apim-Subscription-Key"`` -> ocp, apim, ..."""
    return [w.lower() for w in _WORDS.findall(name)]


def normal_name(name: str) -> str:
    """The form names are compared in: ``"X-Api-Key"`` and ``"xApiKey"`` -> ``"x_api_key"``."""
    return "_".join(name_words(name))


def is_credential_name(name: str, keep: Iterable[str] = DEFAULT_KEEP) -> bool:
    """Whether ``name`` marks a credential and is not kept (``keep`` in normal form)."""
    words = name_words(name)
    if not words or "_".join(words) in keep:
        return False
    if any(w in CREDENTIAL_WORDS for w in words):
        return True
    return len(words) == 1 and words[0].endswith(_FUSED_SUFFIXES)
