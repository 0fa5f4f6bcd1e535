"""The one redaction rule (upgrade.model.redact), as a unit."""

from __future__ import annotations

import pytest

from upgrade.model.redact import REDACTED, Redactor, is_secret_name, redact


@pytest.mark.parametrize(
    "name",
    ["ASTRO_API_TOKEN", "GITHUB_TOKEN", "client_secret", "DB_PASSWORD", "PGPASSWORD",
     "SMTP_PASSWD", "AWS_SECRET_ACCESS_KEY", "SSH_KEY", "ASTRONOMER_KEY_ID", "OPENAI_API_KEY",
     "GOOGLE_APPLICATION_CREDENTIALS"],
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "ASTRO_DOMAIN", "KEYBOARD", "MODE", "USER"])
def test_ordinary_names(name):
    assert not is_secret_name(name)


def test_values_of_secret_names_are_replaced_short_ones_kept():
    env = {"GITHUB_TOKEN": "ghp_long_value", "SSH_KEY": "k", "PATH": "/usr/bin",
           "client_secret": "lowercase-name-too", "EMPTY_PASSWORD": ""}
    redact_env = Redactor.from_env(env)
    assert redact_env("ghp_long_value k /usr/bin lowercase-name-too") == "*** k /usr/bin ***"


def test_the_longest_secret_goes_first_so_no_tail_leaks():
    assert Redactor(["abcdef", "abcdef-ghi"])("abcdef-ghi") == REDACTED
    env = {"A_TOKEN": "abcdef", "B_TOKEN": "abcdef-ghi"}
    assert Redactor.from_env(env)("x abcdef-ghi y") == "x *** y"


def test_url_passwords_jwts_and_scheme_credentials():
    text = ("fatal: unable to access 'https://ci-bot:ghp_abc123@github.com/org/repo.git/' "
            "Authorization: Bearer abc.def-ghi Basic dXNlcjpwYXNz "
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")
    out = Redactor()(text)
    assert "https://ci-bot:***@github.com/org/repo.git/" in out
    assert "Bearer ***" in out and "Basic ***" in out
    assert "eyJ" not in out and "ghp_abc123" not in out


def test_named_values_and_more_secrets():
    redactor = Redactor.from_env({"MY_WEBHOOK": "https://hooks.example/T0/B0/XyZ"},
                                 names=["MY_WEBHOOK"]).also("hunter22")
    assert redactor("post to https://hooks.example/T0/B0/XyZ with hunter22") == (
        "post to *** with ***")


def test_redact_reads_this_process_environment(monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", "tok-0123456789")
    assert redact("token tok-0123456789") == "token ***"
    assert redact("x s3cr3t-v", {"OTHER_PASSWORD": "s3cr3t-v"}) == "x ***"
