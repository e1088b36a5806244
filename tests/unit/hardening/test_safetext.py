"""safetext: URL credentials masked, control characters escaped, long values cut."""

from __future__ import annotations

import pytest

from deposit_services import settings
from deposit_services.safetext import (
    MAX_SHOWN,
    escape,
    is_secret_key,
    mask_url,
    redact,
    redact_values,
    safe,
)


@pytest.mark.parametrize(("url", "masked"), [
    # user-info: the name is kept, the password masked; a lone name may be a token
    ("stomp://u:p@broker:61613", "stomp://u:***@broker:61613"),
    ("https://alice:s3cret@sword.example/sword/collection/1",
     "https://alice:***@sword.example/sword/collection/1"),
    ("https://ghp_T0KEN@github.example/x.git", "https://***@github.example/x.git"),
    ("postgresql://me:@db/x", "postgresql://me:***@db/x"),
    # IPv6 hosts and ports are kept as written
    ("http://u:p@[::1]:8080/x", "http://u:***@[::1]:8080/x"),
    ("http://u:p@[2001:db8::7]/x?token=t", "http://u:***@[2001:db8::7]/x?token=***"),
    ("http://[::1]:9200/?token=t&pretty=1", "http://[::1]:9200/?token=***&pretty=1"),
    # encoded and unencoded special characters in passwords
    ("postgresql://me:p%40ss%2Fw@db:5432/x", "postgresql://me:***@db:5432/x"),
    ("http://me:p@ss@host/x", "http://me:***@host/x"),
    ("postgresql://me:pa/ss@db/x", "postgresql://me:***@db/x"),  # SQLAlchemy accepts it
    ("postgresql://me:pa#ss@db/x", "postgresql://me:***@db/x"),
    ("postgresql://me:pa?ss@db/x", "postgresql://me:***@db/x"),
    # credential-like query keys, any case and spelling
    ("postgresql://db/x?password=pw&sslmode=require",
     "postgresql://db/x?password=***&sslmode=require"),
    ("http://es:9200/?TOKEN=t", "http://es:9200/?TOKEN=***"),
    ("https://b.s3.example/k?X-Amz-Algorithm=A&X-Amz-Credential=c&X-Amz-Signature=s"
     "&X-Amz-Security-Token=t",
     "https://b.s3.example/k?X-Amz-Algorithm=A&X-Amz-Credential=***&X-Amz-Signature=***"
     "&X-Amz-Security-Token=***"),
    ("https://blob.example/c?sv=1&sig=abc%3D", "https://blob.example/c?sv=1&sig=***"),
    ("http://h/?api_key=1&apiKey=2&APIKEY=3&access_token=4&Passwd=5&pwd=6&secret=7&key=8"
     "&auth=9&credentials=10&client_secret=11",
     "http://h/?api_key=***&apiKey=***&APIKEY=***&access_token=***&Passwd=***&pwd=***"
     "&secret=***&key=***&auth=***&credentials=***&client_secret=***"),
    ("http://h/?pass%77ord=x", "http://h/?pass%77ord=***"),  # the key percent-encoded
    ("http://h/x;a=1;token=2", "http://h/x;a=1;token=2"),  # path parameters are a path
    ("http://h/x?a=1;token=2", "http://h/x?a=1;token=***"),
    ("https://app.example/cb#access_token=t&state=s",
     "https://app.example/cb#access_token=***&state=s"),
    ("sqs+https://u:p@sqs.example:4566?region=x", "sqs+https://u:***@sqs.example:4566?region=x"),
    # nothing to mask: unchanged, byte for byte
    ("stomp://broker:61613", "stomp://broker:61613"),
    ("http://host:8080/path?email=a@b.example", "http://host:8080/path?email=a@b.example"),
    ("http://h?mail=a@b.example", "http://h?mail=a@b.example"),
    ("https://h/?keyword=x&author=y&monkeys=3", "https://h/?keyword=x&author=y&monkeys=3"),
    ("sqlite:////var/lib/deposit services/x.db", "sqlite:////var/lib/deposit services/x.db"),
    ("local:", "local:"),
    ("not a url", "not a url"),
])
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert mask_url(masked) == masked  # idempotent


def test_settings_mask_url_is_the_same_rule() -> None:
    assert settings.mask_url is mask_url


@pytest.mark.parametrize(("key", "secret"), [
    ("password", True), ("PASSWORD", True), ("X-Amz-Signature", True), ("x-amz-credential", True),
    ("X-Amz-Security-Token", True), ("apiKey", True), ("AWSAccessKeyId", True),
    ("accesstoken", True), ("client_secret", True), ("jsessionid", True), ("sig", True),
    ("page", False), ("keyword", False), ("author", False), ("region", False), ("sv", False),
])
def test_secret_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_redact_masks_every_url_in_free_text_and_nothing_else() -> None:
    text = ("SWORD deposit to 'https://alice:pw1@sword.example/col' failed: 401; retried "
            "at <http://bob:pw2@[::1]:8080/x?token=t2>, see "
            "(https://docs.example/errors?id=7) and https://s3.example/o?Signature=s3.")
    assert redact(text) == (
        "SWORD deposit to 'https://alice:***@sword.example/col' failed: 401; retried "
        "at <http://bob:***@[::1]:8080/x?token=***>, see "
        "(https://docs.example/errors?id=7) and https://s3.example/o?Signature=***.")
    for secret in ("pw1", "pw2", "t2", "=s3"):
        assert secret not in redact(text)


def test_redact_keeps_the_punctuation_after_a_url() -> None:
    assert (redact("database unavailable (postgresql://me:pw@db/x?password=p2): refused")
            == "database unavailable (postgresql://me:***@db/x?password=***): refused")
    assert redact("wiki http://h/a_(b), ok") == "wiki http://h/a_(b), ok"


def test_redact_finds_urls_next_to_control_characters() -> None:
    assert redact("a\nhttp://u:p@h/\tb") == "a\nhttp://u:***@h/\tb"


def test_redact_values_masks_strings_at_any_depth_and_keeps_the_rest() -> None:
    report = [{"id": "s1", "statusMessage": "http://u:p@h/ refused\nline 2",
               "deposits": [{"attempts": 2, "copy": None,
                             "urls": ["http://h/?token=t", "plain"]}]}]
    assert redact_values(report) == [
        {"id": "s1", "statusMessage": "http://u:***@h/ refused\nline 2",
         "deposits": [{"attempts": 2, "copy": None, "urls": ["http://h/?token=***", "plain"]}]}]


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\nb", "a\\nb"), ("a\r\nb", "a\\r\\nb"), ("a\tb", "a\\tb"), ("\x1b[31mred", "\\x1b[31mred"),
    ("nul\x00", "nul\\x00"), ("del\x7f", "del\\x7f"), ("nel\x85", "nel\\x85"),
    ("csi\x9b", "csi\\x9b"), ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
    ("rlo\u202egnp.exe", "rlo\\u202egnp.exe"), ("isolate\u2066x\u2069", "isolate\\u2066x\\u2069"),
    ("lrm\u200e rlm\u200f alm\u061c", "lrm\\u200e rlm\\u200f alm\\u061c"),
    ("accents é ü 漢字 stay", "accents é ü 漢字 stay"),
    ("a backslash \\n stays", "a backslash \\n stays"),
])
def test_escape(raw: str, shown: str) -> None:
    assert escape(raw) == shown
    assert escape(shown) == shown


def test_escape_may_keep_our_own_newlines() -> None:
    assert escape("line 1\nline\x1b 2\r", keep_newlines=True) == "line 1\nline\\x1b 2\\r"


def test_safe_makes_one_line_and_masks() -> None:
    assert safe("id\nFAKE 2026-01-01 ERROR injected line http://u:p@h/") == (
        "id\\nFAKE 2026-01-01 ERROR injected line http://u:***@h/")


def test_safe_cuts_long_values_and_says_how_long_they_were() -> None:
    value = "x" * 10 * 1024 * 1024
    shown = safe(value)
    assert len(shown) <= MAX_SHOWN
    assert shown.startswith("xxxx")
    assert shown.endswith("...[cut: 10485760 chars]")
    assert safe(shown) == shown  # idempotent
    assert safe("abc" * 100, limit=100).endswith("...[cut: 300 chars]")
    assert len(safe("abc" * 100, limit=100)) == 100


def test_safe_counts_escapes_in_the_limit() -> None:
    shown = safe("\n" * 100, limit=100)
    assert len(shown) <= 100 and shown.endswith("...[cut: 100 chars]")
    assert "\n" not in shown


def test_a_url_cut_in_the_middle_shows_none_of_its_credentials() -> None:
    for prefix in ("see http://user:pass", "see http://user:password-goes-on@h/?",
                   "see http://h/?token=abcdef", "see http://user:pass.", "see http://u:pa'ss"):
        value = prefix + "z" * 5000 + " tail"
        assert safe(value, limit=len(prefix) + 50) == f"see http://...[cut: {len(value)} chars]"


def test_many_urls_and_huge_runs_stay_fast_enough() -> None:
    """The patterns are linear: these would take minutes if they were quadratic."""
    assert len(redact("a" * 2_000_000)) == 2_000_000
    assert redact("a://b:'c://d:'" * 50_000).count("://") == 100_000
    assert redact("http://h/" + ")" * 1_000_000).endswith(")")


@pytest.mark.parametrize("cut_after", ["http://user:pass.", "http://user:pa'", "http://u:p)"])
def test_a_cut_right_after_punctuation_in_a_password_shows_none_of_it(cut_after: str) -> None:
    # a long password masked earlier brings the end of the head into view
    head = "http://u:" + "p" * 200 + "@h, then " + cut_after
    value = head + "word@host/x " + "y" * 5000
    shown = safe(value, limit=len(head))
    assert shown == f"http://u:***@h, then http://...[cut: {len(value)} chars]"
