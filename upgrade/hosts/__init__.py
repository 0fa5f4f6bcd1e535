"""Where repositories live: the Host interface, this machine, SSH runners, the pool, git."""
