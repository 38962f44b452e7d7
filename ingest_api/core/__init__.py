"""Configuration of the central service."""
