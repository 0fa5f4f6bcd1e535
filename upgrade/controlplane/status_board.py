"""Status reads batched per workspace: one list call answers every Deployment polled in
the same tick.

Verification polls each Deployment's status; one ``GET …/deployments/{id}`` per look is
100–200 requests/s against Astro's public API at 1,000 Deployments. The platform API's
``GET /organizations/{org}/deployments?workspaceIds=…`` answers the same ``Deployment``
objects (``DeploymentsPaginated.deployments``, astro-cli's generated client
``astro-client-v1/api.gen.go``: status, runtimeVersion, webServerAirflowApiUrl, …), so one
list call per workspace serves every look that asks within a tick.

Freshness is the point of a status read, so a listed answer is used only when it is:

* **newer than the caller says**: the list call was sent after ``newer_than`` (the end of
  the deploy being verified, then the caller's previous answer). A list sent before the
  deploy ended can show the old Deployment HEALTHY on the target (a re-deploy, or Astro
  before the rollout flips it to DEPLOYING) and must never pass a verification;
* **recent**: sent at most ``tick`` seconds before the caller asked, or after it.

Otherwise the caller waits for a new list call, made at most once per ``tick`` per
workspace (concurrent callers share the one in flight). A Deployment the list does not
have, or has without a field verification reads, is read on its own, as before (that read
also names the workspace a misplaced Deployment is in). A list the token may not make
(401/403) is not asked again: every read of that workspace goes per Deployment.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from upgrade.controlplane.deployment import DeploymentInfo
from upgrade.controlplane.platform import PlatformReader, platform_info
from upgrade.errors import AstroAuthError, PlatformError

# The fields of a listed Deployment that verification reads (the Deployment object's
# "always present" ones); an item without one is read on its own.
LISTED_FIELDS: tuple[tuple[str, ...], ...] = (
    ("status",), ("runtimeVersion", "astroRuntimeVersion"), ("airflowVersion",),
    ("webServerAirflowApiUrl",), ("workspaceId",),
)


@dataclass(frozen=True)
class Reading:
    """Astro's answer for one Deployment and when it was asked: the state it shows is
    Astro's at ``as_of`` or later (the moment the request was sent)."""

    info: DeploymentInfo
    as_of: datetime


@dataclass(frozen=True)
class _Listing:
    """One list call: when it was sent, and what it answered (or how it failed)."""

    as_of: datetime  # wall clock, comparable with a deploy's end
    sent: float  # the board's clock, for the tick
    items: Mapping[str, Mapping[str, Any]]  # Astro's Deployment objects, by id
    error: Exception | None = None


class StatusBoard:
    """One workspace's Deployments as the latest list call read them; safe to share
    between the threads that verify its Deployments."""

    def __init__(self, reader: PlatformReader, workspace_id: str, *,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.reader, self.workspace_id = reader, workspace_id
        self._clock, self._now = clock, now
        self._changed = threading.Condition()
        self._listing: _Listing | None = None
        self._listing_in_flight = False
        self._last_sent = -math.inf
        self._refused = False  # the token may not list this workspace
        self._lister: threading.Thread | None = None
        self._closed = False

    def read(self, deployment_id: str, *, newer_than: datetime, tick: float) -> Reading:
        """Deployment ``deployment_id`` as Astro reported it after ``newer_than``, from a
        list call sent within ``tick`` s of now (or per Deployment, see the module).

        Raises what ``PlatformReader.deployment`` raises; a failed list call is raised to
        every caller that waited for it.
        """
        listing = None if self._refused else self._listing_for(newer_than, tick)
        if listing is not None and listing.error is not None:
            if not isinstance(listing.error, AstroAuthError):
                # Each caller gets its own copy: one exception raised in many threads
                # would share (and garble) one traceback.
                raise copy.copy(listing.error)
            self._refused = True
            listing = None
        item = listing.items.get(deployment_id) if listing is not None else None
        if item is not None and _complete(item):
            # Only the asked one is converted: a list holds the whole workspace.
            return Reading(platform_info(item, self.reader.domain),
                           listing.as_of)  # type: ignore[union-attr]
        as_of = self._now()
        return Reading(self.reader.deployment(deployment_id, self.workspace_id), as_of)

    def close(self) -> None:
        """End the board's thread (reads after this fail: the reader is closed too)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _listing_for(self, newer_than: datetime, tick: float) -> _Listing:
        asked = self._clock()
        # Whatever is sent from now on is after the deploy, even if the wall clock was set
        # back since: without this, a clock set back would wait for a moment it passed.
        newer_than = min(newer_than, self._now())
        with self._changed:
            while True:
                got = self._listing
                if got is not None and got.as_of > newer_than and got.sent >= asked - tick:
                    return got
                if self._closed:
                    raise PlatformError("status read after the control plane was closed.")
                if self._listing_in_flight:
                    self._changed.wait()  # the call in flight may do; look again after it
                    continue
                pause = self._last_sent + tick - self._clock()
                if pause > 0:
                    # At most one list call per tick: later callers share the next one.
                    self._changed.wait(pause)
                    continue
                self._listing_in_flight = True
                self._last_sent = self._clock()
                if self._lister is None:
                    self._lister = threading.Thread(target=self._serve, daemon=True,
                                                    name=f"status-list-{self.workspace_id}")
                    self._lister.start()
                self._changed.notify_all()

    def _serve(self) -> None:
        """The board's own thread makes every list call. A list of 1,000 Deployments is
        megabytes of JSON; parsed on whichever verification thread asked, each thread's
        malloc arena kept its own copy's worth (peak RSS 121 MB against 64 MB for 30 lists
        on one thread). A daemon: a list call given up on must not hold the process."""
        while True:
            with self._changed:
                while not self._listing_in_flight and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
            self._list()
            with self._changed:
                self._listing_in_flight = False
                self._changed.notify_all()

    def _list(self) -> None:
        """One list call (paged); a failure is kept too, for every caller waiting on it."""
        as_of, sent = self._now(), self._clock()
        try:
            listing = _Listing(as_of, sent, self.reader.listed((self.workspace_id,)))
        except Exception as exc:  # handed to the callers, whatever it is
            listing = _Listing(as_of, sent, {}, exc)
        with self._changed:
            self._listing = listing


def _complete(item: Mapping[str, Any]) -> bool:
    return all(any(item.get(key) not in (None, "") for key in keys) for keys in LISTED_FIELDS)
