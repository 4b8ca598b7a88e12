"""One module per stream; the module name is the stream name."""
