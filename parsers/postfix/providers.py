"""Destination providers: a bounded class from the relay (MX) host name a delivery went to.

Per-domain labels explode (every recipient domain is a series); the provider that runs the receiving MX
does not: Workspace and Microsoft 365 customers keep their own domains but their MX names end in
``google.com`` / ``mail.protection.outlook.com``. So the class comes from the relay host's suffix, never
from the recipient domain.

The suffixes below are the MX host names these providers publish (checked against the MX records of
their consumer domains and, for the filtering services, their customer documentation). Cross-checked with
jace/mxsniff ``mxsniff/providers.py`` (commit 01d9f86ef29a318916b47e6f32d59a4381cf9f6d), which lists
``*.mail.protection.outlook.com`` style patterns for the same providers:

==============  =====================================================================================
provider        MX host name suffixes (examples)
==============  =====================================================================================
google          ``aspmx.l.google.com``, ``gmail-smtp-in.l.google.com``, ``*.smtp.google.com``,
                ``*.googlemail.com``, ``*.psmtp.com`` (Postini, now Google)
microsoft       ``*.mail.protection.outlook.com`` (Microsoft 365), ``*.olc.protection.outlook.com``
                (outlook.com/hotmail), ``*.hotmail.com``, ``*.outlook.com``
yahoo           ``*.yahoodns.net`` (Yahoo and AOL: ``mx-aol.mail.gm0.yahoodns.net``), ``*.mx.aol.com``
apple           ``*.mail.icloud.com`` (``mx01.mail.icloud.com``)
proton          ``*.protonmail.ch`` (``mail.protonmail.ch``, ``mailsec.protonmail.ch``)
gmx_webde       ``*.gmx.net``, ``*.gmx.com``, ``*.web.de``, ``*.mail.com`` (United Internet's mail brands;
                same spelling as the blocklist provider class)
ionos           ``*.ionos.de``, ``*.ionos.com``, ``*.kundenserver.de``, ``*.1and1.com``, ``*.1and1.co.uk``
mailru          ``*.mail.ru`` (``mxs.mail.ru``)
yandex          ``*.yandex.net``, ``*.yandex.ru``
comcast         ``*.comcast.net`` (``mx1a1.comcast.net``)
att             ``*.prodigy.net`` (AT&T's ``ff-ip4-mx-vip1.prodigy.net``), ``*.att.net``
mimecast        ``*.mimecast.com``, ``*.mimecast.co.za``
proofpoint      ``*.pphosted.com`` (enterprise), ``*.ppe-hosted.com`` (Essentials)
barracuda       ``*.barracudanetworks.com`` (``d1.mx.ess.barracudanetworks.com``), ``*.barracuda.com``
trendmicro      ``*.trendmicro.com`` (``*.tmes.trendmicro.com``), ``*.trendmicro.eu``
cisco           ``*.iphmx.com`` (Cisco Secure Email / IronPort cloud)
zoho            ``*.zoho.com``, ``*.zoho.eu``, ``*.zoho.in``, ``*.zohomail.com``
fastmail        ``*.messagingengine.com`` (``in1-smtp.messagingengine.com``)
ovh             ``*.ovh.net`` (``mx1.mail.ovh.net``)
amazon          ``*.amazonaws.com`` (SES / WorkMail inbound: ``inbound-smtp.eu-west-1.amazonaws.com``)
==============  =====================================================================================

Besides these: ``internal`` (a relay on loopback, a private network, a unix socket, or named in
``postfix.tracking.internal_relays``: a content filter or another of our hosts), ``local`` (local,
virtual, pipe and lmtp-over-socket deliveries on this host: ``relay=local``, ``relay=dovecot``), ``none``
(no relay: the attempt failed before a connection) and ``other``. A site adds its own classes with
``postfix.providers`` (a suffix → name map, tried first).
"""

from __future__ import annotations

from collections.abc import Iterable

# suffix -> provider; matched on a label boundary ("x.google.com" and "google.com", never "notgoogle.com")
BUILTIN_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("google.com", "google"), ("googlemail.com", "google"), ("psmtp.com", "google"),
    ("protection.outlook.com", "microsoft"), ("outlook.com", "microsoft"), ("hotmail.com", "microsoft"),
    ("yahoodns.net", "yahoo"), ("mx.aol.com", "yahoo"),
    ("mail.icloud.com", "apple"), ("icloud.com", "apple"),
    ("protonmail.ch", "proton"),
    ("gmx.net", "gmx_webde"), ("gmx.com", "gmx_webde"), ("web.de", "gmx_webde"), ("mail.com", "gmx_webde"),
    ("ionos.de", "ionos"), ("ionos.com", "ionos"), ("kundenserver.de", "ionos"), ("1and1.com", "ionos"),
    ("1and1.co.uk", "ionos"),
    ("mail.ru", "mailru"),
    ("yandex.net", "yandex"), ("yandex.ru", "yandex"),
    ("comcast.net", "comcast"),
    ("prodigy.net", "att"), ("att.net", "att"),
    ("mimecast.com", "mimecast"), ("mimecast.co.za", "mimecast"),
    ("pphosted.com", "proofpoint"), ("ppe-hosted.com", "proofpoint"),
    ("barracudanetworks.com", "barracuda"), ("barracuda.com", "barracuda"),
    ("trendmicro.com", "trendmicro"), ("trendmicro.eu", "trendmicro"),
    ("iphmx.com", "cisco"),
    ("zoho.com", "zoho"), ("zoho.eu", "zoho"), ("zoho.in", "zoho"), ("zohomail.com", "zoho"),
    ("messagingengine.com", "fastmail"),
    ("ovh.net", "ovh"),
    ("amazonaws.com", "amazon"),
)  # fmt: skip

BUILTIN_PROVIDERS: tuple[str, ...] = tuple(dict.fromkeys(name for _, name in BUILTIN_SUFFIXES))
# the classes that do not come from a suffix
INTERNAL, LOCAL, NONE, OTHER, MIXED = "internal", "local", "none", "other", "mixed"
SPECIAL_PROVIDERS = (INTERNAL, LOCAL, NONE, OTHER)
PROVIDERS: tuple[str, ...] = (*BUILTIN_PROVIDERS, *SPECIAL_PROVIDERS)


class ProviderTable:
    """Map a relay host name to its provider class by the longest matching suffix.

    ``site`` (suffix → name) is tried before the built-in table; ``internal`` names relay hosts (exact,
    case-insensitive) that are ours: another host of the site or a content filter on another machine.
    """

    def __init__(self, site: Iterable[tuple[str, str]] = (), internal: Iterable[str] = ()) -> None:
        self._site = {s.lower().strip("."): n for s, n in site}
        self._builtin = dict(BUILTIN_SUFFIXES)
        self.internal = frozenset(h.lower().rstrip(".") for h in internal)
        self.site_names = tuple(dict.fromkeys(self._site.values()))

    def classify(self, host: str) -> str:
        """The provider of a remote relay host name (``mx1.example.net``); ``other`` when none matches."""
        name = host.lower().rstrip(".")
        if name in self.internal:
            return INTERNAL
        for table in (self._site, self._builtin):
            if not table:
                continue
            # walk the label boundaries from the longest suffix to the shortest
            suffix = name
            while suffix:
                found = table.get(suffix)
                if found is not None:
                    return found
                suffix = suffix.partition(".")[2]
        return OTHER
