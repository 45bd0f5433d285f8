"""Test-support helpers shared by rova's test suite (not collected as tests)."""
