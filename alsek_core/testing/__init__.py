"""Helpers for testing code that uses alsek, and for testing backends."""
