"""``[notifications]`` and ``[home_assistant]``: TOML and environment, secrets masked everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import logs
from server.check import summary
from server.config import ConfigError, load_settings

TOKEN = "tk_9f8e7d6c5b4a"


def test_toml_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "layerwise.toml"
    config.write_text(f'''
[notifications]
urls = ["ntfy://ntfy.sh/{TOKEN}"]
events = ["runout", "job_failed"]
printer_events = {{ "X1C" = ["job_finished"] }}
low_stock_g = 150

[home_assistant]
mqtt_url = "mqtts://broker.lan"
username = "layerwise"
password = "pa55word"
''')
    settings = load_settings(config, env={"LAYERWISE_NOTIFICATIONS_RUNOUT_WITHIN_LAYERS": "5",
                                          "LAYERWISE_HOME_ASSISTANT_TOPIC_PREFIX": "lw/home"})
    notifications = settings.notifications
    assert [u.get_secret_value() for u in notifications.urls] == [f"ntfy://ntfy.sh/{TOKEN}"]
    assert (notifications.events, notifications.low_stock_g, notifications.runout_within_layers) == (
        ("runout", "job_failed"), 150.0, 5)
    assert notifications.wants("job_finished", "X1C") and not notifications.wants("job_finished", "P1S")
    assert settings.home_assistant.broker() == ("broker.lan", 8883, True, "layerwise", "pa55word")
    assert settings.home_assistant.topic_prefix == "lw/home"
    line = summary(settings).line()
    assert "notifications to ntfy://…" in line and "Home Assistant via mqtts://broker.lan:8883" in line
    assert TOKEN not in line and "pa55word" not in line
    assert TOKEN not in repr(settings) and "pa55word" not in repr(settings)
    assert TOKEN not in logs.redact(f"sending to ntfy://ntfy.sh/{TOKEN}")


def test_secret_files(tmp_path: Path) -> None:
    (tmp_path / "urls").write_text(f"json://127.0.0.1:9/a\ntgram://{TOKEN}/42\n")
    (tmp_path / "password").write_text("s3cret\n")
    settings = load_settings(env={"LAYERWISE_NOTIFICATIONS_URLS_FILE": str(tmp_path / "urls"),
                                  "LAYERWISE_HOME_ASSISTANT_MQTT_URL": "mqtt://u:inurl@broker:1884",
                                  "LAYERWISE_HOME_ASSISTANT_PASSWORD_FILE": str(tmp_path / "password")})
    assert len(settings.notifications.urls) == 2
    assert settings.home_assistant.broker() == ("broker", 1884, False, "u", "s3cret")
    assert settings.home_assistant.shown_url() == "mqtt://broker:1884"


def test_problems_name_the_key_and_never_quote_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"LAYERWISE_NOTIFICATIONS_URLS": f"not-a-url-{TOKEN}",
                           "LAYERWISE_NOTIFICATIONS_EVENTS": "runout,jobdone",
                           "LAYERWISE_HOME_ASSISTANT_MQTT_URL": "http://u:pw@broker",
                           "LAYERWISE_NOTIFICATIONS_LOW_STOCK_G": "-1"})
    text = "\n".join(caught.value.problems)
    assert "LAYERWISE_NOTIFICATIONS_URLS: element 1" in text
    assert "LAYERWISE_NOTIFICATIONS_EVENTS: has 'jobdone'" in text
    assert "LAYERWISE_HOME_ASSISTANT_MQTT_URL: http://… is not an mqtt:// or mqtts:// URL" in text
    assert "LAYERWISE_NOTIFICATIONS_LOW_STOCK_G: is -1.0" in text
    assert TOKEN not in text and "pw@" not in text
