# The lexicon is data: one pattern per line reads and diffs better than wrapped pieces.
# ruff: noqa: E501
"""The lexicon of enrich's text signals: function words per language, and the patterns
that name each signal in French, English, Portuguese, Arabic and Arabic in Latin letters.

It is reviewed like code: every change bumps ``LEXICON_VERSION``, stored with each
enrichment, so an analyst knows which rules tagged a row. A pattern that names a problem
("fraude", "coupure") is cancelled by a ``NEGATION`` cue just before it; a pattern that
carries its own negation ("n'a rien reçu", "ma wsaltch") is built ``negatable=False``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from terrain_contracts.vocabulary import Signal

LEXICON_VERSION = "2026.11.1"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frequent function words (and, for Arabizi, frequent spellings): enough to tell these
# languages apart in a sentence or two. Malagasy is recognised too (MG market).
STOPWORDS: dict[str, frozenset[str]] = {
    "fr": _words(
        "le la les un une des du de et est pas je j'ai ai mon ma mes il elle on nous vous "
        "ils que qui ne n'a n'est rien avec pour dans sur au aux ce cette c'est plus tres "
        "mais ou sont fait depuis toujours jamais argent reseau aucun"
    ),
    "en": _words(
        "the a an and is are was were i my me it not no with for in on to of this that "
        "have has had been they we you your but never always money network service "
        "from at there what"
    ),
    "pt": _words(
        "o a os as um uma e nao sim eu meu minha com para em no na do da dos das que "
        "foi esta sao tem ja nunca sempre dinheiro rede mas muito ate nada"
    ),
    "ar-Latn": _words(
        "ana enti nta inta howa hiya mafich mafish makaynch ma mch mich machi wlh wallah "
        "flousi flous lflous floussi bzaf barcha barsha 3andi 3ndi andi kifach kifeh chno "
        "chnou wach ya3ni walo dima daba tawa lyoum lbareh mazal ghir bech bach rani "
        "raho 7ata 9bel ba3d khouya sa7bi reseau lreseau ktir kteer mesh msh 3ayez "
        "kaman leh ezay"
    ),
    "mg": _words(
        "ny ary tsy aho ahy izy ianao isika izahay amin'ny ho dia fa ve koa ilay efa "
        "vola tambajotra mbola foana"
    ),
}


@dataclass(frozen=True, slots=True)
class Pattern:
    """One way a verbatim names a signal, matched against folded text (``text.fold``)."""

    signal: Signal
    regex: re.Pattern[str]
    negatable: bool
    # Literal pieces of the pattern: a text that contains none of them is not searched
    # (a substring test is ~50 ns, a regex scan of a verbatim several microseconds).
    fragments: frozenset[str]


_ESCAPE = re.compile(r"\\.")
LITERAL_RUN = re.compile(r"[a-z'\u0600-\u06ff]{3,}")


def _p(signal: Signal, pattern: str, *, negatable: bool = True) -> Pattern:
    # Patterns match folded text, so they are folded the same way (without casefolding,
    # which would turn \B into \b): "أ" in a pattern must match the "ا" of folded text.
    decomposed = unicodedata.normalize("NFKD", pattern)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    fragments = frozenset(LITERAL_RUN.findall(_ESCAPE.sub(" ", bare)))
    return Pattern(signal, re.compile(bare), negatable, fragments)


# Negation cues that cancel a problem named right after them (within a few words).
NEGATION = re.compile(
    r"(?:\b(?:no|not|never|without|none|zero|pas|aucun\w*|jamais|sans|ni|nao|sem|nunca|"
    r"nenhum\w*|mafich|mafish|makaynch|walo|mouch|mich|mch)\b|لا|ما في|مافي|مفيش|بدون|"
    r"don't|didn't have|n'ai pas eu|ai jamais eu)"
    r"(?:\W+\w+){0,3}\W*$"
)

LEXICON: tuple[Pattern, ...] = (
    # money_lost: money sent, debited or withdrawn that did not arrive or was taken.
    _p(
        Signal.MONEY_LOST,
        r"\b(?:n'?(?:a|ai|avons|ont)|ne l'a)\s+(?:rien|jamais|pas)\s+(?:ete\s+)?(?:recu|arrive|credite)",
        negatable=False,
    ),
    _p(
        Signal.MONEY_LOST,
        r"\b(?:argent|montant|transfert|solde|credit|depot|retrait)\b[^.!?]{0,40}\b(?:perdu|disparu|debite|bloque|envole|vole|pas arrive|jamais arrive|pas recu)",
        negatable=False,
    ),
    _p(
        Signal.MONEY_LOST,
        r"\b(?:debite|preleve)\w*\b[^.!?]{0,40}\b(?:sans|mais|rien|pas)",
        negatable=False,
    ),
    _p(
        Signal.MONEY_LOST,
        r"\b(?:perdu|lost)\s+(?:mon|mes|my|\d[\d ]*)\s*(?:argent|money|fcfa|francs|cfa|ariary|dinars?|pounds?)?",
        negatable=False,
    ),
    _p(
        Signal.MONEY_LOST,
        r"\b(?:money|transfer|payment|balance|deposit|airtime)\b[^.!?]{0,40}\b(?:never arrived|did ?n[o']t arrive|not received|never received|disappeared|vanished|was deducted|got deducted|lost|missing|stuck)",
        negatable=False,
    ),
    _p(
        Signal.MONEY_LOST,
        r"\b(?:deducted|debited|charged)\b[^.!?]{0,40}\b(?:but|never|not|nothing)",
        negatable=False,
    ),
    _p(
        Signal.MONEY_LOST,
        r"\b(?:never|didn'?t|did not|has not|hasn'?t)\s+(?:receive|get|got)\b",
        negatable=False,
    ),
    _p(
        Signal.MONEY_LOST,
        r"\b(?:dinheiro|transferencia|saldo|pagamento)\b[^.!?]{0,40}\b(?:nao chegou|nunca chegou|desapareceu|perdido|sumiu|foi descontado|nao recebeu)",
        negatable=False,
    ),
    _p(Signal.MONEY_LOST, r"\b(?:nao|nunca)\s+(?:recebi|recebeu|chegou)\b", negatable=False),
    _p(
        Signal.MONEY_LOST,
        r"\b(?:flous\w*|lflous|floos|floosi|l?ma?bl[a3]gh?)\b[^.!?]{0,30}\b(?:ma\s*(?:wsl|wsel|ws[ae]l)\w*|mawsl\w*|ma\s*jatch|ma\s*jatsh|mchat|tsr9o|dahbou|ta7o|ra7o|daya3|dey3)",
        negatable=False,
    ),
    _p(
        Signal.MONEY_LOST,
        r"\b(?:ma\s*(?:wsl|wsel|wsal|wselt)\w*|mawsl\w*)\b[^.!?]{0,20}\b(?:flous\w*|lflous|floos\w*)",
        negatable=False,
    ),
    _p(
        Signal.MONEY_LOST,
        r"(?:الفلوس|فلوسي|المبلغ|التحويل|الرصيد)[^.!?]{0,30}(?:ما وصل|ما وصلت|موصلتش|ماوصلتش|لم يصل|لم تصل|ضاع|ضاعت|اختف|اتخصم|انخصم)",
        negatable=False,
    ),
    _p(Signal.MONEY_LOST, r"(?:لم|ما)\s*(?:يصل|تصل|وصل|وصلت|استلم)", negatable=False),
    # fraud: scams, impostors, SIM swaps, unauthorised withdrawals.
    _p(
        Signal.FRAUD,
        r"\b(?:arnaque\w*|escroc\w*|escroquerie|fraude\w*|frauduleu\w*|arnaqueur\w*|brouteur\w*)",
    ),
    _p(
        Signal.FRAUD,
        r"\b(?:scam\w*|fraud\w*|swindl\w*|con ?man|conmen|impostor\w*|imposter\w*|phishing)",
    ),
    _p(Signal.FRAUD, r"\b(?:golpe\w*|burla\w*|fraude\w*|vigarista\w*|enganad\w*)"),
    _p(
        Signal.FRAUD,
        r"\b(?:nasab\w*|nassab\w*|nsab|tnasab|7aramiya|ḥaramiya|chfar|sraq\w*|serq\w*|khda3ni|khed3ouni|naṣṣab)",
    ),
    _p(Signal.FRAUD, r"(?:نصب|نصاب|احتيال|محتال|اختراق|سرقة|سرقو|سرقوا|تزوير)"),
    _p(
        Signal.FRAUD,
        r"\b(?:se (?:faisant|faisait) passer pour|pretendait etre|pretending to be|posing as|se passant pour|fingindo ser)",
    ),
    _p(
        Signal.FRAUD,
        r"\b(?:code (?:secret|pin)|pin code|my pin|mon pin|otp)\b[^.!?]{0,40}\b(?:demande|asked|donne|gave|vole|stolen|pediram)",
    ),
    _p(
        Signal.FRAUD,
        r"\b(?:sim swap|duplicata de (?:ma|la) sim|quelqu'un a (?:retire|pris)|someone (?:withdrew|took|used my account)|retrait (?:que je n'ai pas fait|non autorise)|unauthori[sz]ed (?:withdrawal|transaction))",
    ),
    # network_outage: no service at all, cuts that last.
    _p(
        Signal.NETWORK_OUTAGE,
        r"\b(?:pas|plus|aucun|zero)\s+(?:de\s+|d')?(?:reseau|signal|connexion|internet|couverture)",
        negatable=False,
    ),
    _p(
        Signal.NETWORK_OUTAGE,
        r"\b(?:reseau|internet|connexion|signal)\b[^.!?]{0,30}\b(?:coupe|coupure|tombe|absent|inexistant|mort|en panne|ne passe pas|ne marche pas|ne fonctionne pas)",
        negatable=False,
    ),
    _p(
        Signal.NETWORK_OUTAGE,
        r"\b(?:coupure|panne|perturbation)s?\s+(?:de|du|totale|generale|reseau)",
    ),
    _p(
        Signal.NETWORK_OUTAGE,
        r"\b(?:no|zero)\s+(?:network|signal|coverage|service|internet|connection|bars)\b(?!\s+(?:problem|issue))",
        negatable=False,
    ),
    _p(
        Signal.NETWORK_OUTAGE,
        r"\b(?:network|internet|signal|service|connection)\b[^.!?]{0,30}\b(?:is down|went down|was down|been down|cut off|dead|not working|keeps dropping|disappears)",
        negatable=False,
    ),
    _p(Signal.NETWORK_OUTAGE, r"\b(?:outage|blackout)s?\b"),
    _p(
        Signal.NETWORK_OUTAGE,
        r"\b(?:sem|nao ha|nao tem)\s+(?:rede|sinal|internet|cobertura)",
        negatable=False,
    ),
    _p(
        Signal.NETWORK_OUTAGE,
        r"\b(?:rede|internet|sinal)\b[^.!?]{0,30}\b(?:caiu|cortad\w*|nao funciona|em baixo|desapareceu|morta)",
        negatable=False,
    ),
    _p(
        Signal.NETWORK_OUTAGE,
        r"\b(?:mafich|mafish|makaynch|makaynsh|ma\s*kaynch|mfamech|mafamech|mafamach|mfich|mfish)\s+(?:l?reseau|rizo|risou|reso|network|l?internet|lconnexion|signal)",
        negatable=False,
    ),
    _p(
        Signal.NETWORK_OUTAGE,
        r"\b(?:l?reseau|rizo|risou|reso|network|l?internet)\b[^.!?]{0,20}\b(?:ma\w*\s*ch\b|maykhdmch|mayekhdemch|ma\s*yekhdemch|t9ta3|ta7|mayemchich|mch\s*khadem|wa9ef|meyet)",
        negatable=False,
    ),
    _p(
        Signal.NETWORK_OUTAGE,
        r"(?:مفيش شبكة|مافيش شبكة|لا توجد شبكة|ما في شبكة|مافي شبكة|ماكاينش الريزو|الشبكة (?:مقطوعة|واقعة|طايحة|مش شغالة|ما تخدمش)|انقطاع (?:الشبكة|الانترنت|الإنترنت)|النت (?:مقطوع|مش شغال|واقع))",
        negatable=False,
    ),
    # safety_hazard: danger to people: exposed cables, falling masts, fire, electrocution.
    _p(
        Signal.SAFETY_HAZARD,
        r"\b(?:cable|fil|fils|poteau|pylone|antenne|mat|armoire|groupe electrogene)s?\b[^.!?]{0,40}\b(?:denude|arrache|tombe|au sol|par terre|penche|menace de tomber|electrocut\w*|etincel\w*|feu|brule|fuite)",
        negatable=False,
    ),
    _p(
        Signal.SAFETY_HAZARD,
        r"\b(?:electrocut\w*|incendie|danger\w*|blesse\w*|accident\w*|risque de chute)",
    ),
    _p(
        Signal.SAFETY_HAZARD,
        r"\b(?:cable|wire|wires|pole|mast|tower|antenna|generator|cabinet)s?\b[^.!?]{0,40}\b(?:exposed|hanging|fell|fallen|on the ground|collaps\w*|leaning|sparking|sparks|on fire|burning|leak\w*)",
        negatable=False,
    ),
    _p(
        Signal.SAFETY_HAZARD,
        r"\b(?:electrocut\w*|fire hazard|dangerous|hazard\w*|injur\w*|children could)",
    ),
    _p(
        Signal.SAFETY_HAZARD,
        r"\b(?:cabo|fio|fios|poste|torre|antena|gerador)s?\b[^.!?]{0,40}\b(?:exposto\w*|caid\w*|no chao|pendurad\w*|a cair|faisca\w*|fogo|incendio)",
        negatable=False,
    ),
    _p(Signal.SAFETY_HAZARD, r"\b(?:perigo\w*|electrocut\w*|eletrocut\w*|incendio|ferid\w*)"),
    _p(Signal.SAFETY_HAZARD, r"\b(?:khatar|5atar|khatir|5tar|khatira|mkhattar)"),
    _p(Signal.SAFETY_HAZARD, r"(?:خطر|خطير|خطيرة|حريق|صعق|مكشوف|مكشوفة|سقط|وقع العمود|الكابل)"),
    # churn_threat: the customer says they will leave for a competitor.
    _p(
        Signal.CHURN_THREAT,
        r"\b(?:je vais|je veux|on va|nous allons|je compte|pret a|prete a)\s+(?:\w+\s+){0,2}(?:changer|partir|quitter|passer (?:chez|a)|resilier|aller chez)",
        negatable=False,
    ),
    _p(
        Signal.CHURN_THREAT,
        r"\b(?:je (?:quitte|resilie|change d'operateur|pars chez|passe chez)|changer d'operateur|chez la concurrence|chez (?:mtn|moov|free|wave|expresso|airtel|vodacom|tigo|ooredoo|maroc telecom|inwi|zain|umniah|vodafone|etisalat|we|telma|airtel|africell|lonestar|mascom|btc|telecel|nexttel|camtel|celtiis))",
        negatable=True,
    ),
    _p(
        Signal.CHURN_THREAT,
        r"\b(?:i(?:'m| am| will|'ll)? (?:going to |gonna )?(?:switch|leave|move|cancel|quit|port))|\b(?:switch(?:ing)? to|moving to|port(?:ing)? my number|last month with you|other (?:operator|network|provider))",
        negatable=False,
    ),
    _p(
        Signal.CHURN_THREAT,
        r"\b(?:vou|quero|vamos)\s+(?:\w+\s+){0,2}(?:mudar|sair|cancelar|trocar|deixar)|\b(?:outra operadora|mudar de operadora|para a (?:mtn|orange|telecel))",
        negatable=False,
    ),
    _p(
        Signal.CHURN_THREAT,
        r"\b(?:ghadi|ghad|rah ghadi|bech|bach|nbadel|nbaddel|n7awel|n5arej|nmchi|nemchi|nrou7|hab nbadel|baghi nbadel)\b[^.!?]{0,25}\b(?:operateur|inwi|iam|maroc telecom|ooredoo|tt|telecom|zain|umniah|vodafone|etisalat|we|badel|nbadel|nkhalli|nsayeb|puce|sim|carte)",
        negatable=False,
    ),
    _p(
        Signal.CHURN_THREAT,
        r"(?:هغير|حغير|سأغير|ساغير|هسيب|حسيب|سأترك|ساترك|راح أغير|راح اغير|بدي غير|بغيت نبدل|غادي نبدل|حنقل|هنقل|هحول)\s*(?:\S+\s*){0,3}(?:الشبكة|الخط|الشركة|شركة|المشغل|فودافون|اتصالات|وي|زين|أمنية|امنية|اورنج|أورنج)?",
        negatable=False,
    ),
    # staff_conduct: the behaviour of staff, agents or resellers.
    _p(
        Signal.STAFF_CONDUCT,
        r"\b(?:agent|agents|vendeur\w*|conseiller\w*|caissier\w*|personnel|employe\w*|revendeur\w*|gerant|distributeur)\b[^.!?]{0,50}\b(?:impoli\w*|malpoli\w*|insult\w*|arrogan\w*|mepris\w*|crie|criait|hurl\w*|grossier\w*|irrespectu\w*|m'a (?:mal parle|chasse|manque de respect|insulte)|a refuse|racket\w*|demande de l'argent|pot[- ]de[- ]vin|bakchich|commission en plus)",
        negatable=False,
    ),
    _p(
        Signal.STAFF_CONDUCT,
        r"\b(?:mal (?:recu|accueilli|traite)|manque de respect|impolitesse|mepris)\b",
    ),
    _p(
        Signal.STAFF_CONDUCT,
        r"\b(?:agent|agents|staff|employee\w*|cashier\w*|seller\w*|shop assistant\w*|dealer\w*|clerk\w*)\b[^.!?]{0,50}\b(?:rude|insult\w*|shout\w*|yell\w*|disrespect\w*|arrogant|ignored me|bribe\w*|asked (?:me )?for (?:money|a tip|extra)|overcharg\w*|threaten\w*)",
        negatable=False,
    ),
    _p(Signal.STAFF_CONDUCT, r"\b(?:rude|disrespectful) (?:staff|agent|employee|cashier|people)\b"),
    _p(
        Signal.STAFF_CONDUCT,
        r"\b(?:atendente\w*|funcionari\w*|agente\w*|vendedor\w*)\b[^.!?]{0,50}\b(?:mal educad\w*|grosseir\w*|insult\w*|gritou|gritaram|desrespeit\w*|arrogante\w*|pediu dinheiro|suborno)",
        negatable=False,
    ),
    _p(
        Signal.STAFF_CONDUCT,
        r"\b(?:lmowadaf|lmouwadaf|l'agent|lagent|lmuwazaf|lbai3|lkhadam)\b[^.!?]{0,40}\b(?:m9alle9|m9ale9|ghowat|3ayet|sebb|sabni|ma7tarmnich|mahtaremnich|mdat7ak|ched 3lia|tmasskhar|hgarni|7garni|7a9arni|9ellel|rachwa|bakchich)",
        negatable=False,
    ),
    _p(
        Signal.STAFF_CONDUCT,
        r"(?:الموظف|الموظفة|الموظفين|العامل|البائع|الوكيل)[^.!?]{0,40}(?:وقح|قليل الأدب|قليل الادب|شتم|سب|صرخ|زعق|اهان|أهان|استهزأ|رشوة|طلب فلوس|ما احترم|محترمش)",
        negatable=False,
    ),
)


FRAGMENTS = frozenset().union(*(p.fragments for p in LEXICON))
if any(not p.fragments for p in LEXICON):  # such a pattern would never be searched
    raise RuntimeError("every lexicon pattern needs a literal piece of 3 letters or more")


# The fragments by their first three letters: a position of a verbatim is tested against
# the few fragments that start like it, not against every length of piece that starts
# there (a third of detect_signals' time went to those slices).
FRAGMENTS_BY_PREFIX: dict[str, tuple[str, ...]] = {}
for _fragment in sorted(FRAGMENTS):
    FRAGMENTS_BY_PREFIX[_fragment[:3]] = (*FRAGMENTS_BY_PREFIX.get(_fragment[:3], ()), _fragment)
# Which patterns (their index in LEXICON) each fragment may announce.
PATTERNS_BY_FRAGMENT: dict[str, tuple[int, ...]] = {
    fragment: tuple(i for i, p in enumerate(LEXICON) if fragment in p.fragments)
    for fragment in FRAGMENTS
}
