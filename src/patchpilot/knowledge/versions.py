"""Version ordering per ecosystem, for the matcher.

Every version string is turned into a :class:`VersionKey` once (cached) and keys are then
compared as plain tuples, so the matcher can afford thousands of comparisons per host.

* ``dpkg``, ``rpm`` and ``apk`` keys come from pure-Python transcriptions of each
  package manager's own comparison (dpkg ``verrevcmp``, rpm ``rpmvercmp``, apk-tools
  ``version.c``) encoded as tuples.  ``univers`` implements the same algorithms but
  compares in Python on every ``<`` (≈3 µs each) and rejects some real strings; the tests
  check that our keys agree with ``univers`` on every real string it accepts.
* Firmware of network devices and products without a package manager (ecosystem ``CPE``)
  follows the ``firmware`` rule below: numbers by value, the letters between them (Cisco
  IOS trains ``M``/``T``, JunOS ``R``/``S``, PAN-OS ``h``) only compared when equal.
* Packagist and Maven follow transcriptions of Composer (``VersionParser::normalize`` then
  PHP's ``version_compare``) and Maven's ``ComparableVersion`` (knowledge.lang_versions).
* The other language ecosystems use ``univers`` (PEP 440, semver, Go, NuGet, RubyGems); what
  it rejects falls back to the ecosystem's lenient rule (pip's legacy ordering for PyPI, a
  natural segment ordering elsewhere) in a lower *tier*, so a readable-but-odd version never
  crashes a scan.

Anything no rule can read raises :class:`patchpilot.errors.VersionError`.
OSV range semantics: https://ossf.github.io/osv-schema/#affectedranges-field
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from packaging import version as packaging_version
from univers import versions as uv
from univers.nuget import InvalidNuGetVersion

from patchpilot.errors import VersionError
from patchpilot.knowledge.ecosystems import scheme_of
from patchpilot.knowledge.lang_versions import ComposerBranch, composer_key, maven_key
from patchpilot.models import AffectedRange

__all__ = ["VersionKey", "comparable", "compare", "is_affected", "version_key"]


class VersionKey(NamedTuple):
    """A comparable form of one version string, totally ordered within one scheme.

    ``tier`` separates readings of different strictness: a PEP 440 version (tier 1) sorts
    after every legacy one (tier 0), as pip did.  ``payload`` is compared only against
    payloads of the same tier.  Being a tuple, comparison runs at C speed.
    """

    tier: int
    payload: Any


STRICT = 1  # read by the ecosystem's own (strict) rules
LENIENT = 0  # read only by the lenient fallback; sorts before every strict version
TRAINS = 2  # firmware: ordered, but comparable only within one train (see comparable())

# --------------------------------------------------------------------------------------
# dpkg: verrevcmp, https://git.dpkg.org/cgit/dpkg/dpkg.git/tree/lib/dpkg/version.c
# --------------------------------------------------------------------------------------

_DIGIT_RUNS = re.compile(r"(\d+)")


def _dpkg_weight(c: str) -> int:
    # dpkg order(): '~' before everything (even end of string, weight 0), then letters,
    # then every other character.
    if c == "~":
        return -1
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def _dpkg_part(s: str) -> tuple[int, ...]:
    """Encode an upstream version or revision so tuple order equals ``verrevcmp``.

    The string is a sequence of (non-digit run, digit run) pairs.  Each pair becomes the
    weights of its non-digit characters, a 0 terminator (dpkg's weight for end-of-run),
    then the digit run's value.  A final 0 stands for the empty pair dpkg compares against
    when one string is longer, so ``1.0~`` < ``1.0`` < ``1.0.1`` come out right.
    """
    out: list[int] = []
    pieces = _DIGIT_RUNS.split(s)  # alternating: non-digits, digits, non-digits, ...
    for i in range(0, len(pieces), 2):
        nondigit = pieces[i]
        digits = pieces[i + 1] if i + 1 < len(pieces) else ""
        if not nondigit and not digits and i:
            continue
        out.extend(_dpkg_weight(c) for c in nondigit)
        out.append(0)
        out.append(int(digits) if digits else 0)
    out.append(0)
    return tuple(out)


def _dpkg_key(v: str) -> tuple[Any, ...]:
    s = v.strip()
    if not s or any(c.isspace() for c in s):
        raise ValueError("empty or contains spaces")
    epoch = 0
    if ":" in s:
        head, _, s = s.partition(":")
        if not head.isdigit():
            raise ValueError("epoch is not a number")
        epoch = int(head)
    upstream, sep, revision = s.rpartition("-")
    if not sep:
        upstream, revision = s, ""
    if not upstream:
        raise ValueError("empty upstream version")
    return (epoch, _dpkg_part(upstream), _dpkg_part(revision))


# --------------------------------------------------------------------------------------
# rpm: rpmvercmp, https://github.com/rpm-software-management/rpm/blob/master/rpmio/rpmvercmp.c
# --------------------------------------------------------------------------------------

# Token ranks at one position: '~' < end of string < '^' < alpha segment < numeric segment.
_RPM_TILDE, _RPM_END, _RPM_CARET, _RPM_ALPHA, _RPM_NUM = range(5)
_RPM_TOKENS = re.compile(r"([0-9]+)|([A-Za-z]+)|(~)|(\^)")


def _rpm_part(s: str) -> tuple[tuple[Any, ...], ...]:
    """Encode a version or release so tuple order equals ``rpmvercmp``.

    Characters other than ASCII letters, digits, ``~`` and ``^`` only separate segments
    (rpm skips them), so ``1.0`` == ``1_0``.  The end marker makes a longer string newer
    unless it continues with ``~`` (pre-release).
    """
    out: list[tuple[Any, ...]] = []
    for num, alpha, tilde, _caret in _RPM_TOKENS.findall(s):
        if num:
            out.append((_RPM_NUM, int(num)))
        elif alpha:
            out.append((_RPM_ALPHA, alpha))
        elif tilde:
            out.append((_RPM_TILDE,))
        else:
            out.append((_RPM_CARET,))
    out.append((_RPM_END,))
    return tuple(out)


def _rpm_key(v: str) -> tuple[Any, ...]:
    s = v.strip()
    if not s or any(c.isspace() for c in s):
        raise ValueError("empty or contains spaces")
    # rpm parseEVR (lib/rpmds.c): the epoch is the leading *digits* when a ':' follows them
    # (an empty epoch reads as 0); otherwise there is no epoch and the whole text, colon
    # included, is the version -- rpmvercmp then treats ':' as a separator, so "x:1.0-1" is
    # version "x:1.0", release "1", never an error.  The release follows the last '-'.
    epoch = 0
    digits = len(s) - len(s.lstrip("0123456789"))
    if s[digits:digits + 1] == ":":
        epoch = int(s[:digits] or 0)
        s = s[digits + 1:]
    version, dash, release = s.rpartition("-")
    if not dash:
        version, release = s, ""
    if not version:
        raise ValueError("empty version")
    return (epoch, _rpm_part(version), _rpm_part(release))


# --------------------------------------------------------------------------------------
# apk: apk-tools src/version.c (apk_version_compare, apk-tools 2.14 / 3.x)
# https://gitlab.alpinelinux.org/alpine/apk-tools/-/blob/master/src/version.c
# --------------------------------------------------------------------------------------

# Token types, in apk's order: at the first place two versions differ in type, the later
# type is the older version (``1.0-r1`` > ``1.0``: REVISION before END), INVALID last of all.
(_A_INITIAL, _A_DIGIT, _A_LETTER, _A_SUFFIX, _A_SUFFIX_NO, _A_HASH, _A_REVISION, _A_END,
 _A_INVALID) = range(9)
# Suffix values: pre-releases below _A_NONE, post-releases above it.
_APK_SUFFIXES = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "cvs": 6, "svn": 7, "git": 8,
                 "hg": 9, "p": 10}
_A_NONE = 5
_APK_PRE_RANK = -100  # a pre-release suffix makes a version older than anything at its place
_APK_DIGITS = re.compile(r"[0-9]*")
_APK_SUFFIX_NAME = re.compile(r"[a-z]*")
_APK_HEX = re.compile(r"[0-9a-f]*")


def _apk_tokens(s: str) -> list[tuple[int, Any]]:
    """apk-tools' ``token_first``/``token_next``: the (type, value) tokens of ``s``.

    Grammar: ``digits{.digits}...{letter}{_suffix{digits}}...{~hash}{-rN}``.  The list
    ends with an END token, or an INVALID one where apk stops reading (an upper-case
    letter, an unknown suffix, ``-`` not followed by ``rN``, a token out of order ...).
    """
    out: list[tuple[int, Any]] = []
    m = _APK_DIGITS.match(s)
    assert m is not None  # [0-9]* always matches
    if not m.group():
        return [(_A_INVALID, None)]
    out.append((_A_INITIAL, int(m.group())))
    t, i, n = _A_INITIAL, m.end(), len(s)
    value: Any
    while i < n:
        c = s[i]
        if "a" <= c <= "z":
            if t > _A_DIGIT:
                break
            t, value, i = _A_LETTER, c, i + 1
        elif c == "." or "0" <= c <= "9":
            if c == ".":
                if t > _A_DIGIT:
                    break
                i += 1
            if t in (_A_INITIAL, _A_DIGIT):
                t = _A_DIGIT
            elif t == _A_SUFFIX:
                t = _A_SUFFIX_NO
            else:
                break
            m = _APK_DIGITS.match(s, i)
            assert m is not None
            digits, i = m.group(), m.end()
            if not digits:
                break
            if t == _A_DIGIT:
                # apk compares a digit run with a leading zero as a string ("1.01" < "1.1",
                # "1.001" < "1.01"): every such run sorts before the plain numbers.
                value = (0, digits) if digits[0] == "0" else (1, int(digits))
            else:
                value = int(digits)
        elif c == "_":
            if t > _A_SUFFIX_NO:
                break
            m = _APK_SUFFIX_NAME.match(s, i + 1)
            assert m is not None
            suffix = _APK_SUFFIXES.get(m.group())
            if suffix is None:
                break
            t, value, i = _A_SUFFIX, suffix, m.end()
        elif c == "~":
            if t >= _A_HASH:
                break
            m = _APK_HEX.match(s, i + 1)
            assert m is not None
            if not m.group():
                break
            t, value, i = _A_HASH, m.group(), m.end()
        elif c == "-":
            if t >= _A_REVISION or s[i + 1:i + 2] != "r":
                break
            m = _APK_DIGITS.match(s, i + 2)
            assert m is not None
            if not m.group():
                break
            t, value, i = _A_REVISION, int(m.group()), m.end()
        else:
            break
        out.append((t, value))
    else:
        out.append((_A_END, None))
        return out
    out.append((_A_INVALID, None))
    return out


def _apk_key(v: str) -> tuple[Any, ...]:
    """Encode an apk version so tuple order equals ``apk_version_compare``.

    apk walks both token lists while the token *types* agree, comparing values; at the
    first place the types differ, a pre-release suffix (``_alpha`` .. ``_rc``) is older
    than anything, otherwise the later type is older (``1.2`` < ``1.2.1`` but ``1.2-r1`` <
    ``1.2_p1``, ``1.2`` > ``1.2-foo``).  Two versions that both turn invalid at the same
    place after equal tokens are equal, as apk says.  The key is ``(rank, value, ...)``
    with rank = -type (pre-release suffixes lower still), ending with END or INVALID.
    """
    s = v.strip()
    if not s:
        raise ValueError("empty")
    out: list[Any] = []
    for t, value in _apk_tokens(s):
        if t >= _A_END:
            out.append(-t)
            break
        out.append(_APK_PRE_RANK if t == _A_SUFFIX and value < _A_NONE else -t)
        if t == _A_DIGIT:
            out += value  # (0, "012") or (1, 12), flat: equal ranks mean equal widths
        else:
            out.append(value)
    return tuple(out)


# --------------------------------------------------------------------------------------
# Natural segment order (generic fallback) and pip's legacy order
# --------------------------------------------------------------------------------------

_NATURAL = re.compile(r"[0-9]+|[A-Za-z]+")


def _natural(s: str) -> tuple[tuple[Any, ...], ...]:
    """Split into numeric and alphabetic runs; everything else only separates.

    Numbers compare by value and after words (``1.0-beta`` < ``1.0`` < ``1.0.1``), words
    compare case-insensitively, trailing zero segments are ignored (``1.0`` == ``1``).
    """
    out: list[tuple[Any, ...]] = [
        (2, int(r)) if r.isdigit() else (0, r.lower()) for r in _NATURAL.findall(s)
    ]
    while out and out[-1] == (2, 0):
        out.pop()
    out.append((1,))
    return tuple(out)


_LEGACY_PARTS = re.compile(r"(\d+|[a-z]+|\.|-)")
_LEGACY_MAP = {"pre": "c", "preview": "c", "-": "final-", "rc": "c", "dev": "@"}


def _legacy_pep440(s: str) -> tuple[str, ...]:
    """``packaging`` 21's ``LegacyVersion`` key (setuptools' old parse_version)."""
    parts: list[str] = []
    pieces = []
    for part in _LEGACY_PARTS.split(s.lower()):
        part = _LEGACY_MAP.get(part, part)
        if not part or part == ".":
            continue
        pieces.append(part.zfill(8) if part[:1].isdigit() else "*" + part)
    pieces.append("*final")
    for part in pieces:
        if part.startswith("*"):
            if part < "*final":
                while parts and parts[-1] == "*final-":
                    parts.pop()
            while parts and parts[-1] == "00000000":
                parts.pop()
        parts.append(part)
    return tuple(parts)


# --------------------------------------------------------------------------------------
# Per-scheme readers
# --------------------------------------------------------------------------------------

_GO_STDLIB = re.compile(r"^go(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(beta|rc)(\d+))?$")


def _strip_prefix(s: str) -> str:
    # npm accepts "v1.2.3" and "=1.2.3"; univers strips only v.
    return s.strip().lstrip("=vV").strip()


def _go_normalize(s: str) -> str:
    """Go stdlib tags (``go1.21.3``, ``go1.21rc2``) as the semver the Go vulndb uses."""
    m = _GO_STDLIB.match(s.strip())
    if not m:
        return s.strip()
    major, minor, patch, pre, pre_n = m.groups()
    out = f"{major}.{minor or 0}.{patch or 0}"
    return f"{out}-{pre}.{pre_n}" if pre else out


_UNIVERS_ERRORS = (ValueError, TypeError, AttributeError, IndexError, KeyError,
                   InvalidNuGetVersion)


def _univers_reader(
    cls: type[uv.Version], prepare: Callable[[str], str] = _strip_prefix
) -> Callable[[str], VersionKey]:
    """A reader trying ``univers`` first, then the natural order in the lenient tier."""

    def read(v: str) -> VersionKey:
        s = prepare(v)
        try:
            value = cls(s).value
        except _UNIVERS_ERRORS:
            # univers raises InvalidVersion (a ValueError), nuget's own InvalidNuGetVersion,
            # or whatever the underlying parser trips on; fall through to the lenient rule.
            value = None
        if value is not None:  # NugetVersion("") "parses" to None
            return VersionKey(STRICT, value)
        if not _NATURAL.search(s):
            raise ValueError("no numeric or alphabetic segment")
        return VersionKey(LENIENT, _natural(s))

    return read


def _read_pep440(v: str) -> VersionKey:
    s = v.strip()
    try:
        parsed = packaging_version.Version(s)
    except packaging_version.InvalidVersion:
        parsed = None
    if parsed is not None:
        # packaging's comparison key is a plain tuple: comparing it skips Version's Python
        # __lt__ (the matcher compares thousands of PyPI versions per host).
        return VersionKey(STRICT, getattr(parsed, "_key", parsed))
    if not s:
        raise ValueError("empty")
    return VersionKey(LENIENT, _legacy_pep440(s))


def _semver_precedence(sv: Any) -> tuple[Any, ...]:
    """SemVer 2.0 precedence (section 11) as a plain, hashable tuple.

    A release sorts after its pre-releases; numeric identifiers compare by value and
    before alphanumeric ones.  Build metadata is ignored, as npm and Go's semver.Compare
    do (so ``v2.0.0+incompatible`` == ``v2.0.0``).
    """
    if not sv.prerelease:
        pre: tuple[Any, ...] = (1,)
    else:
        pre = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in sv.prerelease))
    return (sv.major, sv.minor, sv.patch, pre)


def _read_semver_like(cls: type[uv.Version]) -> Callable[[str], VersionKey]:
    read = _univers_reader(cls)

    def read_semver(v: str) -> VersionKey:
        key = read(v)
        if key.tier == STRICT:
            key = VersionKey(STRICT, _semver_precedence(key.payload))
        return key

    return read_semver


def _read_composer(v: str) -> VersionKey:
    """Composer's own order; a string Composer rejects falls back to the lenient tier.

    A ``dev-<branch>`` raises: Composer orders a branch against no version, so whether it is
    affected cannot be told (the matcher lists it as undetermined, never as affected).
    """
    try:
        return VersionKey(STRICT, composer_key(v))
    except ComposerBranch:
        raise
    except ValueError:
        pass
    s = _strip_prefix(v)
    if not _NATURAL.search(s):
        raise ValueError("no numeric or alphabetic segment")
    return VersionKey(LENIENT, _natural(s))


def _go_reader() -> Callable[[str], VersionKey]:
    inner = _read_semver_like(uv.GolangVersion)
    return lambda v: inner(_go_normalize(v))


def _own(fn: Callable[[str], tuple[Any, ...]]) -> Callable[[str], VersionKey]:
    return lambda v: VersionKey(STRICT, fn(v))


def _read_generic(v: str) -> VersionKey:
    if not _NATURAL.search(v):
        raise ValueError("no numeric or alphabetic segment")
    return VersionKey(STRICT, _natural(v))


# --------------------------------------------------------------------------------------
# Firmware of devices (ecosystem CPE): Cisco IOS 15.2(4)M7, FortiOS 7.2.5, JunOS
# 21.4R3-S5, PAN-OS 10.2.9-h1, Yamaha Rev.15.02.29, NEC 1.0.5
# --------------------------------------------------------------------------------------

_FIRMWARE_TOKENS = re.compile(r"[0-9]+|[a-z]+")
# What may appear in a firmware version: digits, letters and the separators vendors use
# ("15.2(4)M7", "21.4R3-S5", "10.2.9-h1", "17.3.4a", "5.4_1").  Anything else (spaces,
# commas: "7.2.4,build1396") is text we do not guess about.
_FIRMWARE_TEXT = re.compile(r"[0-9][0-9a-z.()\-_+]*")
_NUMBER, _LETTERS = 1, 0


def _firmware_key(v: str) -> tuple[Any, ...]:
    """A firmware version as a flat tuple of (kind, value) pairs.

    Case is ignored (NVD lower-cases ``15.2(4)m7``); a leading ``Rev.`` (Yamaha) or ``v``
    (FortiOS ``v7.2.4``) is dropped; separators only separate.  Digit runs are numbers
    compared by value (``7.2.10`` > ``7.2.9``, ``15.02.29`` == ``15.2.29``), letter runs
    are words.  A shorter version that is a prefix of a longer one is older: ``21.4`` <
    ``21.4R1`` < ``21.4R3-S5``, ``10.2.9`` < ``10.2.9-h1``.  The text must start with a
    digit after the prefix; anything else raises ValueError (-> VersionError, so the
    matcher reports the device as *undetermined*).

    Keys of different trains (``15.2(4)M7`` and ``15.2(4)T3``) still sort (by the letters),
    so lists of versions can be ordered, but :func:`comparable` says they cannot be
    compared, and the matcher does not judge a version against such a bound.
    """
    s = v.strip().lower()
    if s.startswith("rev."):
        s = s[4:].lstrip()
    elif s[:1] == "v" and s[1:2].isdigit():
        s = s[1:]
    if not _FIRMWARE_TEXT.fullmatch(s):
        raise ValueError("not a firmware version (digits, letters and . ( ) - _ + only, "
                         "starting with a digit)")
    out: list[Any] = []
    for token in _FIRMWARE_TOKENS.findall(s):
        if token.isdigit():
            out += (_NUMBER, int(token))
        else:
            out += (_LETTERS, token)
    return tuple(out)


def comparable(a: VersionKey, b: VersionKey) -> bool:
    """Whether two keys can be ordered meaningfully.

    Always, except for firmware (:data:`TRAINS` keys): two firmware versions compare only
    when their letters agree at every position both have -- the same train.  ``15.2(4)M7``
    and ``15.2(4)M10`` compare; ``15.2(4)M7`` and ``15.2(4)T3`` (different IOS trains) do
    not, nor ``21.4R3`` and ``21.4X53-D10``, nor ``7.2.4`` and ``7.2.beta``: which is newer
    is the vendor's release history, not something the strings say.
    """
    if a.tier != TRAINS or b.tier != TRAINS:
        return True
    pa, pb = a.payload, b.payload
    for i in range(0, min(len(pa), len(pb)), 2):
        if pa[i] != pb[i] or (pa[i] == _LETTERS and pa[i + 1] != pb[i + 1]):
            return False
    return True


_READERS: dict[str, Callable[[str], VersionKey]] = {
    "dpkg": _own(_dpkg_key),
    "rpm": _own(_rpm_key),
    "apk": _own(_apk_key),
    "pep440": _read_pep440,
    "semver": _read_semver_like(uv.SemverVersion),
    "go": _go_reader(),
    "composer": _read_composer,
    "maven": lambda v: VersionKey(STRICT, maven_key(v)),
    "nuget": _univers_reader(uv.NugetVersion),
    "gem": _univers_reader(uv.RubygemsVersion, str.strip),
    "generic": _read_generic,
    "firmware": lambda v: VersionKey(TRAINS, _firmware_key(v)),
}


@lru_cache(maxsize=262_144)
def _key(scheme: str, version: str) -> VersionKey:
    reader = _READERS.get(scheme, _read_generic)
    try:
        return reader(version)
    except VersionError:
        raise
    except (ValueError, TypeError, AttributeError, IndexError, OverflowError) as exc:
        # Raised as a plain ValueError; version_key re-raises with the ecosystem's name.
        raise ValueError(str(exc) or type(exc).__name__) from exc


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def version_key(ecosystem: str, version: str) -> VersionKey:
    """The comparable key of ``version`` under ``ecosystem``'s version scheme (cached).

    Raises :class:`VersionError` when even the lenient rules cannot read the string.
    """
    if not isinstance(version, str):
        raise VersionError(ecosystem, repr(version), "not a string")
    try:
        return _key(scheme_of(ecosystem), version)
    except ValueError as exc:
        raise VersionError(ecosystem, version, str(exc)) from None


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is older than, equal to or newer than ``b``."""
    ka, kb = version_key(ecosystem, a), version_key(ecosystem, b)
    return (ka > kb) - (ka < kb)


def _bound(ecosystem: str, version: str | None) -> VersionKey | None:
    # An unreadable bound must not crash a scan nor widen a range: the caller skips it.
    if version is None:
        return None
    try:
        return version_key(ecosystem, version)
    except VersionError:
        return None


def is_affected(
    ecosystem: str,
    version: str,
    ranges: Sequence[AffectedRange],
    versions: Sequence[str] = (),
) -> bool:
    """Whether an installed ``version`` is affected, by OSV semantics.

    Affected when it equals a listed version, or lies in a range: ``introduced <= v <
    fixed`` or ``introduced <= v <= last_affected``; ``introduced`` of None or ``"0"``
    is the beginning, and a range with neither bound is open ended.  A range whose bound
    cannot be read is skipped.  Raises :class:`VersionError` if ``version`` is unreadable.
    """
    key = version_key(ecosystem, version)
    for listed in versions:
        if listed == version or _bound(ecosystem, listed) == key:
            return True
    for r in ranges:
        if r.introduced not in (None, "0"):
            low = _bound(ecosystem, r.introduced)
            if low is None or key < low or (r.introduced_excluded and key == low):
                continue
        if r.fixed is not None:
            fixed = _bound(ecosystem, r.fixed)
            if fixed is not None and key < fixed:
                return True
            continue
        if r.last_affected is not None:
            last = _bound(ecosystem, r.last_affected)
            if last is not None and key <= last:
                return True
            continue
        return True  # open ended: no fix yet
    return False
