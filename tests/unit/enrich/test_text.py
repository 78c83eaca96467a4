"""Language and signals of verbatims: at least ten real-sounding ones per signal, in
French, English, Portuguese, Arabic and Arabic in Latin letters, and the negatives that
must not fire ("no problem with my money")."""

from __future__ import annotations

import pytest

from enrich.text import detect_language, detect_signals
from terrain_contracts.vocabulary import Signal

POSITIVES: dict[str, list[str]] = {
    "money_lost": [
        "J'ai envoyé 50 000 FCFA hier, le destinataire n'a rien reçu et l'argent a été débité.",
        "Mon transfert Orange Money n'est jamais arrivé, ça fait trois jours.",
        "On m'a débité 10 000 F sans que la transaction passe.",
        "I sent money to my brother in Monrovia and it never arrived.",
        "The money was deducted from my account but the merchant never got it.",
        "My deposit disappeared from the balance after the agent's mistake.",
        "Mandei dinheiro para a minha mãe e o dinheiro não chegou.",
        "Fiz uma transferência ontem e nunca recebi a confirmação, o saldo foi descontado.",
        "flousi ma wsaltch, 3 jours w ana nestanna",
        "sifet lflous l khouya w ma wslouch",
        "حولت الفلوس لأخويا وما وصلت لحد دلوقتي",
        "المبلغ اتخصم من الرصيد ولم يصل للمستلم",
    ],
    "fraud": [
        "Un arnaqueur m'a appelé en se faisant passer pour Orange et a vidé mon compte.",
        "C'est de l'escroquerie, quelqu'un a retiré mon argent sans mon accord.",
        "Il y a trop de fraude avec les faux agents au marché.",
        "Someone called pretending to be customer care and asked for my PIN code.",
        "I was scammed by a fake agent who took my cash.",
        "There was an unauthorised withdrawal from my wallet last night.",
        "Caí num golpe, um homem fingindo ser da Orange pediu o meu código.",
        "Houve fraude na minha conta, alguém levantou tudo.",
        "wahed nassab 3ayetli w9al rah men Orange, khda3ni",
        "تعرضت لعملية نصب من شخص قال إنه موظف في الشركة",
        "في احتيال كبير برسائل مزيفة باسم الشركة",
    ],
    "network_outage": [
        "Pas de réseau depuis trois jours dans tout le quartier.",
        "Le réseau est coupé chaque soir, impossible d'appeler.",
        "Coupure totale d'internet depuis lundi à Sikasso.",
        "No network at all in the village since the storm.",
        "The internet has been down for a week, my business is stuck.",
        "We had an outage all weekend, nobody could call.",
        "Estamos sem rede há dois dias em Gabú.",
        "A internet caiu e não funciona desde ontem.",
        "mafamech reseau fel 7ouma men lbareh",
        "makaynch rizo f douar, dima ma kaynch",
        "مفيش شبكة خالص في البيت من امبارح",
        "انقطاع الإنترنت كل يوم بالليل",
    ],
    "safety_hazard": [
        "Un câble électrique dénudé pend devant l'école, c'est dangereux pour les enfants.",
        "Le poteau de l'antenne penche et menace de tomber sur les maisons.",
        "Il y a un risque d'électrocution près du groupe électrogène du site.",
        "There is an exposed cable hanging near the market, children play there.",
        "The mast is leaning after the storm, it could fall on the road.",
        "The generator at the tower is leaking fuel, it's a fire hazard.",
        "Há um cabo exposto no chão perto da escola, é perigoso.",
        "A torre está a cair depois da chuva.",
        "kayn cable m9tou3 f zen9a, khatar 3la drari",
        "في كابل مكشوف جنب المدرسة وده خطر على العيال",
        "العمود وقع على الطريق وفيه خطر",
    ],
    "churn_threat": [
        "Si ça continue je vais passer chez MTN.",
        "Je vais résilier mon abonnement le mois prochain.",
        "Franchement je compte changer d'opérateur.",
        "If this continues I'm going to switch to Airtel.",
        "I will cancel my contract and move to another network.",
        "This is my last month with you, I'm porting my number.",
        "Vou mudar de operadora se não resolverem.",
        "Estou a pensar em cancelar e passar para a outra operadora.",
        "ghadi nbadel l'operateur, rani 3yit",
        "هغير الخط لفودافون لو الوضع فضل كده",
        "بغيت نبدل الشركة، ماشي معقول",
    ],
    "staff_conduct": [
        "L'agent de la boutique était impoli et m'a mal parlé.",
        "Le vendeur m'a demandé de l'argent en plus pour activer la puce.",
        "J'ai été mal reçu à l'agence de Plateau.",
        "The agent at the shop was rude and shouted at me.",
        "The cashier asked me for money to serve me first.",
        "Rude staff at the Gaborone branch, nobody helped.",
        "O atendente foi mal educado e gritou comigo.",
        "O funcionário pediu dinheiro para fazer o registo.",
        "lmowadaf kan m9alle9 w sabni 9dam ness",
        "الموظف كان وقح جدا وشتمني",
        "البائع طلب فلوس زيادة عشان يفعل الخط",
    ],
}

NEGATIVES = [
    "No problem with my money, transfers arrive instantly.",
    "Pas de problème avec mon argent, tout arrive à temps.",
    "Aucune fraude constatée, je suis satisfait.",
    "No fraud, no scam, just slow data.",
    "Il n'y a jamais eu de coupure chez moi, le réseau est bon.",
    "Network is great here, no outage for months.",
    "Sem problemas com a rede, funciona bem.",
    "The agent was very kind and helpful.",
    "Le personnel est accueillant et poli.",
    "Je ne vais pas changer d'opérateur, Orange est le meilleur.",
    "kolchi mzyan, reseau mzyan w flous kaywslo",
    "الخدمة ممتازة والشبكة قوية",
    "Je voudrais une offre internet moins chère.",
    "Data is slow in the evening but it works.",
    "Preço alto mas a qualidade é boa.",
    "",
]


@pytest.mark.parametrize("signal", list(Signal))
def test_every_signal_fires_on_its_verbatims(signal: Signal) -> None:
    verbatims = POSITIVES[signal]
    assert len(verbatims) >= 10
    missed = [v for v in verbatims if signal not in detect_signals(v)]
    assert missed == []


@pytest.mark.parametrize("verbatim", NEGATIVES)
def test_negatives_raise_nothing(verbatim: str) -> None:
    assert detect_signals(verbatim) == []


def test_signals_come_in_canonical_order() -> None:
    text = "Pas de réseau, et l'agent était impoli; je vais passer chez Moov."
    assert detect_signals(text) == ["network_outage", "churn_threat", "staff_conduct"]


@pytest.mark.parametrize(
    ("verbatim", "language"),
    [
        ("J'ai envoyé de l'argent et le destinataire n'a rien reçu.", "fr"),
        ("Le réseau est très mauvais dans mon quartier.", "fr"),
        ("The network is bad in my area and data is slow.", "en"),
        ("I like the new offers but the price is high.", "en"),
        ("A rede é muito fraca e o dinheiro não chegou.", "pt"),
        ("Eu gosto do serviço mas é caro.", "pt"),
        ("الشبكة ضعيفة جدا في منطقتي", "ar"),
        ("flousi ma wsaltch", "ar-Latn"),
        ("reseau mafamech barcha fel 7ouma", "ar-Latn"),
        ("3andi mochkil m3a lflous, dima kayt9ta3", "ar-Latn"),
        ("Tsy misy tambajotra eto aho", "mg"),
    ],
)
def test_language(verbatim: str, language: str) -> None:
    assert detect_language(verbatim) == language


def test_language_keeps_the_apps_guess_when_unsure() -> None:
    assert detect_language("OK", hint="fr") == "fr"
    assert detect_language(None, hint="en") == "en"
    assert detect_language("   ") is None
