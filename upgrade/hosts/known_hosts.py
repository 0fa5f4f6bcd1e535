"""Host keys of SSH runners: OpenSSH's known_hosts files, fingerprints, and the policy for a
key known_hosts does not list (``strict`` refuses, ``accept-new`` records it, ``ignore``
accepts it with a warning)."""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any

import paramiko

from upgrade.errors import HostKeyRefused

log = logging.getLogger(__name__)

# The user's known_hosts (read, and appended to under accept-new) and the system-wide one
# (read only), as OpenSSH uses them.
USER_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
SYSTEM_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's fingerprint of a public key: ``SHA256:`` and unpadded base64."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """What to do with a host key known_hosts does not list: refuse, or record and accept."""

    def __init__(self, host: Any):
        self.host = host

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        policy = self.host.known_hosts
        if policy == "ignore":
            log.warning("runner %s: host key not checked (known_hosts: ignore); it presented %s %s",
                        self.host.name, key.get_name(), fingerprint(key))
            return
        if policy == "accept-new":
            self.host.remember_host_key(hostname, key)
            return
        file = self.host.known_hosts_file
        where = f"in {file}" if file.exists() else f"because {file} does not exist"
        raise HostKeyRefused(
            self.host.name,
            f"Runner {self.host.name} ({self.host.address}) presented a host key that is not "
            f"known {where}: {key.get_name()} {fingerprint(key)}. With known_hosts: strict "
            "an unknown key is never accepted. Verify the fingerprint on the runner "
            "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then add it with "
            f"`ssh-keyscan -p {self.host.port} {self.host.hostname} >> {file}`, "
            "or set known_hosts: accept-new for this runner.",
            fingerprint=fingerprint(key),
        )


def known_hosts_name(hostname: str, port: int) -> str:
    """How known_hosts names a host: ``name``, or ``[name]:port`` off port 22."""
    return hostname if port == 22 else f"[{hostname}]:{port}"
