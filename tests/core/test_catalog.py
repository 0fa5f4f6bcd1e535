"""The release catalog: the bundled snapshot, feeds from files and URLs, resolution."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from upgrade.errors import CatalogError, NothingToResolve, UnknownVersion
from upgrade.model.catalog import Catalog, load_catalog, load_feed, load_snapshot
from upgrade.model.versions import parse_version

TODAY = date(2026, 11, 25)


def feed_doc(**v3: dict) -> dict:
    return {
        "version": "test",
        "runtimeVersions": {
            "12.4.0": {
                "metadata": {
                    "airflowVersion": "2.10.3",
                    "channel": "stable",
                    "releaseDate": "2024-11-20",
                }
            },
            "12.4.1": {
                "metadata": {
                    "airflowVersion": "2.10.3+astro.2",
                    "channel": "stable",
                    "releaseDate": "2024-12-02",
                    "endOfMaintenance": "2026-12-31",
                },
                "migrations": {"airflowDatabase": False},
            },
            "12.4.2": {
                "metadata": {
                    "airflowVersion": "2.10.4",
                    "channel": "stable",
                    "yanked": True,
                    "yankedReason": "broken scheduler",
                }
            },
            "12.5.0-alpha1": {"metadata": {"airflowVersion": "2.10.4", "channel": "alpha"}},
        },
        "runtimeVersionsV3": {
            "3.1-12": {
                "metadata": {
                    "airflowVersion": "3.1.7",
                    "channel": "stable",
                    "defaultPythonVersion": "3.12",
                }
            },
            "3.1-13": {"metadata": {"airflowVersion": "3.1.7", "channel": "beta"}},
            **v3,
        },
    }


@pytest.fixture
def feed_file(tmp_path: Path) -> Path:
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(feed_doc()))
    return path


class _FeedHandler(BaseHTTPRequestHandler):
    body = b""
    hang = False  # answer only when the test ends
    release = threading.Event()
    status = 200

    def do_GET(self) -> None:
        if self.hang:
            self.release.wait(600)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[type[_FeedHandler]]:
    handler = type("H", (_FeedHandler,), {"body": json.dumps(feed_doc()).encode(),
                                          "release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/astronomer-runtime"
    yield handler
    handler.release.set()
    server.shutdown()
    server.server_close()


def test_snapshot_carries_the_reference_facts() -> None:
    catalog = load_snapshot()
    assert len(catalog) == 183
    assert sum(r.observed_only for r in catalog) == 57
    r = catalog.get(parse_version("11.8.0"))
    assert r is not None
    assert (r.airflow, r.python, r.released, r.end_of_maintenance) == (
        "2.9.3",
        "3.11",
        date(2024, 8, 9),
        date(2025, 10, 31),
    )
    assert r.lts is True
    yanked = catalog.get(parse_version("9.0.0"))
    assert (
        yanked is not None
        and yanked.yanked is True
        and "scheduling" in (yanked.yanked_reason or "")
    )
    # Unknown stays unknown: an observed-only tag has no invented release data.
    seen = catalog.get(parse_version("12.4.0"))
    assert seen is not None and seen.observed_only
    assert (seen.released, seen.end_of_maintenance, seen.yanked, seen.channel) == (
        None,
        None,
        None,
        None,
    )
    assert seen.airflow == "2.10.*"


def test_snapshot_is_newest_first() -> None:
    versions = [r.version for r in load_snapshot()]
    assert versions == sorted(versions, reverse=True)
    assert str(versions[0]) == "3.3-8"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("12.4", "12.4.0"),
        ("12", "12.12.0"),
        ("3.1", "3.1-17"),
        ("latest", "3.3-8"),
        ("13", "13.9.0"),
        ("3.0", "3.0-14"),
        ("12.4.x", "12.4.0"),
        ("11.8.0", "11.8.0"),
    ],
)
def test_resolve_snapshot(spec: str, expected: str) -> None:
    assert str(load_snapshot().resolve(spec).version) == expected


def test_resolving_a_line_never_returns_deprecated_or_yanked() -> None:
    with pytest.raises(NothingToResolve, match="'9' resolves to nothing"):
        load_snapshot().resolve("9")


def test_exact_yanked_is_returned_with_a_warning() -> None:
    resolution = load_snapshot().resolve("9.0.0")
    assert str(resolution.version) == "9.0.0"
    assert any("yanked" in w for w in resolution.warnings)


def test_unknown_exact_version_is_a_policy_refusal() -> None:
    with pytest.raises(UnknownVersion, match="12.4.7 is not a known Astro Runtime release") as err:
        load_snapshot().resolve("12.4.7")
    assert err.value.exit_code == 3


def test_feed_from_file_resolves_newest_stable_non_yanked(feed_file: Path) -> None:
    catalog = load_feed(str(feed_file))
    assert str(catalog.resolve("12.4").version) == "12.4.1"  # 12.4.2 is yanked
    assert str(catalog.resolve("3.1").version) == "3.1-12"  # 3.1-13 is beta
    assert str(catalog.resolve("12").version) == "12.4.1"  # alpha never resolved
    r = catalog.get(parse_version("12.4.1"))
    assert r is not None and r.airflow == "2.10.3"  # +astro.N stripped
    assert r.end_of_maintenance == date(2026, 12, 31) and r.migrates_db is False
    assert catalog.get(parse_version("3.1-12")).python == "3.12"  # type: ignore[union-attr]


def test_feed_extends_or_replaces_the_snapshot(feed_file: Path) -> None:
    extended = load_catalog(str(feed_file))
    assert extended.get(parse_version("11.8.0")) is not None
    assert extended.get(parse_version("12.4.1")).origin == "feed"  # type: ignore[union-attr]
    assert str(extended.resolve("12.4").version) == "12.4.1"
    replaced = load_catalog(str(feed_file), mode="replace")
    assert replaced.get(parse_version("11.8.0")) is None
    assert len(replaced) == 6


def test_feed_over_http(feed_server: type[_FeedHandler]) -> None:
    catalog = load_feed(feed_server.url)  # type: ignore[attr-defined]
    assert str(catalog.resolve("12.4").version) == "12.4.1"


def test_feed_timeout_names_the_url(feed_server: type[_FeedHandler]) -> None:
    feed_server.hang = True
    with pytest.raises(
        CatalogError,
        match=r"feed http://127\.0\.0\.1:\d+/astronomer-runtime: no answer within 0\.3 s",
    ):
        load_feed(feed_server.url, timeout=0.3)  # type: ignore[attr-defined]


def test_feed_http_error_names_the_url(feed_server: type[_FeedHandler]) -> None:
    feed_server.status = 503
    with pytest.raises(CatalogError, match="HTTP 503"):
        load_feed(feed_server.url)  # type: ignore[attr-defined]


def test_unreachable_feed_names_the_url() -> None:
    with pytest.raises(CatalogError, match=r"feed http://127\.0\.0\.1:9/x: cannot be reached"):
        load_feed("http://127.0.0.1:9/x", timeout=1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ("[]", "expected a JSON object with 'runtimeVersions'"),
        (
            '{"runtimeVersions": {"12.x": {"metadata": {}}}}',
            "'12.x' is not an exact Astro Runtime version",
        ),
        ('{"runtimeVersions": {"12.4.0": {}}}', "each entry needs a 'metadata' object"),
        (
            '{"runtimeVersions": {"12.4.0": {"metadata": {"releaseDate": "soon"}}}}',
            "'soon' is not a date",
        ),
    ],
)
def test_malformed_feed_names_the_file_and_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "feed.json"
    path.write_text(content)
    with pytest.raises(CatalogError) as err:
        load_feed(str(path))
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_feed_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="file not found"):
        load_feed(str(tmp_path / "nope.json"))


def test_newest_in_line_skips_yanked(feed_file: Path) -> None:
    catalog: Catalog = load_feed(str(feed_file))
    newest = catalog.newest_in_line(parse_version("12.4.0"))
    assert newest is not None and str(newest.version) == "12.4.1"


def test_status_words() -> None:
    catalog = load_snapshot()
    assert catalog.get(parse_version("9.0.0")).status(TODAY) == "yanked"  # type: ignore[union-attr]
    assert catalog.get(parse_version("11.8.0")).status(TODAY) == "deprecated"  # type: ignore[union-attr]
    assert catalog.get(parse_version("12.4.0")).status(TODAY) == "observed"  # type: ignore[union-attr]
    assert catalog.get(parse_version("12.0.0")).status(TODAY) == "stable"  # type: ignore[union-attr]


def test_image_for_a_variant() -> None:
    r = load_snapshot().get(parse_version("3.1-12"))
    assert r is not None
    assert (
        r.image(["python-3.12", "base"])
        == "astrocrpublic.azurecr.io/runtime:3.1-12-python-3.12-base"
    )
