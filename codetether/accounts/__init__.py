"""Accounts: users, API keys, password sign-in, console sessions, OAuth clients and grants, usage."""
