"""The command line: one function per command, and the invoke collection."""
