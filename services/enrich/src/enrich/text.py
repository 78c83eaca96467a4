"""Text signals of a verbatim: its language and the signals notify's rules use.

Both are lexicon-based, on purpose. Verbatims are short, mixed (French with Wolof or
Bambara words, Arabic in Latin letters, "Arabizi", like "flousi ma wsaltch"), and
statistical language identifiers trained on long text mistake them; an Arabizi lexicon was
needed anyway. A lexicon is also fast (tens of microseconds per verbatim), deterministic,
and reviewed like code (``enrich.lexicon``, versioned by ``LEXICON_VERSION``).

Signals are found by patterns per language. A pattern that names a problem ("fraude",
"coupure") is ignored when a negation cue stands just before it ("pas de fraude",
"no problem with my money"); patterns that carry their own negation ("n'a rien reçu",
"ma wsaltch") are marked as such and never negated.
"""

from __future__ import annotations

import re
import unicodedata

from enrich.lexicon import (
    FRAGMENTS_BY_PREFIX,
    LEXICON,
    LITERAL_RUN,
    NEGATION,
    PATTERNS_BY_FRAGMENT,
    STOPWORDS,
)
from terrain_contracts.vocabulary import Signal

_WORD = re.compile(r"[a-z0-9']+")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN_LETTER = re.compile(r"[a-z]")
_ARABIZI = re.compile(r"[a-z][379]|[379][a-z]")
# Each function word and the languages it belongs to.
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {}
for _lang, _vocabulary in STOPWORDS.items():
    for _word in _vocabulary:
        _LANGUAGES_OF[_word] = (*_LANGUAGES_OF.get(_word, ()), _lang)
_COMBINING = re.compile(r"[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]+")


def fold(text: str) -> str:
    """Lowercase without accents, apostrophes unified: the form every pattern matches."""
    if text.isascii():  # most verbatims: skip the Unicode work
        return text.lower().replace("`", "'")
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _COMBINING.sub("", decomposed).replace("\u2019", "'").replace("`", "'")


def detect_language(text: str | None, hint: str | None = None) -> str | None:
    """BCP 47 tag of the verbatim: ``fr``, ``en``, ``pt``, ``ar``, ``ar-Latn``, ``mg``.

    Arabic script decides alone. Otherwise the language whose function words cover the
    most words wins; without any, the app's own guess (``hint``) is kept.
    """
    if not text or not text.strip():
        return hint
    folded = fold(text)
    arabic = len(_ARABIC_LETTER.findall(text))
    if arabic and arabic >= len(_LATIN_LETTER.findall(folded)):
        return "ar"
    words = _WORD.findall(folded)
    if not words:
        return hint
    # One pass over the words, not one per language (a third of the time of a visit's
    # text signals went to those five passes).
    scores = dict.fromkeys(STOPWORDS, 0)
    for word in words:
        for lang in _LANGUAGES_OF.get(word, ()):
            scores[lang] += 1
    # Arabizi often writes sounds with digits (3 = ain, 7 = ha, 9 = qaf); a letter next to
    # a digit is always within one word, so the whole text is tested first.
    if _ARABIZI.search(folded):
        scores["ar-Latn"] += sum(1 for w in words if _ARABIZI.search(w))
    best = max(scores, key=lambda lang: scores[lang])
    if scores[best] == 0:
        return hint
    return best


def _fragments_in(folded: str) -> set[str]:
    """The lexicon's fragments that occur in the text: a fragment is a run of the same
    letters as a run of the text, so it occurs iff one such run has it at some position."""
    present: set[str] = set()
    for run in LITERAL_RUN.findall(folded):
        for start in range(len(run) - 2):
            for fragment in FRAGMENTS_BY_PREFIX.get(run[start : start + 3], ()):
                if run.startswith(fragment, start):
                    present.add(fragment)
    return present


def detect_signals(text: str | None) -> list[Signal]:
    """Signals found in the verbatim, in the canonical order of ``Signal``."""
    if not text:
        return []
    folded = fold(text)
    # Only the patterns one of whose fragments occurs can match; which signal a pattern
    # finds does not depend on the order they are tried in.
    candidates = {i for f in _fragments_in(folded) for i in PATTERNS_BY_FRAGMENT[f]}
    found: set[Signal] = set()
    for index in sorted(candidates):
        pattern = LEXICON[index]
        if pattern.signal in found:
            continue
        for match in pattern.regex.finditer(folded):
            if pattern.negatable and NEGATION.search(
                folded[max(0, match.start() - 40) : match.start()]
            ):
                continue
            found.add(pattern.signal)
            break
    return [signal for signal in Signal if signal in found]
