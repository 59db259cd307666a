"""Packaged credit-policy files (YAML) read by mobilend.decisioning.rules."""
