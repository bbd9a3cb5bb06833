"""Placeholder for the sim package (later issues); Qt-free by contract."""
