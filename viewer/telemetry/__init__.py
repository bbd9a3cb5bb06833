"""Placeholder for the telemetry package (later issues); Qt-free by contract."""
