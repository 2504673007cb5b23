"""Codebases: the repositories tasks work on, their URL rules and sealed credentials."""
