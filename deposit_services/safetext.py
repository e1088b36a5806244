"""Text that is safe to log, print or store: credentials masked, control characters
escaped, long values cut. The one place these rules live.

* ``mask_url(url)``: one URL with its user-info and credential-like query (and
  fragment) parameters replaced by ``***``; the rest of the URL is kept byte for byte,
  so an operator can still see which host, port and path it is.
* ``redact(text)``: every URL inside free text (an error message, a statusMessage)
  masked with ``mask_url``. Used where text is stored and under everything shown.
* ``escape(text)``: control characters (C0, C1, DEL, U+2028/U+2029, bidi controls)
  written as ``\\n``, ``\\x1b``, ``\\u202e``..., so a value can neither start a forged
  log line nor move the cursor or reorder a terminal's text.
* ``safe(text)``: all three plus a length cap, for one value shown on one line.
* ``SafeFormatter``: the logging formatter that applies ``safe`` to every argument of a
  record (``cli.configure_logging`` installs it on the root handler).

Every function is idempotent (``safe(safe(x)) == safe(x)``): backslashes are not
escaped, so text made safe in one layer and shown by another is not mangled twice.
"""

from __future__ import annotations

import copy
import logging
import numbers
import re
from collections.abc import Iterator, Mapping
from types import TracebackType
from urllib.parse import unquote_plus

__all__ = [
    "MASK",
    "MAX_SHOWN",
    "SafeFormatter",
    "escape",
    "is_secret_key",
    "mask_url",
    "redact",
    "redact_values",
    "safe",
]

MASK = "***"
# A value longer than this (after escaping) is cut when it is logged or printed.
MAX_SHOWN = 2000
_MIN_LIMIT = 40  # room for the cut marker and a little text

# --- which query keys hold credentials ------------------------------------------------

# A key is secret when one of its words (split at "_", "-", ".", case changes) is one of
# these, or ends with one of _SECRET_ENDINGS ("accesstoken", "clientsecret").
_SECRET_WORDS = frozenset({
    "auth", "authorization", "bearer", "cookie", "credential", "credentials", "key",
    "apikey", "pass", "passphrase", "passwd", "password", "pwd", "secret", "session",
    "sessionid", "jsessionid", "sig", "signature", "token",
})
_SECRET_ENDINGS = ("apikey", "credential", "credentials", "passwd", "password", "secret",
                   "sessionid", "signature", "token")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def is_secret_key(key: str) -> bool:
    """Whether a query parameter named ``key`` (any case, any separators, percent-encoded
    or not) is credential-like: ``password``, ``X-Amz-Signature``, ``apiKey``, ``sig``..."""
    words = [w.lower() for w in _WORD.findall(unquote_plus(key))]
    return any(w in _SECRET_WORDS or w.endswith(_SECRET_ENDINGS) for w in words)


# --- one URL ----------------------------------------------------------------------------

_SCHEME_SLASHES = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//")
# SQLAlchemy's reading of user-info: ``user:password@`` where the password may hold
# unencoded "/", "?" or "#" (only "@" ends it). RFC 3986 would end the authority there.
# (The password stops before another "://": linear time over text full of URLs.)
_SQLALCHEMY_USERINFO = re.compile(r"[^:/@\s]*:((?:(?!://)[^@\s])*)@")
_AUTHORITY_END = re.compile(r"[/?#\s]")
_PARAM_SEPARATOR = re.compile(r"([&;])")


def _userinfo_end(text: str, start: int) -> int:
    """Where the user-info that begins at ``start`` (just after ``//``) ends, the ``@``
    included; ``start`` when there is none. Both readings of a URL are taken and the
    longer one wins, so a password that one parser would accept is never shown."""
    stop = _AUTHORITY_END.search(text, start)
    authority_end = len(text) if stop is None else stop.start()
    end = text.rfind("@", start, authority_end) + 1 or start
    alchemy = _SQLALCHEMY_USERINFO.match(text, start)
    if alchemy is not None:
        before_slash = alchemy.group(1).partition("/")[0]
        if not before_slash.isdigit():  # "host:8080/path?mail=a@b" is a port, not a password
            end = max(end, alchemy.end())
    return end


def _mask_userinfo(userinfo: str) -> str:
    """``user:password`` -> ``user:***`` (the name helps the operator); a lone name is
    often a token (``https://TOKEN@host``) and is masked whole."""
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{MASK}" if colon else MASK


def _mask_params(params: str) -> str:
    """``a=1&token=x`` -> ``a=1&token=***``: values of credential-like keys masked."""
    parts = _PARAM_SEPARATOR.split(params)
    for i in range(0, len(parts), 2):
        key, equals, _ = parts[i].partition("=")
        if equals and is_secret_key(key):
            parts[i] = f"{key}={MASK}"
    return "".join(parts)


def mask_url(url: str) -> str:
    """``scheme://user:***@host:port/path?a=1&token=***``: the URL's user-info and the
    values of credential-like query and fragment parameters masked, the rest unchanged.
    Text that is not a URL comes back as it was."""
    lead = _SCHEME_SLASHES.match(url)
    if lead is None:
        return url
    start = lead.end()
    end = _userinfo_end(url, start)
    if end > start:
        userinfo = _mask_userinfo(url[start:end - 1])
        url = url[:start] + userinfo + "@" + url[end:]
        end = start + len(userinfo) + 1
    path_end = _AUTHORITY_END.search(url, end)
    rest_start = len(url) if path_end is None else path_end.start()
    head, rest = url[:rest_start], url[rest_start:]
    before_fragment, hash_mark, fragment = rest.partition("#")
    path, question, query = before_fragment.partition("?")
    if question:
        query = _mask_params(query)
    if hash_mark and "=" in fragment:  # OAuth puts access_token=... in the fragment
        fragment = _mask_params(fragment)
    return head + path + question + query + hash_mark + fragment


# --- URLs in free text ------------------------------------------------------------------

# A URL starts with a scheme and "://"; the lookbehind makes a long run of letters cost
# one scan, not one per letter (no quadratic time on a 10 MB message).
_URL_START = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://")
# After the user-info, a URL in text ends at whitespace, a quote or an angle bracket,
# and sentence punctuation or an unmatched closing bracket at its end is the text's.
_URL_REST = re.compile(r"[^\s<>\"'`]*")
_TRAILING = ".,;:!?"
_UNBROKEN = re.compile(r"\S*")
_BRACKETS = {")": "(", "]": "[", "}": "{"}


def _url_end(text: str, start: int, end: int) -> int:
    """``end`` moved back over punctuation that closes the sentence, not the URL: in
    "(see http://h/?token=x)." the URL is "http://h/?token=x"."""
    opened = {opening: text.count(opening, start, end) for opening in _BRACKETS.values()}
    closed = {closing: text.count(closing, start, end) for closing in _BRACKETS}
    while end > start:
        last = text[end - 1]
        if last in _BRACKETS and closed[last] > opened[_BRACKETS[last]]:
            closed[last] -= 1
        elif last not in _TRAILING:
            break
        end -= 1
    return end


def _runs_to_end(text: str, start: int) -> bool:
    run = _UNBROKEN.match(text, start)
    return run is not None and run.end() == len(text)


def _redact(text: str, *, truncated: bool = False) -> str:
    """``redact``; with ``truncated`` a URL whose unbroken run of characters reaches the
    end of ``text`` (cut in the middle: its "@" perhaps not yet seen) keeps only its
    scheme."""
    pieces: list[str] = []
    pos = 0
    while (start := _URL_START.search(text, pos)) is not None:
        after = start.end()
        userinfo_end = _userinfo_end(text, after)
        rest = _URL_REST.match(text, userinfo_end)
        end = _url_end(text, userinfo_end, rest.end() if rest is not None else after)
        pieces.append(text[pos:start.start()])
        if truncated and _runs_to_end(text, after):
            pieces.append(text[start.start():after])
            end = len(text)
        else:
            pieces.append(mask_url(text[start.start():end]))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def redact(text: str) -> str:
    """``text`` with every URL in it masked (see ``mask_url``); nothing else changed."""
    return _redact(text)


def redact_values(value: object) -> object:
    """A JSON-like value (dicts, lists, strings) with every string redacted: for
    ``--json`` output, which stays exact but for credentials."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(item) for item in value]
    return value


# --- control characters -----------------------------------------------------------------

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROLS = [
    *range(0x00, 0x20), 0x7F, *range(0x80, 0xA0),  # C0, DEL, C1 (NEL U+0085 included)
    0x2028, 0x2029,  # line and paragraph separators
    0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A),  # bidi
]
_ESCAPES: dict[int, str] = {
    cp: _NAMED.get(chr(cp)) or (f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}")
    for cp in _CONTROLS
}
_ESCAPES_KEEP_NEWLINE = {cp: text for cp, text in _ESCAPES.items() if cp != ord("\n")}


def escape(text: str, *, keep_newlines: bool = False) -> str:
    """Control characters written as escapes (``\\n``, ``\\x1b``, ``\\u2028``...);
    ``keep_newlines`` leaves ``\\n`` alone (for our own multi-line text: tracebacks)."""
    return text.translate(_ESCAPES_KEEP_NEWLINE if keep_newlines else _ESCAPES)


def safe(text: str, limit: int = MAX_SHOWN) -> str:
    """One value ready for one line of a log or a terminal: URLs masked, control
    characters escaped, and cut to at most ``limit`` characters, ending with
    ``...[cut: N chars]`` (N: the original length) when it was longer."""
    limit = max(limit, _MIN_LIMIT)
    if len(text) <= limit:
        shown = escape(redact(text))
        if len(shown) <= limit:
            return shown
    # Only the head is looked at: cheap on a 10 MB value, and a URL cut in the middle
    # shows none of its credentials.
    marker = f"...[cut: {len(text)} chars]"
    head = escape(_redact(text[:limit], truncated=len(text) > limit))
    return head[:limit - len(marker)] + marker


# --- logging ----------------------------------------------------------------------------


class _Shown:
    """A log argument seen through ``safe`` by ``%s``, ``%r`` and ``%a``."""

    __slots__ = ("_value",)

    def __init__(self, value: object) -> None:
        self._value = value

    def __str__(self) -> str:
        return safe(str(self._value))

    def __repr__(self) -> str:
        return safe(repr(self._value))


def _shown(value: object) -> object:
    # Numbers are kept for %d/%f/%x and cannot carry text.
    return value if isinstance(value, numbers.Number) else _Shown(value)


def _exception_chain(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__]


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a broken __str__; traceback shows its own text
        return ""


class SafeFormatter(logging.Formatter):
    """Formats a record's message from ``safe`` arguments: a value holding a newline
    stays on its line (escaped), a 10 MB value is cut, a URL's password is masked. The
    message template is ours and is kept as written (its own newlines included).
    Tracebacks stay multi-line; exception messages in them are escaped like arguments
    and the whole text is redacted. The record itself is not changed (other handlers,
    such as pytest's, see it as logged)."""

    def format(self, record: logging.LogRecord) -> str:
        shown = copy.copy(record)
        shown.msg = self.safe_message(record)
        shown.args = None
        shown.exc_text = None  # another handler's cached traceback is not redacted
        return super().format(shown)

    @staticmethod
    def safe_message(record: logging.LogRecord) -> str:
        """The record's message with every argument made ``safe``."""
        if not isinstance(record.msg, str):  # log.error(exc): the whole message is a value
            return safe(record.getMessage())
        args = record.args
        if not args:
            message = record.msg
        else:
            shown: object = (
                {key: _shown(value) for key, value in args.items()}
                if isinstance(args, Mapping) else tuple(_shown(value) for value in args)
            )
            try:
                message = record.msg % shown
            except (TypeError, ValueError, KeyError):
                # a conversion our wrapper cannot serve (%c of a str...): format as logging
                # would, then escape the whole message (which raises as logging would)
                return safe(record.getMessage())
        return escape(redact(message), keep_newlines=True)

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        text = super().formatException(ei)
        messages = {_message(error) for error in _exception_chain(ei[1])}
        for message in sorted(messages, key=len, reverse=True):
            if message and safe(message) != message:
                text = text.replace(message, safe(message))
        return escape(redact(text), keep_newlines=True)

    def formatStack(self, stack_info: str) -> str:
        return escape(redact(super().formatStack(stack_info)), keep_newlines=True)
