"""Async-action operations of voucherd.definitions."""
