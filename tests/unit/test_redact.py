"""Every form a backend URL's secret can take is hidden by the one helper."""

from __future__ import annotations

import pytest

from alsek_core.redact import redact_url, scrub

SECRET = "S3cr3tPw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}@host:6379/0", "redis://:***@host:6379/0"),
        (f"redis://user:{SECRET}@host/0", "redis://user:***@host/0"),
        (f"postgresql://u@h/db?password={SECRET}&sslmode=disable", "postgresql://u@h/db?password=***&sslmode=disable"),
        (f"postgresql://u@h/db?sslpassword={SECRET}", "postgresql://u@h/db?sslpassword=***"),
        (f"rediss://h/0?token={SECRET}&db=1", "rediss://h/0?token=***&db=1"),
        (f"redis://h/0?PWD={SECRET}", "redis://h/0?PWD=***"),
        (f"postgresql://u@h/db?oauth_client_secret={SECRET}", "postgresql://u@h/db?oauth_client_secret=***"),
        (f"redis://:{SECRET}@host:notaport/0", "redis://:***@host:notaport/0"),
        (f"redis://:{SECRET}@[::1/0", None),
        (f"redis//:{SECRET}@host", None),
        (f"redis:/:{SECRET}@host", None),
        (f"{SECRET}@host", None),
        ("sqlite:////tmp/store", "sqlite:////tmp/store"),
        ("not a url", "not a url"),
        (f"redis://:p%40{SECRET}@host/0", "redis://:***@host/0"),
    ],
)
def test_every_form_is_hidden(url: str, shown: str | None) -> None:
    redacted = redact_url(url)
    assert SECRET not in redacted
    if shown is not None:
        assert redacted == shown
    else:
        assert "unparsable URL" in redacted


def test_scrub_removes_secrets_a_driver_quoted() -> None:
    url = f"postgresql://u:{SECRET}@h/db?password=other%20one"
    text = f"could not connect with password {SECRET} or 'other one'"
    assert scrub(text, url) == "could not connect with password *** or '***'"
