"""A git credential helper that answers with the token in one environment variable.

A repo given by an https ``url`` with ``token_env`` gets, in its managed checkout's git
config, ``credential.helper = !<python> -m upgrade.hosts.credential_helper <VARIABLE>``
(after an empty value, which drops the user's other helpers for that checkout). git runs it
for every command that needs the remote (clone, fetch, the lazy blob fetches of a blob-less
clone, push) with the process's environment, so the token is read at that moment and is
never in a URL, on a command line, in a file or in anything git prints. The variable's name
was validated as an identifier when the inventory was loaded.

See gitcredentials(7) and git-credential(1): the helper is called with ``get``, ``store``
or ``erase``; only ``get`` is answered, with ``username`` and ``password`` lines.
"""

from __future__ import annotations

import os
import sys

#: The user name sent with the token: what GitHub's own actions/checkout sends; GitLab
#: accepts any user name with an access token. (Nothing else is imported: git starts this
#: helper for every connection.)
TOKEN_USER = "x-access-token"


def main(argv: list[str]) -> int:
    """``<VARIABLE> get|store|erase``: print the credential for ``get``, nothing otherwise."""
    if len(argv) != 2 or argv[1] != "get":
        return 0
    sys.stdin.read()  # git's description of the request (protocol, host): one answer fits all
    token = os.environ.get(argv[0], "")
    if token:
        sys.stdout.write(f"username={TOKEN_USER}\npassword={token}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
