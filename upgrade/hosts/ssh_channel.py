"""One command on an SSH runner: the remote script, the command line, the environment on
stdin, and the channel runner that reads the result.

Nothing from the inventory or the caller is ever pasted into shell text: the remote
command is ``sh -c SCRIPT sh CWD LIMIT GRACE STDIN ARGV...`` with every word
``shlex.quote``-d. ``SCRIPT`` is the constant :data:`REMOTE_SCRIPT`; it changes into CWD,
reads the environment from the channel's stdin (one ``NAME=value`` per line, an empty line
ends it), exports it, and runs ARGV under GNU ``timeout`` with the next STDIN bytes as its
input (``/dev/null`` when STDIN is 0).

We never send an EOF: paramiko builds a channel's EOF under the channel's lock but sends it
outside, so an EOF racing the close of a command that already exited can reach sshd after
the channel is freed, and sshd then drops the whole connection ("ieof packet referred to
nonexistent channel"), cutting every other command on it. Counted stdin needs no EOF.

Environment values therefore never appear on a command line (``ps`` on the runner shows
names of nothing secret), and ``timeout`` kills the command's whole process group on the
runner when it overruns, even if this process or the connection is gone by then.
"""

from __future__ import annotations

import codecs
import re
import shlex
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

import paramiko
from fabric.runners import Remote

from upgrade.errors import Signal
from upgrade.hosts.host import KILL_GRACE, check_argv

# How much longer than the remote ``timeout`` we wait before giving up on the channel
# ourselves (the remote kill normally ends it first; this covers a wedged runner).
LOCAL_MARGIN = 10.0
# GNU timeout's exit statuses for "timed out, stopped by TERM" and "... needed KILL".
TIMEOUT_TERM, TIMEOUT_KILL = 124, 128 + signal.SIGKILL

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_PREFIX = "_UPGRADE_"

#: Runs on the runner as ``sh -c REMOTE_SCRIPT sh CWD LIMIT GRACE STDIN ARGV...``. A missing CWD
#: exits 1 and a missing command 127, as LocalHost does. The command is not exec'ed, so a
#: signal death comes back as the shell's 128+N exit status (SSH's exit-signal is dropped
#: by paramiko) and GNU timeout's 124/137 mark a time-out.
REMOTE_SCRIPT = """\
CDPATH= cd -- "$1" 2>/dev/null || {
  printf 'cd: %s: No such file or directory\\n' "$1" >&2; exit 1; }
_UPGRADE_LIMIT=$2 _UPGRADE_GRACE=$3 _UPGRADE_STDIN=$4; shift 4
while IFS= read -r _UPGRADE_KV && [ -n "$_UPGRADE_KV" ]; do
  export "$_UPGRADE_KV" || exit 125; done
command -v timeout >/dev/null 2>&1 || {
  echo 'timeout: not found (install GNU coreutils on this runner)' >&2; exit 127; }
if [ "$_UPGRADE_STDIN" -eq 0 ]; then
  timeout -k "$_UPGRADE_GRACE" "$_UPGRADE_LIMIT" "$@" </dev/null
else
  head -c "$_UPGRADE_STDIN" | timeout -k "$_UPGRADE_GRACE" "$_UPGRADE_LIMIT" "$@"
fi
exit $?"""


class Lost(Signal):
    """The connection died after the command was sent: it may or may not have run."""


def remote_command(argv: Sequence[str], cwd: str, timeout: float, stdin: str | None = None
                   ) -> str:
    """The one command string sent to sshd for ``argv`` in ``cwd`` (see REMOTE_SCRIPT)."""
    args = check_argv(argv)
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    # timeout(1) reads 0 as "no limit"; the smallest representable limit is the honest one.
    limit = f"{max(timeout, 0.001):.3f}"
    size = str(len((stdin or "").encode("utf-8")))
    return shlex.join(
        ["sh", "-c", REMOTE_SCRIPT, "sh", cwd, limit, f"{KILL_GRACE:g}", size, *args])


def env_payload(env: Mapping[str, str] | None, stdin: str | None = None) -> str:
    """What the channel's stdin carries: ``NAME=value`` lines, an empty line, then ``stdin``
    (whose size in bytes :func:`remote_command` passes)."""
    lines = []
    for name, value in (env or {}).items():
        if not _ENV_NAME.match(name) or name.startswith(_RESERVED_PREFIX):
            raise ValueError(f"{name!r} is not a usable environment variable name")
        if "\n" in value or "\0" in value:
            # Values travel one per line; the name is safe to show, the value may be secret.
            raise ValueError(f"environment variable {name} has a newline or NUL in its value")
        lines.append(f"{name}={value}\n")
    return "".join(lines) + "\n" + (stdin or "")


class ChannelRunner(Remote):
    """Fabric's ``Remote`` runner, adjusted for many short commands on one shared connection."""

    def __init__(self, *args: Any, channel: paramiko.Channel, **kwargs: Any):
        # SSHHost opens the channel itself: Fabric's create_session() would silently reopen
        # a dead connection, outside SSHHost's lock, and knows nothing of session limits.
        self._opened = channel
        super().__init__(*args, **kwargs)

    def start(self, command: str, shell: str, env: dict[str, str], timeout: Any = None) -> None:
        self.channel = self._opened
        try:
            self.channel.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise Lost(str(exc) or type(exc).__name__) from exc

    def wait(self) -> None:
        # Invoke polls every input_sleep (10 ms), which would add ~5 ms to every command;
        # paramiko sets status_event the moment the exit status (or a close) arrives.
        while not (self.process_is_finished or self.has_dead_threads):
            self.channel.status_event.wait(0.5)

    def handle_stdin(self, input_: IO[str], output: IO[str], echo: bool = False) -> None:
        # Our stdin is always a finite in-memory stream: send it and stop, with no EOF (see
        # the module's docstring). Invoke's loop would keep sleeping until the command exits.
        try:
            while data := input_.read(self.read_chunk_size):
                self.write_proc_stdin(data)
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the command exited without reading it all, as with EPIPE locally

    def read_proc_output(self, reader: Callable[[int], bytes]) -> Iterator[str]:
        # Invoke decodes each 1000-byte chunk on its own, garbling characters that straddle
        # two chunks; an incremental decoder keeps them whole.
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while data := reader(self.read_chunk_size):
            yield decoder.decode(data)
        if rest := decoder.decode(b"", final=True):
            yield rest
