"""Code shared by voucherd's server and worker, one package per bounded context.

Contexts import downwards only: jobs → checkout → loyalty → catalog → definitions → platform;
``cli`` and ``status`` sit on top and wire them. docs/architecture.md draws it; ``lint-imports`` enforces it.
"""
