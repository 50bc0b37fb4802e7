"""Which Host the web app answers to (DNS rebinding): pure rules, and the setting that extends them."""

from __future__ import annotations

import pytest

from server.config import ConfigError, ServerConfig, load_settings
from server.web.hosts import allowed_hosts, host_name, host_problem

SERVER = ServerConfig(base_url="https://printers.example.net/layerwise",
                      allowed_hosts=("layerwise.lan", "10.9.0.0/16", "fd00::7"))
ALLOWED = allowed_hosts(SERVER, "workshop-pi", ["192.168.1.20", "fe80::1%eth0"])
LOCAL = "192.168.1.20"  # the address the connection arrived on


@pytest.mark.parametrize("header", [
    "localhost", "localhost:7913", "LOCALHOST.", "127.0.0.1:7913", "127.8.9.10", "[::1]:7913",
    "workshop-pi", "workshop-pi.local:7913", "Workshop-Pi.Local", "printers.example.net",
    "layerwise.lan:443", "10.9.200.1", "[fd00::7]", "192.168.1.20:7913", "[fe80::1]:7913",
    "[::ffff:127.0.0.1]:7913",
])
def test_the_machines_own_names_and_addresses_pass(header: str) -> None:
    assert host_problem(header, ALLOWED, LOCAL) is None


@pytest.mark.parametrize("header", [
    "evil.example", "evil.example:7913", "workshop-pi.evil.example", "localhost.evil.example",
    "printers.example.net.evil", "layerwise.lan.attacker.tld", "8.8.8.8", "[2001:4860::8888]",
])
def test_rebinding_names_and_public_addresses_are_refused(header: str) -> None:
    problem = host_problem(header, ALLOWED, LOCAL)
    assert problem is not None and "allowed_hosts" in problem


def test_the_address_a_connection_arrived_on_passes_without_configuration() -> None:
    bare = allowed_hosts(ServerConfig(), "pi", [])
    assert host_problem("172.17.0.5:7913", bare, "172.17.0.5") is None
    assert host_problem("8.8.4.4:7913", bare, "8.8.4.4") is None
    assert host_problem("8.8.8.8:7913", bare, "8.8.4.4") is not None


@pytest.mark.parametrize("header", ["192.168.1.21", "10.10.0.1", "[fd00::8]", "172.17.0.6:7913", "printer-pi",
                                    "printer-pi.lan", "nas.home.arpa", "pi.fritz.box"])
def test_private_addresses_and_home_names_pass(header: str) -> None:
    """No outside site can re-point these: a rebinding needs a public name (Docker: the phone's address for
    the host is not the container's, so any private address passes)."""
    assert host_problem(header, allowed_hosts(ServerConfig(), "pi", []), "172.17.0.5") is None


@pytest.mark.parametrize("header", [None, "", "a b", "user@evil.example", "evil.example/x", "host:port", "[::1"])
def test_a_missing_or_malformed_host_is_refused(header: str | None) -> None:
    assert host_name(header) is None
    assert host_problem(header, ALLOWED, LOCAL) == "Layerwise needs a valid Host header."


def test_allowed_hosts_setting_from_toml_and_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = load_settings(None, env={"LAYERWISE_ALLOWED_HOSTS": "Layerwise.LAN., 192.168.1.0/24 [fd00::1]"})
    assert env.server.allowed_hosts == ("layerwise.lan", "192.168.1.0/24", "fd00::1")
    toml = tmp_path / "layerwise.toml"
    toml.write_text('[server]\nallowed_hosts = ["a.lan", "10.0.0.1"]\n')
    assert load_settings(toml, env={}).server.allowed_hosts == ("a.lan", "10.0.0.1")
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={"LAYERWISE_ALLOWED_HOSTS": "good.lan,http://bad/"})
    assert "LAYERWISE_ALLOWED_HOSTS: 'http://bad/' is neither a host name, an IP address nor a network" in str(
        caught.value)
