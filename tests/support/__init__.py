"""Helpers of the test suite that product code has no use for."""
