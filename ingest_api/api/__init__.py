"""HTTP API and web pages of the central service."""
