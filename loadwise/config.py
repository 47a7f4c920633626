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

from loadwise.run.collector import KubernetesTarget, PrometheusSettings
from loadwise.durations import parse_duration
from loadwise.errors import LoadwiseError

DEFAULT_CONFIG = Path("loadwise.toml")
TOP_LEVEL_KEYS = ("default_profile", "profiles")
PROFILE_KEYS = ("host", "allowed_hosts", "slos", "thresholds", "prometheus", "kubernetes", "scrape_urls",
                "exporter_port", "db_dsn_env")  # fmt: skip
KUBERNETES_KEYS = ("namespace", "deployment")
PROMETHEUS_KEYS = ("url", "job", "rate_window", "timeout", "settle", "bearer_token_env", "basic_auth_user_env",
                   "basic_auth_password_env", "queries")  # fmt: skip


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
    _check_keys(raw, PROFILE_KEYS, f"{config_path}: profiles.{name}")
    if isinstance(raw.get("kubernetes"), dict):
        _check_keys(raw["kubernetes"], KUBERNETES_KEYS, f"{config_path}: profiles.{name}.kubernetes")
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


def threshold_texts(profile: Profile) -> list[str]:
    """The profile's `slos` and `thresholds`, both lists of threshold expressions."""
    texts: list[str] = []
    for key in ("slos", "thresholds"):
        value = profile.settings.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"profiles.{profile.name}.{key} must be a list of expressions such as \"p95<300ms\"")
        texts += value
    return texts


def host_of(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not an http(s) URL")
    return parts.hostname


def is_loopback(hostname: str) -> bool:
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def check_host_allowed(url: str, allowed_hosts: list[str]) -> None:
    """Raise HostNotAllowed unless `url`'s host is loopback or listed."""
    hostname = host_of(url)
    if is_loopback(hostname):
        return
    for entry in allowed_hosts:
        if entry.lower() == hostname.lower():
            return
        try:
            if ipaddress.ip_address(hostname) in ipaddress.ip_network(entry, strict=False):
                return
        except ValueError:
            continue
    raise HostNotAllowed(
        f"host {hostname!r} is not allowed: only loopback is allowed by default; "
        "list it in the profile's allowed_hosts in loadwise.toml"
    )
