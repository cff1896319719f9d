"""Usernames people cannot tell apart: NFKC form, mixed scripts, confusable skeletons.

Uses the Unicode confusables data (TR39) and script data of `confusable-homoglyphs`.
A name's *skeleton* maps every character to one representative of its class of
look-alikes, so `alice` and `аlice` (Cyrillic а), `bill` and `bi11`, or `paypal` and
`pаypаl` share one. The library lists, for each character, the characters it may be
confused with; the classes are the connected groups of that relation (single code
points; the few multi-character look-alikes such as `rn`/`m` are not covered), and the
representative of a class is its smallest ASCII letter if it has one (so case folding
applies after it: `0` -> `O` -> `o`), else its smallest member. Mapping and case folding
alternate until nothing changes.
"""

import unicodedata
from functools import lru_cache

from confusable_homoglyphs import categories, confusables

#: Script aliases that may mix with any one script: digits, `_`, `.`, combining marks.
NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})


def normalize(username: str) -> str:
    """The NFKC form, as Django's `AbstractBaseUser.normalize_username` and login form use."""
    return unicodedata.normalize("NFKC", username)


def is_mixed_script(username: str) -> bool:
    """More than one script besides the neutral ones (e.g. Latin and Cyrillic letters)."""
    scripts = {categories.alias(char) for char in username} - NEUTRAL_SCRIPTS
    return len(scripts) > 1


def _rank(char: str) -> tuple:
    return (not (char.isascii() and char.isalpha()), char)


@lru_cache(maxsize=1)
def _representatives() -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(char: str) -> str:
        while parent.get(char, char) != char:
            char = parent[char]
        return char

    for char, found in confusables.confusables_data.items():
        for entry in found:
            other = entry["c"].replace("\u200e", "")  # the data wraps RTL glyphs in LRM
            if len(other) != 1:
                continue
            a, b = find(char), find(other)
            if a != b:
                low, high = sorted((a, b), key=_rank)
                parent[high] = low
    return {char: find(char) for char in parent}


def skeleton(username: str) -> str:
    """The look-alike class of a name: equal for names a reader could mistake for each
    other (and for names differing only in letter case)."""
    reps = _representatives()
    current = unicodedata.normalize("NFD", normalize(username))
    for _ in range(4):
        mapped = "".join(reps.get(char, char) for char in current).casefold()
        mapped = unicodedata.normalize("NFD", mapped)
        if mapped == current:
            break
        current = mapped
    return current
