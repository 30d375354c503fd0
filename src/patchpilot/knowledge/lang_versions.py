"""Composer's and Maven's own version orderings, transcribed for the matcher.

* Packagist: Composer normalises a version (``VersionParser::normalize``: ``v1.0RC1`` ->
  ``1.0.0.0-RC1``) and compares normalised strings with PHP's ``version_compare`` (via
  ``Constraint::versionCompare``).  :func:`composer_key` does both once and returns a tuple
  whose order is ``version_compare``'s.
  https://github.com/composer/semver/blob/main/src/VersionParser.php,
  https://www.php.net/manual/en/function.version-compare.php (php-src ext/standard/versioning.c)
* Maven: ``org.apache.maven.artifact.versioning.ComparableVersion`` (the Maven 4 line with
  the ``release``/``ga``/``final`` release qualifiers, combination items such as ``rc1``
  and ``.X`` read as ``-X``).  Its order is defined item by item between lists, strings,
  numbers and "combinations" and does not reduce to one tuple, so :func:`maven_key` returns
  a pre-parsed :class:`MavenVersion` whose comparison is the transcribed ``compareTo``.
  https://github.com/apache/maven/blob/master/compat/maven-artifact/src/main/java/org/apache/maven/artifact/versioning/ComparableVersion.java
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ComposerBranch", "MavenVersion", "composer_key", "composer_normalize", "maven_key"]


# --------------------------------------------------------------------------------------
# Composer (Packagist)
# --------------------------------------------------------------------------------------

class ComposerBranch(ValueError):
    """A ``dev-<branch>`` version: Composer orders it against nothing (never matches)."""


_MODIFIER = r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*+)?)?([.-]?dev)?"
_CLASSICAL = re.compile(r"v?(\d{1,5}+)(\.\d++)?(\.\d++)?(\.\d++)?" + _MODIFIER, re.I)
_DATE = re.compile(r"v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3}){0,2})" + _MODIFIER, re.I)
_ALIAS = re.compile(r"([^,\s]++) ++as ++([^,\s]++)")
_STABILITY_FLAG = re.compile(r"@(?:stable|RC|beta|alpha|dev)$", re.I)
_BUILD = re.compile(r"([^,\s+]++)\+\S++")
_DEV_SUFFIX = re.compile(r"(.*?)[.-]?dev", re.I | re.S)
_BRANCH = re.compile(r"v?(\d++)(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?", re.I)
_EXPAND = {"a": "alpha", "b": "beta", "p": "patch", "pl": "patch", "rc": "RC"}


def _normalize_branch(name: str) -> str:
    """``VersionParser::normalizeBranch``: ``1.x`` -> ``1.9999999.9999999.9999999-dev``."""
    name = name.strip()
    m = _BRANCH.fullmatch(name)
    if not m:
        return "dev-" + name
    parts = [g.replace("*", "x").replace("X", "x") if g is not None else ".x"
             for g in m.groups()]
    return "".join(parts).replace("x", "9999999") + "-dev"


def composer_normalize(version: str) -> str:
    """``VersionParser::normalize``: the normalised form Composer compares.

    ``1.0.0RC1dev`` -> ``1.0.0.0-RC1-dev``, ``v2.1`` -> ``2.1.0.0``, ``1.2.3.pl3`` ->
    ``1.2.3.0-patch3``, ``2010-01-02`` -> ``2010.01.02``, ``dev-main`` stays a branch.
    Raises ValueError for what Composer calls an invalid version string.
    """
    v = version.strip()
    if m := _ALIAS.fullmatch(v):
        v = m.group(1)  # "1.0.x-dev as 1.0.5": the real version is the first
    if m := _STABILITY_FLAG.search(v):
        v = v[:m.start()]
    if v in ("master", "trunk", "default"):
        v = "dev-" + v
    if v[:4].lower() == "dev-":
        return "dev-" + v[4:]
    if m := _BUILD.fullmatch(v):
        v = m.group(1)  # build metadata never counts
    index = 0
    if m := _CLASSICAL.fullmatch(v):
        out = m.group(1) + "".join(g or ".0" for g in m.group(2, 3, 4))
        index = 5
    elif m := _DATE.fullmatch(v):
        out = re.sub(r"\D", ".", m.group(1))
        index = 2
    if m and index:
        stability, number, dev = m.group(index, index + 1, index + 2)
        if stability:
            if stability == "stable":
                return out
            lowered = stability.lower()
            out += "-" + _EXPAND.get(lowered, lowered) + (number or "").lstrip(".-")
        if dev:
            out += "-dev"
        return out
    if m := _DEV_SUFFIX.fullmatch(v):
        branch = _normalize_branch(m.group(1))
        if "dev-" not in branch:
            return branch
    raise ValueError(f"invalid version string {version!r}")


# php-src versioning.c: the order of the special forms, matched as a *prefix* (strncmp),
# so "patch" reads as "p".  A number is "#" (4); any other word is -1.
_PHP_FORMS = (("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3), ("rc", 3),
              ("#", 4), ("pl", 5), ("p", 5))
_PHP_NUMBER = 4
_PHP_END = (_PHP_NUMBER, -1)  # see _php_key


def _php_form(word: str) -> int:
    for name, order in _PHP_FORMS:
        if word.startswith(name):
            return order
    return -1


def _php_canonical(version: str) -> list[str]:
    """php_canonicalize_version, then split on '.': ``1.0rc1`` -> ``["1", "0", "rc", "1"]``.

    ``-``, ``_`` and ``+`` and every other non-alphanumeric character become ``.``, and a
    ``.`` goes between a digit and a non-digit.
    """
    out = [version[0]]
    last = version[0]
    for c in version[1:]:
        if c in "-_+" or not c.isalnum():
            if out[-1] != ".":
                out.append(".")
        elif last != "." and c != "." and last.isdigit() != c.isdigit():
            if out[-1] != ".":
                out.append(".")
            out.append(c)
        else:
            out.append(c)
        last = c
    return [part for part in "".join(out).split(".") if part]


def _php_key(version: str) -> tuple[int, ...]:
    """A tuple ordered as PHP's ``version_compare`` orders ``version``.

    Each part becomes (form, value): numbers (form 4) by value, words by their form.  When
    one version runs out, ``version_compare`` decides by the other's next part alone: a
    number makes it newer, a word compares its form against a number's (so ``1.0-alpha`` <
    ``1.0`` < ``1.0-patch1`` < ``1.0.1``).  The end marker (4, -1) encodes exactly that.
    """
    out: list[int] = []
    for part in _php_canonical(version):
        if part[0].isdigit():
            digits = re.match(r"\d+", part)
            out += (_PHP_NUMBER, int(digits.group()) if digits else 0)
        else:
            out += (_php_form(part), 0)
    out += _PHP_END
    return tuple(out)


def composer_key(version: str) -> tuple[int, ...]:
    """Composer's order of ``version``: normalised, then as PHP's ``version_compare``.

    ``6.3.0.0`` < ``6.3.0.1``; ``1.0-beta9`` < ``1.0-BETA10``; ``dev`` < ``alpha`` <
    ``beta`` < ``RC`` < (stable) < ``patch``/``pl``.  Raises :class:`ComposerBranch` for a
    ``dev-`` branch (Composer's constraints never match one) and ValueError for a string
    Composer rejects.
    """
    normalized = composer_normalize(version)
    if normalized.startswith("dev-"):
        raise ComposerBranch(f"{version!r} is a branch, which Composer orders against nothing")
    return _php_key(normalized)


# --------------------------------------------------------------------------------------
# Maven: ComparableVersion
# --------------------------------------------------------------------------------------

# Item kinds.  Java's Int/Long/BigInteger items are one kind here: their type order (int <
# long < big) is also their numeric order, since leading zeros are stripped first.
_NUM, _STR, _LIST, _COMB = range(4)
_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_RELEASE_QUALIFIERS = ("ga", "final", "release")
_RELEASE_INDEX = str(_QUALIFIERS.index(""))
_ALIASES = {"cr": "rc"}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_MAX_LENGTH = 256  # ComparableVersion.MAX_VERSION_LENGTH


def _qualifier_rank(q: str) -> str:
    """``StringItem.comparableQualifier``: compared as a string, as Maven does."""
    if q in _RELEASE_QUALIFIERS:
        return _RELEASE_INDEX
    if q in _QUALIFIERS:
        return str(_QUALIFIERS.index(q))
    return f"{len(_QUALIFIERS)}-{q}"


class _Item:
    """One item of a parsed version: a number, a qualifier, a combination or a list."""

    __slots__ = ("kind", "value", "rank", "part")

    def __init__(self, kind: int, value: Any, rank: str = "", part: _Item | None = None):
        self.kind = kind
        self.value = value  # int (_NUM), str (_STR), _Item (_COMB string part), list (_LIST)
        self.rank = rank  # comparableQualifier of a _STR
        self.part: _Item = part or self  # the digit part of a _COMB (else unused)

    def is_null(self) -> bool:
        if self.kind == _NUM:
            return bool(self.value == 0)
        if self.kind == _STR:
            return not self.value
        if self.kind == _LIST:
            return not self.value
        return False


_ZERO = _Item(_NUM, 0)


def _string_item(value: str, followed_by_digit: bool) -> _Item:
    if followed_by_digit and len(value) == 1:
        value = _SHORT.get(value, value)  # a1 = alpha-1, b1 = beta-1, m1 = milestone-1
    value = _ALIASES.get(value, value)
    return _Item(_STR, value, _qualifier_rank(value))


def _number_item(digits: str) -> _Item:
    return _Item(_NUM, int(digits) if digits else 0)


def _combination_item(value: str) -> _Item:
    index = next((i for i, c in enumerate(value) if c.isdecimal()), 0)
    return _Item(_COMB, _string_item(value[:index], True), part=_number_item(value[index:]))


def _parse_item(combination: bool, digit: bool, buf: str) -> _Item:
    if combination:
        return _combination_item(buf.replace("-", ""))
    if digit:
        return _number_item(buf)
    return _string_item(buf, False)


def _sign(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _cmp(a: _Item, b: _Item | None) -> int:
    """``Item.compareTo`` of every item kind; ``b`` None is "nothing left" (padding)."""
    kind = a.kind
    if kind == _NUM:
        if b is None:
            return 0 if a.value == 0 else 1  # 1.0 == 1, 1.1 > 1
        return _sign(a.value, b.value) if b.kind == _NUM else 1  # 1.1 > 1-sp, 1.1 > 1-1
    if kind == _STR:
        if b is None:
            return _sign(a.rank, _RELEASE_INDEX)  # 1-rc < 1, 1-sp > 1
        if b.kind == _NUM:
            return -1
        if b.kind == _STR:
            return _sign(a.rank, b.rank)
        if b.kind == _COMB:
            result = _cmp(a, b.value)
            if result == 0:
                if _cmp(a, None) == 0:
                    return -_cmp(b.part, None)
                return -1
            return result
        return -_cmp(b, a)  # a list
    if kind == _COMB:
        if b is None:
            result = _cmp(a.value, None)  # 1-rc1 < 1, 1-ga1 > 1
            return _cmp(a.part, None) if result == 0 else result
        if b.kind == _NUM:
            return -1
        if b.kind == _STR:
            result = _cmp(a.value, b)
            if result == 0:
                return _cmp(a.part, None) if _cmp(a.value, None) == 0 else 1  # X1 > X
            return result
        if b.kind == _COMB:
            result = _cmp(a.value, b.value)
            return _cmp(a.part, b.part) if result == 0 else result
        return -_cmp(b, a)
    # a list
    items: list[_Item] = a.value
    if b is None:
        for item in items:  # the whole list against nothing, MNG-6964
            result = _cmp(item, None)
            if result:
                return result
        return 0
    if b.kind == _NUM:
        return -1  # 1-1 < 1.0.x
    if b.kind in (_STR, _COMB):
        result = _cmp(items[0], b) if items else -_cmp(b, None)
        for item in items[1:]:
            if result:
                break
            result = _cmp(item, None)
        return result
    other: list[_Item] = b.value
    for i in range(max(len(items), len(other))):
        left = items[i] if i < len(items) else None
        right = other[i] if i < len(other) else None
        if left is None:
            result = 0 if right is None else -_cmp(right, None)
        else:
            result = _cmp(left, right)
        if result:
            return result
    return 0


def _normalize(items: list[_Item]) -> None:
    """``ListItem.normalize``: drop null items (0, "", empty lists) where Maven does."""
    for i in range(len(items) - 1, -1, -1):
        if not items[i].is_null():
            continue
        if i == len(items) - 1 or items[i + 1].kind == _STR:
            del items[i]
        elif items[i + 1].kind == _LIST:
            nxt: list[_Item] = items[i + 1].value
            if not nxt:
                # Java reads get(0) of an empty list here and throws; so do we.
                raise ValueError("ComparableVersion cannot order this version")
            if nxt[0].kind in (_COMB, _STR):
                del items[i]
    if len(items) == 1 and items[0].kind == _LIST:
        items[:] = items[0].value  # a removed zero prefix leaves no extra nesting


def _maven_parse(version: str) -> _Item:
    """``ComparableVersion.parseVersion``: the item tree of ``version``.

    ``.`` and ``-`` separate items, ``-`` (and a digit-to-letter switch) opens a sub-list,
    a letter run followed by digits is one combination item (``rc1``, and ``rc-1`` too).
    """
    if len(version) > _MAX_LENGTH:
        raise ValueError(f"longer than {_MAX_LENGTH} characters")
    v = version.lower()
    root = _Item(_LIST, [])
    current: list[_Item] = root.value
    stack = [current]
    digit = combination = False
    start = 0

    def open_list() -> list[_Item]:
        new = _Item(_LIST, [])
        current.append(new)
        stack.append(new.value)
        return new.value  # type: ignore[no-any-return]

    for i, c in enumerate(v):
        if c == ".":
            current.append(_ZERO if i == start else _parse_item(combination, digit, v[start:i]))
            combination = False
            start = i + 1
        elif c == "-":
            if i == start:
                current.append(_ZERO)
            else:
                if not digit and i != len(v) - 1 and v[i + 1].isdecimal():
                    combination = True  # X-1 is read as X1
                    continue
                current.append(_parse_item(combination, digit, v[start:i]))
            start = i + 1
            if current:
                current = open_list()
            combination = False
        elif "0" <= c <= "9":
            if not digit and i > start:
                combination = True  # X1
                if current:
                    current = open_list()
            digit = True
        else:
            if digit and i > start:
                current.append(_parse_item(combination, True, v[start:i]))
                start = i
                current = open_list()
                combination = False
            digit = False
    if len(v) > start:
        if not digit and current:
            current = open_list()  # 1.0.0.X1 < 1.0.0-X2: .X reads as -X
        current.append(_parse_item(combination, digit, v[start:]))
    while stack:
        _normalize(stack.pop())
    return root


class MavenVersion:
    """A parsed Maven version, ordered as ``ComparableVersion.compareTo`` orders it."""

    __slots__ = ("items", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.items = _maven_parse(text)

    def compare(self, other: MavenVersion) -> int:
        """-1, 0 or 1, as Maven's ``compareTo``."""
        return _cmp(self.items, other.items)

    def __lt__(self, other: MavenVersion) -> bool:
        return _cmp(self.items, other.items) < 0

    def __le__(self, other: MavenVersion) -> bool:
        return _cmp(self.items, other.items) <= 0

    def __gt__(self, other: MavenVersion) -> bool:
        return _cmp(self.items, other.items) > 0

    def __ge__(self, other: MavenVersion) -> bool:
        return _cmp(self.items, other.items) >= 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MavenVersion):
            return NotImplemented
        return _cmp(self.items, other.items) == 0

    def __hash__(self) -> int:
        return _ordering_hash(self.items)

    def __repr__(self) -> str:
        return f"MavenVersion({self.text!r})"


def _ordering_hash(item: _Item) -> int:
    """``ComparableVersion.orderingHash``: equal under compareTo implies equal hashes."""
    if item.kind == _LIST:
        items: list[_Item] = item.value
        end = len(items)
        while end and _cmp(items[end - 1], None) == 0:
            end -= 1  # trailing items equal to nothing do not count: 1-ga == 1
        if end == 1:
            return _ordering_hash(items[0])
        return hash(tuple(_ordering_hash(x) for x in items[:end]))
    if item.kind == _STR:
        return hash(item.rank)
    if item.kind == _COMB:
        if _cmp(item.value, None) == 0 and item.part.is_null():
            return _ordering_hash(item.value)
        return hash((item.value.rank, _ordering_hash(item.part)))
    return hash(item.value)


def maven_key(version: str) -> MavenVersion:
    """The pre-parsed, comparable Maven version (raises ValueError where Maven throws)."""
    s = version.strip()
    if not s:
        raise ValueError("empty")
    return MavenVersion(s)
