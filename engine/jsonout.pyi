"""C-level JSON writer for calculated orders (``jsonout.pxd``); no Python-facing API."""
