"""Which names the server certificate carries, and which a browser's Host header may add (server/https/names.py)."""

from __future__ import annotations

from pathlib import Path

from server.https.names import MAX_LEARNT, _ipv6_addresses, learnable, local_addresses, remember, wanted_names


def test_wanted_names_host_name_first_then_mdns_base_url_addresses_learnt_and_loopback() -> None:
    names = wanted_names("Pi", ["192.168.1.20", "172.17.0.1", "8.8.8.8", "fe80::1", "fd00::2", "127.0.0.1"],
                         "http://layerwise.lan:7913", ["10.0.0.5", "nas"])
    assert names == ["pi", "pi.local", "layerwise.lan", "192.168.1.20", "172.17.0.1", "fd00::2", "127.0.0.1",
                     "10.0.0.5", "nas", "localhost", "::1"]


def test_public_and_link_local_addresses_and_bad_names_are_left_out() -> None:
    assert wanted_names("", ["8.8.8.8", "2001:db8::1", "fe80::1", "169.254.1.1"], None) == [
        "localhost", "127.0.0.1", "::1"]
    assert wanted_names("bad_name!", [], "http://x..y") == ["localhost", "127.0.0.1", "::1"]
    assert wanted_names("nas.home.arpa", [], None)[:2] == ["nas.home.arpa", "localhost"]  # no .local for a dotted name


def test_learnable_hosts_are_private_addresses_and_home_names_only() -> None:
    assert learnable("192.168.1.20:7913") == "192.168.1.20"
    assert learnable("[fd00::2]:7913") == "fd00::2"
    assert learnable("NAS:7913") == "nas"
    assert learnable("printer-pi.lan") == "printer-pi.lan"
    assert learnable("pi.local.") == "pi.local"
    for host in (None, "", "8.8.8.8", "bank.example.com:7913", "[2001:db8::1]:1", "a_b.lan", "x" * 300):
        assert learnable(host) is None, host


def test_remember_keeps_the_newest_names_without_repeats() -> None:
    names: list[str] = []
    for i in range(MAX_LEARNT + 3):
        names = remember(names, f"10.0.0.{i}")
    assert len(names) == MAX_LEARNT and names[-1] == f"10.0.0.{MAX_LEARNT + 2}" and "10.0.0.0" not in names
    assert remember(["a", "b"], "a") == ["b", "a"]


def test_local_addresses_include_loopback(tmp_path: Path) -> None:
    assert "127.0.0.1" in local_addresses()
    table = tmp_path / "if_inet6"
    table.write_text("00000000000000000000000000000001 01 80 10 80       lo\n"
                     "fd000000000000000000000000000002 02 40 00 00     eth0\n")
    assert _ipv6_addresses(table) == ["::1", "fd00::2"]
    assert _ipv6_addresses(tmp_path / "missing") == []
