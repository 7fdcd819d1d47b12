"""Message tracking: one message's Postfix lines joined by queue ID (see :mod:`.tracker` and docs/tracking.md)."""
