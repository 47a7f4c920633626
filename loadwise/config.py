"""`loadwise.toml`: profiles (dev, staging, prod ...) and the host allow-list.

Load goes only to hosts the profile allows. Loopback (127.0.0.0/8, ::1, localhost) is
allowed by default; anything else must be listed in the profile's `allowed_hosts`
(host names, IP addresses or CIDR networks). Host names are never resolved to decide.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadwise.durations import parse_duration
from loadwise.errors import LoadwiseError

DEFAULT_CONFIG = Path("loadwise.toml")
TOP_LEVEL_KEYS = ("default_profile", "profiles")
PROFILE_KEYS = ("host", "allowed_hosts", "slos", "thresholds", "abort_on", "prometheus", "kubernetes", "scrape_urls",
                "exporter_port", "db_dsn_env", "scenario")  # fmt: skip
KUBERNETES_KEYS = ("namespace", "deployment")
PROMETHEUS_KEYS = ("url", "job", "rate_window", "timeout", "settle", "bearer_token_env", "basic_auth_user_env",
                   "basic_auth_password_env", "queries")  # fmt: skip


@dataclass
class KubernetesTarget:
    namespace: str
    deployment: str


@dataclass
class PrometheusSettings:
    """`[profiles.NAME.prometheus]` in loadwise.toml; `--prometheus URL` sets `url`."""

    url: str
    job: str | None = None
    rate_window: str = "30s"
    timeout_s: float = 10.0
    settle_s: float = 5.0  # wait after the run so Prometheus has scraped its last seconds
    bearer_token_env: str | None = None
    basic_auth_user_env: str | None = None
    basic_auth_password_env: str | None = None
    queries: dict[str, str] = field(default_factory=dict)  # extra or overriding named PromQL
    kubernetes: KubernetesTarget | None = None

class ConfigError(LoadwiseError, ValueError):
    """Missing or malformed configuration; the message names the bad input."""


class HostNotAllowed(ConfigError):
    pass


@dataclass
class Profile:
    name: str = "default"
    host: str | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # keys later features read (slos, prometheus ...)


def load_profile(name: str | None, path: Path | None = None) -> Profile:
    """The named profile from `path` (default ./loadwise.toml); no name and no file: defaults."""
    config_path = path or DEFAULT_CONFIG
    if not config_path.exists():
        if path is not None or name is not None:
            raise ConfigError(f"{config_path}: no such file (profiles live in loadwise.toml)")
        return Profile()
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: malformed TOML ({exc})") from exc
    _check_keys(data, TOP_LEVEL_KEYS, f"{config_path}: top-level key")
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{config_path}: [profiles] must be a table")
    name = name or data.get("default_profile")
    if name is None:
        return Profile()
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"{config_path}: no profile {name!r} (profiles: {known})")
    if not isinstance(profiles[name], dict):
        raise ConfigError(f"{config_path}: profiles.{name} must be a table")
    raw = dict(profiles[name])
    _validate_profile(raw, f"{config_path}: profiles.{name}")
    allowed = raw.pop("allowed_hosts", [])
    if not isinstance(allowed, list) or not all(isinstance(h, str) for h in allowed):
        raise ConfigError(f"{config_path}: profiles.{name}.allowed_hosts must be a list of strings")
    host = raw.pop("host", None)
    return Profile(name=name, host=host, allowed_hosts=allowed, settings=raw)


def _check_keys(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    """An unknown key is a mistake (a typo silently ignored would change a run): name it and the nearest known key."""
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean {near[0]!r}?" if near else f"known keys: {', '.join(known)}"
            raise ConfigError(f"{where}: unknown key {key!r}: {hint}")


_STR_LIST = "a list of strings"
_PROFILE_TYPES: dict[str, tuple[type, str]] = {
    "host": (str, "a URL string"), "allowed_hosts": (list, _STR_LIST), "slos": (list, _STR_LIST),
    "thresholds": (list, _STR_LIST), "abort_on": (list, _STR_LIST), "scrape_urls": (list, _STR_LIST), "prometheus": (dict, "a table"),
    "kubernetes": (dict, "a table"), "exporter_port": (int, "a TCP port number"), "db_dsn_env": (str, "an environment variable name"),
    "scenario": (list, "a list of [[profiles.NAME.scenario]] tables"),
}  # fmt: skip
_PROMETHEUS_STRINGS = ("url", "job", "rate_window", "timeout", "settle", "bearer_token_env", "basic_auth_user_env",
                       "basic_auth_password_env")  # fmt: skip


def _validate_profile(raw: dict[str, Any], where: str) -> None:
    """Every key and type of a profile, before any load starts: one error naming the key."""
    from loadwise.analysis.thresholds import ThresholdError
    from loadwise.analysis.thresholds import parse as parse_threshold
    from loadwise.analysis.thresholds import parse_abort

    _check_keys(raw, PROFILE_KEYS, where)
    for key, value in raw.items():
        kind, what = _PROFILE_TYPES[key]
        items = dict if key == "scenario" else str
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is list and not all(isinstance(v, items) for v in value)):
            raise ConfigError(f"{where}.{key} must be {what} (got {value!r})")
    if "exporter_port" in raw and not 0 < raw["exporter_port"] < 65536:
        raise ConfigError(f"{where}.exporter_port {raw['exporter_port']} is not a TCP port")
    for key in ("slos", "thresholds"):
        for text in raw.get(key, []):
            try:
                parse_threshold(text)
            except ThresholdError as exc:  # it names the position of the mistake
                raise ConfigError(f"{where}.{key}: {exc}") from None
    for text in raw.get("abort_on", []):
        try:
            parse_abort(text)
        except ThresholdError as exc:
            raise ConfigError(f"{where}.abort_on: {exc}") from None
    if "scenario" in raw:
        profile_scenarios(raw["scenario"], where)
    kube = raw.get("kubernetes", {})
    _check_keys(kube, KUBERNETES_KEYS, f"{where}.kubernetes")
    for key in KUBERNETES_KEYS:
        if kube and not isinstance(kube.get(key), str):
            raise ConfigError(f"{where}.kubernetes.{key} must be a string (both namespace and deployment are needed)")
    prom = raw.get("prometheus", {})
    _check_keys(prom, PROMETHEUS_KEYS, f"{where}.prometheus")
    for key in _PROMETHEUS_STRINGS:
        if key in prom and not isinstance(prom[key], str):
            raise ConfigError(f"{where}.prometheus.{key} must be a string (got {prom[key]!r})")
    for key in ("timeout", "settle"):
        if key in prom:
            try:
                parse_duration(prom[key])
            except ValueError as exc:
                raise ConfigError(f"{where}.prometheus.{key}: {exc}") from None
    queries = prom.get("queries", {})
    if not isinstance(queries, dict) or not all(isinstance(v, str) for v in queries.values()):
        raise ConfigError(f"{where}.prometheus.queries must be a table of name = \"PromQL\"")


_PROMQL_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _table(profile: Profile, key: str) -> dict[str, Any]:
    value = profile.settings.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"profiles.{profile.name}.{key} must be a table")
    return value


def prometheus_settings(profile: Profile, url: str | None = None) -> PrometheusSettings | None:
    """`[profiles.NAME.prometheus]`, with `url` (from --prometheus) taking precedence."""
    table = dict(_table(profile, "prometheus"))
    url = url or table.pop("url", None)
    table.pop("url", None)
    if not url:
        return None
    where = f"profiles.{profile.name}.prometheus"
    _check_keys(table, PROMETHEUS_KEYS, where)
    window = str(table.get("rate_window", "30s"))
    if not _PROMQL_DURATION.match(window):
        raise ConfigError(f"{where}.rate_window {window!r} is not a PromQL duration (e.g. 30s, 1m)")
    queries = table.get("queries", {})
    if not isinstance(queries, dict) or not all(isinstance(v, str) for v in queries.values()):
        raise ConfigError(f"{where}.queries must be a table of name = \"PromQL\"")
    kube = _table(profile, "kubernetes")
    try:
        return PrometheusSettings(
            url=url,
            job=table.get("job"),
            rate_window=window,
            timeout_s=parse_duration(str(table.get("timeout", "10s"))),
            settle_s=parse_duration(str(table.get("settle", "5s"))),
            bearer_token_env=table.get("bearer_token_env"),
            basic_auth_user_env=table.get("basic_auth_user_env"),
            basic_auth_password_env=table.get("basic_auth_password_env"),
            queries=dict(queries),
            kubernetes=KubernetesTarget(kube["namespace"], kube["deployment"]) if kube else None,
        )
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def scrape_urls(profile: Profile) -> list[str]:
    urls = profile.settings.get("scrape_urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"profiles.{profile.name}.scrape_urls must be a list of URLs")
    return urls


def profile_scenarios(tables: Any, where: str) -> list[Any]:
    """A profile's `[[profiles.NAME.scenario]]` tables as loadwise.scenarios.plan.Scenario (ConfigError naming the key)."""
    from loadwise.scenarios.plan import ScenarioPlanError, from_tables

    try:
        return from_tables(tables, f"{where}.scenario")
    except ScenarioPlanError as exc:
        raise ConfigError(str(exc)) from None


def scenarios_of(profile: Profile) -> list[Any]:
    """The profile's scenarios (none: a run of one)."""
    tables = profile.settings.get("scenario")
    return profile_scenarios(tables, f"profiles.{profile.name}") if tables else []


def abort_texts(profile: Profile) -> list[str]:
    """The profile's `abort_on`: thresholds that stop a failing run (checked when the profile was read)."""
    return list(profile.settings.get("abort_on", []))


def threshold_texts(profile: Profile) -> list[str]:
    """The profile's `slos` and `thresholds`, both lists of threshold expressions."""
    texts: list[str] = []
    for key in ("slos", "thresholds"):
        value = profile.settings.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"profiles.{profile.name}.{key} must be a list of expressions such as \"p95<300ms\"")
        texts += value
    return texts


# The host allow-list is only as good as its parser: if loadwise reads one host out of a URL
# and the HTTP client Locust uses (requests/urllib3 for HttpUser, geventhttpclient for
# FastHttpUser) reads another, the check guards the wrong host. So a URL is accepted only
# when it fits a strict subset of RFC 3986 on which every one of those parsers agrees;
# anything they could read differently is refused rather than interpreted.
_SCHEME_RE = re.compile(r"(?P<scheme>https?)://", re.IGNORECASE)
# userinfo: unreserved, sub-delims, ':' and percent-encoded octets only. No '@' (the
# parsers split on the first or the last one), no '\', '[', ']' or '%' outside an escape.
_USERINFO_RE = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*")
# reg-name restricted to letters, digits, '-', '_' and '.': no percent-encoding (decoded by
# some clients, not by others) and no IDNA (encoded differently by each).
# A client or proxy that decodes userinfo before re-parsing would turn these escapes back
# into the delimiters (or controls) they hide: "127.0.0.1%2f@evil" would become a host of
# 127.0.0.1 with path "/@evil". ':' (%3A) only moves the user/password split, so it stays.
_DELIMITER_ESCAPE_RE = re.compile(r"%(?:[01][0-9a-f]|2[03f]|3f|40|5[b-d]|7f)", re.IGNORECASE)
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
_PORT_RE = re.compile(r"[1-9][0-9]{0,4}")
_NUMERIC_LABEL_RE = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)")


def _refuse(url: str, why: str) -> ConfigError:
    return ConfigError(f"{url!r} is not an http(s) URL loadwise can check: {why}")


def _split_host_port(url: str, hostport: str) -> str:
    """The host of `host[:port]` (IPv6 without brackets, lowercase), validated strictly."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _refuse(url, "unclosed '[' in the host")
        host, rest = hostport[1:end], hostport[end + 1 :]
        try:
            # IPv6 only, and no zone id ("%25eth0"): clients disagree on zones and on IPvFuture.
            valid = "%" not in host and bool(ipaddress.IPv6Address(host))
        except ValueError:
            valid = False
        if not valid:
            raise _refuse(url, "the bracketed host is not an IPv6 address")
    else:
        host, sep, port = hostport.partition(":")
        rest = sep + port
        if not host:
            raise _refuse(url, "the host is empty")
        if not _HOSTNAME_RE.fullmatch(host):
            raise _refuse(url, "the host may hold only letters, digits, '-', '_' and '.'")
        # A last label that is a number makes the name an IPv4 address to browsers and to
        # inet_aton ("127.1", "0x7f.0.0.1", "2130706433"); accept only the dotted-quad form.
        last = host.rstrip(".").rsplit(".", 1)[-1]
        if _NUMERIC_LABEL_RE.fullmatch(last):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise _refuse(url, "a numeric host must be a dotted-quad IPv4 address") from None
    if rest:
        if not (rest.startswith(":") and _PORT_RE.fullmatch(rest[1:]) and int(rest[1:]) <= 65535):
            raise _refuse(url, "the port must be a number from 1 to 65535")
    return host.lower()


def host_of(url: str) -> str:
    """The host `url` connects to (lowercase; IPv6 without brackets), or ConfigError.

    A URL without a scheme is read as http. Refused, because HTTP clients could read a
    different host out of it than this function does: control characters, whitespace,
    backslashes or non-ASCII anywhere; a scheme other than http/https; userinfo with any
    character outside unreserved/sub-delims/':'/percent escapes (so a second '@' as well),
    or escaping a delimiter, control or space (so a password cannot hold '@' or '/');
    percent-encoding or IDNA in the host; an empty host; a bracketed host that is not a
    plain IPv6 address; a numeric host that is not a dotted-quad IPv4 address; a port that
    is empty or not 1-65535.
    """
    for ch in url:
        if not (" " < ch < "\x7f"):  # controls, whitespace, DEL and all non-ASCII
            raise _refuse(url, f"it contains the character {ch!r}")
    if "\\" in url:  # WHATWG parsers read '\' as '/', urllib.parse does not
        raise _refuse(url, "it contains a backslash")
    full = url if "://" in url else f"http://{url}"
    scheme = _SCHEME_RE.match(full)
    if not scheme:
        raise ConfigError(f"{url!r} is not an http(s) URL")
    rest = full[scheme.end() :]
    # The authority ends at the first '/', '?' or '#', for every parser alike.
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, hostport = authority.rpartition("@")
    if at and not _USERINFO_RE.fullmatch(userinfo):
        raise _refuse(url, "the user information holds characters HTTP clients read differently")
    if at and _DELIMITER_ESCAPE_RE.search(userinfo):
        raise _refuse(url, "the user information percent-encodes a delimiter, a control or a space")
    host = _split_host_port(url, hostport)
    # Belt and braces: the standard library must read the same host, or we refuse.
    try:
        if (urlsplit(full).hostname or "").lower() != host:
            raise _refuse(url, "parsers disagree on its host")
    except ValueError as exc:
        raise _refuse(url, str(exc)) from None
    return host


def is_loopback(hostname: str) -> bool:
    """True for `localhost` and loopback IP addresses (127.0.0.0/8, ::1).

    Names under `.localhost` (`api.localhost`) are not loopback here: RFC 6761 says they
    should resolve to loopback, but host names are never resolved to decide and a machine's
    /etc/hosts or resolver can send them anywhere; list them in allowed_hosts to use them.
    """
    if hostname.lower() == "localhost":  # not "localhost.": an absolute name goes to DNS
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def check_host_allowed(url: str, allowed_hosts: list[str]) -> None:
    """Raise HostNotAllowed unless `url`'s host is loopback or listed; ConfigError when the
    URL is one HTTP clients could read a different host out of (see `host_of`).

    Loopback means `localhost` itself and loopback IP addresses; `x.localhost` must be
    listed (see `is_loopback`). Entries match a host name case-insensitively, or an IP
    address by address or CIDR network.
    """
    hostname = host_of(url)
    if is_loopback(hostname):
        return
    for entry in allowed_hosts:
        if entry.strip().lower().strip("[]") == hostname:
            return
        try:
            if ipaddress.ip_address(hostname) in ipaddress.ip_network(entry.strip(), strict=False):
                return
        except ValueError:
            continue
    raise HostNotAllowed(
        f"host {hostname!r} is not allowed: only loopback is allowed by default; "
        "list it in the profile's allowed_hosts in loadwise.toml"
    )
