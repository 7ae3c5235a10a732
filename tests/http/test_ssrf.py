"""The SSRF rules: which addresses are refused, every IP spelling a resolver accepts, and check_url's messages."""
import ipaddress
import socket

import pytest

from llm_service.engine.errors import UserInputError
from llm_service.http.ssrf import UnsafeURLError, check_url, is_refused_address, parse_ip_literal, refusal_reason

# (spelling as it would appear in a URL host, the address it denotes)
LOOPBACK_SPELLINGS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),          # decimal integer
    ("0177.0.0.1", "127.0.0.1"),          # octal first octet
    ("017700000001", "127.0.0.1"),        # octal integer
    ("0x7f.0.0.1", "127.0.0.1"),          # hex first octet
    ("0x7f000001", "127.0.0.1"),          # hex integer
    ("0X7F.1", "127.0.0.1"),              # hex short form, upper case
    ("127.1", "127.0.0.1"),               # short form
    ("127.0.1", "127.0.0.1"),
    ("[::1]", "::1"),                     # bracketed IPv6
    ("::1", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),   # IPv4-mapped, dotted tail
    ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),      # IPv4-mapped, hex tail
]

OTHER_REFUSED = [
    "10.0.0.1", "172.16.5.4", "192.168.1.1",          # private
    "169.254.169.254", "169.254.1.1",                 # link-local incl. cloud metadata
    "100.64.0.1", "100.127.255.254",                  # shared address space (CGNAT)
    "0.0.0.0", "0",                                   # unspecified (also the "0" spelling)
    "224.0.0.1", "239.255.255.250",                   # multicast
    "240.0.0.1", "255.255.255.255",                   # reserved / broadcast
    "192.0.2.10", "198.18.0.1",                       # documentation / benchmarking
    "[fe80::1%eth0]", "[fe80::1%25eth0]", "fe80::1",  # link-local IPv6 with and without a zone id
    "fc00::1", "fd12:3456::1",                        # unique local
    "ff02::1",                                        # multicast IPv6
    "::",                                             # unspecified IPv6
    "fd00:ec2::254",                                  # AWS IPv6 metadata
    "2002:7f00:1::1", "2002:a00:1::1",                # 6to4 embedding 127.0.0.1 / 10.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",           # Teredo with client 127.0.0.1
    "64:ff9b::7f00:1", "64:ff9b::a00:1",              # NAT64 well-known prefix embedding private IPv4
    "::ffff:10.0.0.1", "::ffff:169.254.169.254",      # IPv4-mapped private / metadata
    "0x0a.1",                                         # 10.0.0.1 in hex short form
    "3232235777",                                     # 192.168.1.1 as a decimal integer
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:81a::200e",
          "::ffff:8.8.8.8", "64:ff9b::808:808", "134744072"]  # the last: 8.8.8.8 as an integer


@pytest.mark.parametrize("spelling, expected", LOOPBACK_SPELLINGS)
def test_every_loopback_spelling_is_parsed_and_refused(spelling, expected):
    parsed = parse_ip_literal(spelling)
    assert parsed == ipaddress.ip_address(expected)
    assert is_refused_address(parsed)


@pytest.mark.parametrize("host", OTHER_REFUSED)
def test_non_public_addresses_are_refused(host):
    parsed = parse_ip_literal(host)
    assert parsed is not None, host
    assert is_refused_address(parsed)
    assert refusal_reason(parsed)


@pytest.mark.parametrize("host", PUBLIC)
def test_public_addresses_are_allowed(host):
    parsed = parse_ip_literal(host)
    assert parsed is not None
    assert not is_refused_address(parsed)
    assert refusal_reason(parsed) is None


@pytest.mark.parametrize("host", ["example.com", "cafe.de", "0x7f.example", "face.b00c", "localhost", "", "[]",
                                  "1.2.3.4 evil.com"])
def test_names_are_not_ip_literals(host):
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize("address, words", [
    ("127.0.0.1", "loopback"),
    ("169.254.169.254", "cloud metadata"),
    ("10.1.2.3", "private"),
    ("100.64.0.1", "shared address space"),
    ("224.0.0.1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("2002:a00:1::1", "embedding 10.0.0.1"),
])
def test_reasons_name_the_kind_of_address(address, words):
    assert words in refusal_reason(address)


def test_refusal_reason_accepts_strings_with_zone_ids_and_rejects_garbage():
    assert "link-local" in refusal_reason("fe80::1%eth0")
    assert refusal_reason("not-an-ip") == "not a valid IP address"


# -- check_url --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling, _", LOOPBACK_SPELLINGS)
def test_check_url_refuses_every_loopback_spelling(spelling, _):
    host = f"[{spelling}]" if ":" in spelling and not spelling.startswith("[") else spelling
    with pytest.raises(UnsafeURLError) as info:
        check_url(f"http://{host}:8080/hook", allow_private=False, resolve=False)
    assert "loopback" in str(info.value)


def test_check_url_message_is_fit_for_an_api_400():
    with pytest.raises(UnsafeURLError) as info:
        check_url("https://127.0.0.1/hook", allow_private=False)
    message = str(info.value)
    assert message.startswith("webhook_url host 127.0.0.1 is a loopback address; ")
    assert "WEBHOOK_ALLOW_PRIVATE_NETWORKS" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, UserInputError)


def test_check_url_label_is_configurable():
    with pytest.raises(UnsafeURLError, match=r"^callback host 10\.0\.0\.1 is a private address"):
        check_url("http://10.0.0.1/", allow_private=False, label="callback")


@pytest.mark.parametrize("url, words", [
    ("ftp://example.com/x", "must use http or https, got ftp:"),
    ("file:///etc/passwd", "must use http or https"),
    ("javascript:alert(1)", "must use http or https"),
    ("example.com/hook", "must use http or https, got no scheme"),
    ("http:///nohost", "must include a host"),
    ("http://example.com:99999/", "not a valid URL"),
])
def test_check_url_requires_http_with_a_host_even_when_private_is_allowed(url, words):
    for allow_private in (False, True):
        with pytest.raises(UnsafeURLError, match=words):
            check_url(url, allow_private=allow_private, resolve=False)


def fake_resolver(monkeypatch, answers):
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append((host, port))
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_check_url_refuses_a_name_when_any_answer_is_refused(monkeypatch):
    fake_resolver(monkeypatch, {"mixed.example.test": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(UnsafeURLError) as info:
        check_url("https://mixed.example.test/hook", allow_private=False)
    assert str(info.value).startswith("webhook_url host mixed.example.test resolves to 10.0.0.7, a private address")


def test_check_url_allows_public_names_and_resolves_with_the_url_port(monkeypatch):
    calls = fake_resolver(monkeypatch, {"public.example.test": ["93.184.216.34", "2606:4700:4700::1111"]})
    check_url("https://public.example.test:8443/hook", allow_private=False)
    assert calls == [("public.example.test", 8443)]


def test_check_url_allows_a_name_that_does_not_resolve(monkeypatch):
    calls = fake_resolver(monkeypatch, {})
    check_url("https://nowhere.example.test/hook", allow_private=False)
    assert calls  # it did try


def test_check_url_skips_dns_when_asked_or_when_private_is_allowed(monkeypatch):
    calls = fake_resolver(monkeypatch, {"internal.example.test": ["10.0.0.1"]})
    check_url("http://internal.example.test/", allow_private=False, resolve=False)
    check_url("http://internal.example.test/", allow_private=True)
    check_url("http://127.0.0.1/", allow_private=True)
    assert calls == []


def test_check_url_allows_public_literals_without_dns(monkeypatch):
    calls = fake_resolver(monkeypatch, {})
    check_url("http://8.8.8.8/", allow_private=False)
    check_url("http://[2606:4700:4700::1111]:8080/", allow_private=False)
    assert calls == []
