"""``[server] database_url`` / ``LAYERWISE_DATABASE_URL``: PostgreSQL instead of SQLite, its password never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.check import summary
from server.config import ConfigError, load_settings
from server.logs import redact

PASSWORD = "pa55-W0rd-for-pg"
URL = f"postgresql+psycopg://layerwise:{PASSWORD}@db.lan:5432/layerwise"


def test_unset_means_sqlite() -> None:
    settings = load_settings(None, env={"LAYERWISE_DATA_DIR": "/tmp/lw"})
    assert settings.server.database_url_text() is None
    assert "PostgreSQL" not in summary(settings).detail


@pytest.mark.parametrize("given", [URL, URL.replace("postgresql+psycopg", "postgresql"),
                                   URL.replace("postgresql+psycopg", "postgres")])
def test_from_environment_file_or_toml_normalised_and_never_shown(
        tmp_path: Path, given: str) -> None:
    secret = tmp_path / "database_url"
    secret.write_text(given + "\n")
    toml = tmp_path / "layerwise.toml"
    toml.write_text(f'[server]\ndatabase_url = "{given}"\n')
    every = (load_settings(None, env={"LAYERWISE_DATABASE_URL": given}),
             load_settings(None, env={"LAYERWISE_DATABASE_URL_FILE": str(secret)}),
             load_settings(toml, env={}))
    for settings in every:
        assert settings.server.database_url_text() == URL
        line = summary(settings).line()
        assert "PostgreSQL postgresql+psycopg://layerwise:***@db.lan:5432/layerwise" in line
        for text in (repr(settings), str(settings), settings.model_dump_json(), line):
            assert PASSWORD not in text
    assert PASSWORD not in redact(f"connecting with {URL}")  # registered with the log redaction as well


@pytest.mark.parametrize("given", [f"mysql://root:{PASSWORD}@db/layerwise", f"sqlite:///{PASSWORD}.db", 42])
def test_other_databases_are_refused_without_quoting_the_url(given: object) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={"LAYERWISE_DATABASE_URL": str(given)})
    text = "\n".join(caught.value.problems)
    assert "LAYERWISE_DATABASE_URL" in text
    assert PASSWORD not in text


def test_check_names_notifications_and_postgresql_together() -> None:
    # Both lines mask a URL, with two different masked_url functions: neither may shadow the other.
    settings = load_settings(None, env={"LAYERWISE_DATABASE_URL": URL,
                                        "LAYERWISE_NOTIFICATIONS_URLS": "ntfy://ntfy.sh/secret-topic"})
    line = summary(settings).line()
    assert "notifications to ntfy://" in line and "PostgreSQL postgresql+psycopg://layerwise:***@db.lan" in line
    assert PASSWORD not in line and "secret-topic" not in line
