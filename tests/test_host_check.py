"""The host allow-list cannot be bypassed by URLs that HTTP clients parse differently.

The check reads the host with its own strict parser; Locust connects with requests/urllib3
(HttpUser) or geventhttpclient (FastHttpUser). Whatever the check accepts, every one of
those parsers must find the same host in it, or the allow-list guards the wrong host.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest
from geventhttpclient.url import URL
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from loadwise.config import ConfigError, HostNotAllowed, check_host_allowed, host_of, is_loopback

BYPASSES = [
    "http://evil.test\\@127.0.0.1",  # urllib.parse: 127.0.0.1; urllib3: evil.test
    "http://127.0.0.1:80@evil.test",  # userinfo "127.0.0.1:80", host evil.test
    "http://evil.test#@127.0.0.1",
    "http://127.0.0.1\tevil",
    "http://127.0.0.1%2f@evil",
    "http://127.0.0.1\\.evil.test",
    "http://127.0.0.1 @evil.test",
    "http://a@b@127.0.0.1",  # parsers split on the first or the last '@'
    "http://127.0.0.1\n.evil.test",
    "http://127.0.0.1\x00.evil.test",
    "http://%31%32%37.0.0.1",  # percent-encoded host
    "http://127.0.0.1%00.evil.test",
    "http://u%40127.0.0.1@evil.test",
    "http://127.0.0.1%23@evil.test",
    "http://[::1%25eth0]",  # zone id
    "http://",  # empty host
    "http://:80",
    "http://user@:80",
    "http://127.0.0.1:0",
    "http://127.0.0.1:65536",
    "http://127.0.0.1:",
    "http://127.0.0.1:8o",
    "http://127.0.0.1:-1",
    "http://x.localhost",  # *.localhost is not resolved, so not taken as loopback
    "http://localhost.",
    "http://127.1",  # inet_aton shorthand: numeric hosts must be dotted quads
    "http://0x7f.0.0.1",
    "http://2130706433",
    "http://lоcalhost",  # Cyrillic 'о': non-ASCII (IDNA) hosts are refused
    "http://127.0.0.1\u3000.evil.test",
]



@pytest.mark.parametrize("url", BYPASSES)
def test_ambiguous_or_non_loopback_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        check_host_allowed(url, [])


@pytest.mark.parametrize("url", ["http://evil.test\\@127.0.0.1", "http://127.0.0.1%2f@evil", "http://127.0.0.1\tevil"])
def test_ambiguous_url_is_refused_even_when_both_readings_are_listed(url: str) -> None:
    # Not an allow-list decision: the URL itself is refused, whatever is listed.
    with pytest.raises(ConfigError, match="can check"):
        check_host_allowed(url, ["evil.test", "evil", "127.0.0.1", "127.0.0.1evil"])


@pytest.mark.parametrize(
    "url, host",
    [
        ("http://[::1]:8080", "::1"),
        ("http://localhost:8000", "localhost"),
        ("HTTP://LocalHost:8000/path?q=1#frag", "localhost"),
        ("http://user:pw@127.0.0.1:8089/", "127.0.0.1"),
        ("http://us%2Der:p%3Aw%21@127.0.0.1", "127.0.0.1"),
        ("https://127.9.9.9/x", "127.9.9.9"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("http://127.0.0.1/a@evil.test", "127.0.0.1"),  # '@' in the path is not userinfo
        ("http://127.0.0.1?next=@evil.test", "127.0.0.1"),
        ("http://[0:0::1]", "0:0::1"),
    ],
)
def test_plain_loopback_urls_are_accepted(url: str, host: str) -> None:
    check_host_allowed(url, [])
    assert host_of(url) == host


def test_listed_hosts_still_match() -> None:
    check_host_allowed("http://x.localhost:8000", ["x.localhost"])
    check_host_allowed("https://API.example.com:443/v1", ["api.example.com"])
    check_host_allowed("http://[fd00::5]:80", ["[fd00::5]"])
    check_host_allowed("http://[fd00::5]:80", ["fd00::/8"])
    check_host_allowed("http://my_service:8080", ["my_service"])
    with pytest.raises(HostNotAllowed):
        check_host_allowed("http://evil.test", ["127.0.0.1"])


def test_localhost_subdomains_are_not_loopback() -> None:
    assert is_loopback("localhost") and is_loopback("LOCALHOST") and is_loopback("::1")
    assert not is_loopback("api.localhost")
    assert not is_loopback("localhost.")


# -- property: whatever the check accepts, every client parser reads the same host -------

def _norm(host: str | None) -> str | None:
    if host is None:
        return None
    host = host.lower().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def _client_hosts(url: str) -> dict[str, str | None]:
    full = url if "://" in url else f"http://{url}"  # as host_of reads a URL without scheme
    hosts: dict[str, str | None] = {}
    for name, parse in [
        ("urllib.parse", lambda u: urlsplit(u).hostname),
        ("urllib3", lambda u: parse_url(u).host),
        ("geventhttpclient", lambda u: URL(u).host),
    ]:
        try:
            hosts[name] = _norm(parse(full))
        except Exception as exc:  # a parser refusing a URL the check accepted is a disagreement too
            hosts[name] = f"<{type(exc).__name__}>"
    return hosts


TOKENS = [
    "127.0.0.1", "localhost", "evil.test", "[::1]", "::1", "[", "]", "@", ":", "80", "8080", "0", "65536",
    "\\", "/", "?", "#", "%2f", "%40", "%00", "%", "%2", "\t", " ", "\n", "\r", "\x00", "\x7f", ".", "a",
    "user", "pw", "x.localhost", "é", "\u3000", "\u200b", "%25eth0", "0x7f", ";", "=", "&", "'", "!", "_",
    "-", "~", "*", "+", ",", "$", "(", ")", "[fe80::1%25eth0]", "[v1.x]", "://", "http:", "127.1", "ß",
    "\uff0e", "\u2100",
]  # fmt: skip
PREFIXES = ["http://", "https://", "HTTP://", "", "ftp://", "http:/", "http:\\\\", " http://"]
URLS = st.one_of(
    st.builds(lambda p, parts: p + "".join(parts), st.sampled_from(PREFIXES), st.lists(st.sampled_from(TOKENS), max_size=8)),
    st.builds(lambda p, t: p + t, st.sampled_from(PREFIXES), st.text(max_size=20)),
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(URLS)
@example("http://evil.test\\@127.0.0.1")
@example("http://127.0.0.1:80@evil.test")
@example("http://evil.test#@127.0.0.1")
@example("http://127.0.0.1\tevil")
@example("http://127.0.0.1%2f@evil")
@example("http://[::1]:8080")
@example("http://localhost:8000")
def test_accepted_urls_have_one_host_for_every_client(url: str) -> None:
    try:
        host = host_of(url)
    except ConfigError:
        return
    hosts = _client_hosts(url)
    assert set(hosts.values()) == {_norm(host)}, (url, host, hosts)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(URLS)
def test_urls_allowed_by_default_go_to_loopback_for_every_client(url: str) -> None:
    try:
        check_host_allowed(url, [])
    except ConfigError:
        return
    for name, host in _client_hosts(url).items():
        assert host is not None and is_loopback(host), (url, name, host)
