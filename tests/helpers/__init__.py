"""Test code shared by several test modules."""
