"""Shared pytest configuration: the mail-lab fixtures live in tests/lab_plugin.py."""

pytest_plugins = ["tests.lab_plugin"]
