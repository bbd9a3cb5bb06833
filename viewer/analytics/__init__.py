"""Placeholder for the analytics package (later issues); Qt-free by contract."""
