"""Placeholder: the mail lab's pytest fixtures (session fixture ``mail_lab``) are added by the lab work."""
