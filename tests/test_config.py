"""Profiles and the host allow-list."""

import pytest

from loadwise.config import ConfigError, HostNotAllowed, check_host_allowed, load_profile
from loadwise.durations import parse_duration


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost", "http://[::1]:81", "https://127.9.9.9/x"])
def test_loopback_is_allowed_by_default(url):
    check_host_allowed(url, [])


@pytest.mark.parametrize("url", ["http://10.0.0.5", "https://api.example.com", "http://192.168.1.1:80", "http://127.0.0.1.nip.io"])
def test_anything_else_is_refused_unless_listed(url):
    with pytest.raises(HostNotAllowed, match="not allowed"):
        check_host_allowed(url, [])


def test_listed_hosts_and_networks_are_allowed():
    check_host_allowed("https://api.example.com/", ["API.example.com"])
    check_host_allowed("http://10.1.2.3:8080", ["10.1.0.0/16"])
    with pytest.raises(HostNotAllowed):
        check_host_allowed("http://10.2.0.1", ["10.1.0.0/16"])
    with pytest.raises(ConfigError, match="not an http"):
        check_host_allowed("ftp://x", [])


def test_profiles_from_toml(tmp_path):
    path = tmp_path / "loadwise.toml"
    path.write_text(
        'default_profile = "dev"\n'
        '[profiles.dev]\nhost = "http://127.0.0.1:8000"\n'
        '[profiles.staging]\nhost = "https://staging.example.com"\nallowed_hosts = ["staging.example.com"]\nslos = ["p95<300ms"]\n'
    )
    assert load_profile(None, path).host == "http://127.0.0.1:8000"
    staging = load_profile("staging", path)
    assert staging.allowed_hosts == ["staging.example.com"] and staging.settings == {"slos": ["p95<300ms"]}
    with pytest.raises(ConfigError, match="no profile 'prod'"):
        load_profile("prod", path)
    path.write_text("[profiles\n")
    with pytest.raises(ConfigError, match="malformed TOML"):
        load_profile("dev", path)


def test_durations():
    assert [parse_duration(t) for t in ("90", "90s", "2m", "1h30m", "250ms")] == [90, 90, 120, 5400, 0.25]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")


def test_prometheus_settings_from_profile(tmp_path):
    from loadwise.config import prometheus_settings, scrape_urls

    path = tmp_path / "loadwise.toml"
    path.write_text(
        '[profiles.k8s]\nscrape_urls = ["http://127.0.0.1:1/metrics"]\n'
        '[profiles.k8s.prometheus]\nurl = "http://prom:9090"\njob = "api"\nrate_window = "1m"\nsettle = "15s"\n'
        'bearer_token_env = "PROM_TOKEN"\n[profiles.k8s.prometheus.queries]\nqueue = "sum(queue_depth{})"\n'
        '[profiles.k8s.kubernetes]\nnamespace = "shop"\ndeployment = "api"\n'
        '[profiles.bad.prometheus]\nurl = "http://p"\nrate_window = "soon"\n'
        '[profiles.typo.prometheus]\nurl = "http://p"\nsetle = "1s"\n'
    )
    settings = prometheus_settings(load_profile("k8s", path))
    assert settings.url == "http://prom:9090" and settings.settle_s == 15 and settings.kubernetes.deployment == "api"
    assert prometheus_settings(load_profile("k8s", path), "http://other:9090").url == "http://other:9090"
    assert scrape_urls(load_profile("k8s", path)) == ["http://127.0.0.1:1/metrics"]
    from loadwise.run.collector import all_queries

    queries = all_queries(settings)
    assert queries["queue"] == "sum(queue_depth{})"
    assert 'job="api"' in queries["server_rps"] and "[1m]" in queries["cpu_cores"]
    assert 'namespace="shop"' in queries["pod_cpu_cores"] and 'deployment="api"' in queries["ready_replicas"]
    with pytest.raises(ConfigError, match="not a PromQL duration"):
        prometheus_settings(load_profile("bad", path))
    with pytest.raises(ConfigError, match=r"unknown key 'setle': did you mean 'settle'\?"):
        prometheus_settings(load_profile("typo", path))
    from loadwise.config import Profile

    assert prometheus_settings(Profile()) is None


@pytest.mark.parametrize(("toml", "message"), [
    ('[profiles.dev]\nslo = ["p95<1s"]\n', "profiles.dev: unknown key 'slo': did you mean 'slos'?"),
    ('[profiles.dev]\nallowed_host = []\n', "did you mean 'allowed_hosts'?"),
    ('default_profil = "dev"\n[profiles.dev]\n', "top-level key: unknown key 'default_profil': did you mean 'default_profile'?"),
    ('[profiles.dev.kubernetes]\nnamspace = "x"\n', "profiles.dev.kubernetes: unknown key 'namspace': did you mean 'namespace'?"),
    ('[profiles.dev]\ncolour = 1\n', "unknown key 'colour': known keys: host, allowed_hosts"),
])  # fmt: skip
def test_an_unknown_key_is_an_error_naming_the_nearest_known_one(tmp_path, toml, message):
    assert message in _profile_error(tmp_path, toml)


def _profile_error(tmp_path, toml: str) -> str:
    path = tmp_path / "loadwise.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_profile("dev", path)
    return str(caught.value)


@pytest.mark.parametrize(("toml", "message"), [
    ('[profiles.dev.prometheus]\nurl = 5\n', "profiles.dev.prometheus.url must be a string (got 5)"),
    ('[profiles.dev.prometheus]\nurl = "http://p"\njob = ["a"]\n', "profiles.dev.prometheus.job must be a string"),
    ('[profiles.dev.prometheus]\ntimeout = "soon"\n', "profiles.dev.prometheus.timeout:"),
    ('[profiles.dev]\nslos = ["p95<<3"]\n', "profiles.dev.slos: threshold 'p95<<3'"),
    ('[profiles.dev]\nslos = "p95<1s"\n', "profiles.dev.slos must be a list of strings"),
    ('[profiles.dev]\nexporter_port = "80"\n', "profiles.dev.exporter_port must be a TCP port number"),
    ('[profiles.dev]\nexporter_port = 70000\n', "exporter_port 70000 is not a TCP port"),
    ('[profiles.dev]\nallowed_hosts = "x"\n', "profiles.dev.allowed_hosts must be a list of strings"),
    ('[profiles.dev]\nhost = 8000\n', "profiles.dev.host must be a URL string"),
    ('[profiles.dev.kubernetes]\nnamespace = "a"\n', "profiles.dev.kubernetes.deployment must be a string"),
])  # fmt: skip
def test_the_whole_profile_is_checked_before_any_load(tmp_path, toml, message):
    """Types are checked when the profile loads, so `loadwise run` refuses before starting Locust."""
    assert message in _profile_error(tmp_path, toml)
