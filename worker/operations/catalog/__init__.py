"""Async-action operations of voucherd.catalog."""
