"""Async-action operations of voucherd.jobs."""
