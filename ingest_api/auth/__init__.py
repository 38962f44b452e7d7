"""Accounts, passwords, the second factor, sign-in and service tokens (docs/security.md)."""
