"""Host names and registrable domains, the unit a brand owns.

Why registrable domains: ``login.paypal.com`` belongs to whoever holds
``paypal.com``, while ``paypal.com.evil.tld`` belongs to the holder of
``evil.tld`` and ``someone.github.io`` to someone who is not GitHub. The
Public Suffix List says where registration happens (``co.uk``, ``github.io``);
PyMISP's URL parser answers a URL's domain the same way (``pymisp/tools/
_psl_faup.py``, ``PublicSuffixList.privatesuffix``). The list comes bundled with
the ``publicsuffixlist`` package, so nothing is downloaded at run time.

Start with :func:`host_of` (a URL or host name as analysts and tools write it →
a lower-case ASCII host) and :func:`registrable_domain`.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from engine.errors import BadInput

MAX_HOST_LENGTH = 253  # characters, RFC 1035 section 2.3.4
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_suffixes: PublicSuffixList | None = None
_lock = threading.Lock()


def host_of(value: str) -> str:
    """The host of a URL (``https://a.example.com/x``) or host name (``A.Example.com.``):
    lower case, IDNA-encoded (``xn--``), no trailing dot; an IP address as written.
    :class:`BadInput` when there is no valid host in ``value``."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput("a domain must be a non-empty host name or URL")
    text = value.strip()
    try:
        host = urlsplit(text if "://" in text else "//" + text).hostname
    except ValueError:
        host = None
    if not host:
        raise BadInput(f"no host name in {text[:100]!r}")
    host = host.rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BadInput(f"not a valid host name: {host[:100]!r}") from None
    if len(host) > MAX_HOST_LENGTH or not all(_LABEL.match(label) for label in host.split(".")):
        raise BadInput(f"not a valid host name: {host[:100]!r}")
    return host


def registrable_domain(value: str) -> str:
    """The domain someone registered for ``value`` (URL or host): ``paypal.co.uk`` for
    ``https://login.paypal.co.uk/``; an IP address, or a host that is itself a public suffix
    or has none (``localhost``), stands for itself."""
    host = host_of(value)
    if _is_ip(host):
        return host
    return _public_suffixes().privatesuffix(host) or host


def same_owner(value: str, domains: list[str] | tuple[str, ...] | set[str]) -> bool:
    """True when ``value``'s registrable domain is one of ``domains``' registrable domains."""
    mine = registrable_domain(value)
    return any(registrable_domain(domain) == mine for domain in domains)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _public_suffixes() -> PublicSuffixList:
    """The bundled list, parsed once per process (about 10k rules) on first use."""
    global _suffixes
    with _lock:
        if _suffixes is None:
            _suffixes = PublicSuffixList()
        return _suffixes
