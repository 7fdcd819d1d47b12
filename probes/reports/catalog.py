"""Who sent a report, as a bounded label: a catalogue of the big receivers, plus the config's own entries.

A reporter is matched by substrings of its organisation name and of its address's domain, lowercased
(``org_name`` ``Enterprise Outlook`` or ``Outlook.com`` with ``dmarcreport@microsoft.com`` are both
``microsoft``). The values below are ones real reports carry (parsedmarc's and dmarc-metrics-exporter's
samples, RFC examples, and the reporters' documentation); anything else is ``other``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

OTHER = "other"

# label -> substrings of the lowercased org name or address domain. Order matters: first match wins.
REPORTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("google", ("google",)),  # "google.com", "Google Inc."
    ("microsoft", ("outlook", "microsoft", "hotmail", "live.com", "msn.com")),  # "Enterprise Outlook", "Outlook.com"
    ("yahoo", ("yahoo", "aol.com", "verizon media")),  # "Yahoo", "Yahoo! Inc.", "AOL"
    ("mailru", ("mail.ru",)),  # "Mail.Ru", "Mail.ru"
    ("yandex", ("yandex",)),  # "Yandex"
    ("gmx_webde", ("gmx", "web.de", "1&1", "united internet")),  # "GMX", "WEB.DE"
    ("comcast", ("comcast",)),  # "comcast.net"
    ("fastmail", ("fastmail", "messagingengine")),  # "Fastmail Pty Ltd", "fastmail.com"
    ("zoho", ("zoho",)),  # "zoho.com"
    ("apple", ("icloud", "apple")),  # "Apple Inc."
    ("proton", ("proton",)),  # "Proton AG"
    ("mimecast", ("mimecast",)),
    ("proofpoint", ("proofpoint", "pphosted")),
    ("amazon", ("amazon",)),  # "Amazon SES"
    ("cisco", ("cisco", "iphmx")),  # Cisco Secure Email (IronPort)
    ("tonline", ("t-online",)),
    ("orange", ("orange.fr", "orange")),
    ("seznam", ("seznam",)),
    ("tencent", ("qq.com", "tencent")),
    ("netease", ("netease", "163.com", "126.com")),
    ("linkedin", ("linkedin",)),
    ("att", ("att.net", "at&t")),
)
NAMES = tuple(name for name, _ in REPORTERS)


def make_reporter_label(extra: Mapping[str, Sequence[str]] | None = None) -> Callable[[str], str]:
    """A function from a reporter's name or address (or domain) to its label; ``extra`` (from the config)
    is tried first."""
    table = [(name, tuple(s.lower() for s in subs)) for name, subs in (extra or {}).items()] + list(REPORTERS)
    cache: dict[str, str] = {}

    def label(reporter: str) -> str:
        key = reporter.strip().lower()
        hit = cache.get(key)
        if hit is not None:
            return hit
        found = next((name for name, subs in table if any(s in key for s in subs)), OTHER)
        if len(cache) < 10_000:
            cache[key] = found
        return found

    return label
