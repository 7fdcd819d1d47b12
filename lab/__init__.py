"""mailpulse's local mail lab: real Postfix, Dovecot, rspamd, OpenDKIM and DNS on loopback.

Stdlib only, so `lab/mail-lab` runs with the system python3 before any venv exists.
See docs/lab.md.
"""
