"""What customers say, by theme and language: realistic sentences in the languages met in
verbatims (French, English, Arabic, Arabic in Latin letters, Portuguese, Malagasy and local
languages mixed with French). Themes map to the signals enrich detects and notify acts on."""

from __future__ import annotations

from terrain_contracts.markets import Market

# theme -> language -> sentences
VERBATIMS: dict[str, dict[str, tuple[str, ...]]] = {
    "money_lost": {
        "fr": (
            "J'ai envoyé 50 000 FCFA hier, le destinataire n'a rien reçu et l'argent a été débité.",
            "Mon solde Orange Money a disparu après un retrait, 25 000 francs perdus.",
            "Le transfert a échoué mais mon compte a quand même été débité deux fois.",
        ),
        "en": (
            "I sent 300 pula to my mother and the money never arrived, but it left my account.",
            "My Orange Money balance was debited twice for one payment.",
        ),
        "ar": ("حولت فلوس امبارح والفلوس اتخصمت من الحساب بس ما وصلتش.",),
        "arabizi": ("7awelt flous lbare7 w ma wsaltch, w t9ta3ou men compte dyali.",),
        "pt": ("Enviei dinheiro ontem e o destinatário não recebeu nada, mas foi debitado.",),
        "mg": ("Nandefa vola aho omaly fa tsy tonga, very ny vola 20 000 ariary.",),
    },
    "fraud": {
        "fr": (
            "Quelqu'un m'a appelé en se faisant passer pour Orange et a vidé mon compte, c'est une arnaque.",
            "On m'a demandé mon code secret par SMS, je pense que c'est une fraude.",
        ),
        "en": (
            "Someone pretending to be Orange asked for my PIN and then my account was emptied, it's a scam.",
        ),
        "ar": ("واحد اتصل بيا وقال إنه من أورنج وسرق فلوسي، ده نصب.",),
        "arabizi": ("wa7ed 3ayet liya w gal rah men Orange, ser9 lia flous, hadi arnaque.",),
        "pt": ("Alguém fingiu ser da Orange e roubou o meu saldo, é uma fraude.",),
    },
    "network_outage": {
        "fr": (
            "Depuis trois jours le réseau est coupé dans tout le quartier, plus rien ne passe.",
            "Aucun réseau depuis la panne de l'antenne, ni appels ni internet.",
        ),
        "en": ("There has been no network at all in our area since Monday, total blackout.",),
        "ar": ("الشبكة مقطوعة من تلات أيام في المنطقة كلها.",),
        "arabizi": ("makaynch réseau men 3 iyam f l7ouma kamla.",),
        "pt": ("Não há rede nenhuma no bairro há três dias.",),
        "mg": ("Tsy misy réseau mihitsy nandritra ny telo andro.",),
    },
    "safety_hazard": {
        "fr": (
            "Le pylône derrière l'école penche et des câbles électriques pendent, c'est dangereux pour les enfants.",
            "Des fils électriques de l'antenne traînent par terre près du marché, danger.",
        ),
        "en": (
            "The tower fence is broken and live cables are hanging near the school, it's dangerous.",
        ),
        "ar": ("في أسلاك كهربا مكشوفة جنب البرج قريب من المدرسة، خطر على العيال.",),
        "pt": ("Há cabos elétricos soltos junto à antena perto da escola, é perigoso.",),
    },
    "churn_threat": {
        "fr": (
            "Si ça continue je vais passer chez la concurrence, j'en ai marre.",
            "Je vais résilier mon abonnement et changer d'opérateur le mois prochain.",
        ),
        "en": ("If this doesn't improve I'm switching to another operator.",),
        "ar": ("لو الوضع فضل كده هغير الشركة.",),
        "arabizi": ("ila bqa hakka ghadi nbeddel l'opérateur.",),
        "pt": ("Se continuar assim vou mudar de operadora.",),
        "wo": ("Dama bëgg changer opérateur, réseau bi dafa bon torop.",),
    },
    "staff_conduct": {
        "fr": ("L'agent de la boutique m'a mal parlé et a refusé de m'aider.",),
        "en": ("The shop staff were rude and refused to help me.",),
        "ar": ("الموظف في الفرع كان قليل الأدب ورفض يساعدني.",),
        "pt": ("O funcionário da loja foi mal-educado comigo.",),
    },
    "complaint": {
        "fr": (
            "Internet est très lent le soir, impossible de regarder une vidéo.",
            "Les forfaits sont trop chers par rapport à la concurrence.",
            "Les appels coupent souvent quand je suis en déplacement.",
            "Réseau bi dafa bon, les appels coupent tout le temps.",
            "Mbote, internet ezali malembe mingi na mpokwa, c'est lent.",
        ),
        "en": (
            "Data is slow in the evening and bundles expire too fast.",
            "Prices went up again this year.",
        ),
        "ar": ("الإنترنت بطيء جدا بالليل.", "الباقات غالية."),
        "arabizi": ("l'internet bti2 bzaf f lil.", "les forfaits ghalyin bzaf."),
        "pt": ("A internet é muito lenta à noite.",),
        "mg": ("Miadana be ny internet amin'ny alina, lafo koa ny forfait.",),
    },
    "praise": {
        "fr": (
            "Très contente du service Orange Money, rapide et pratique.",
            "Pas de problème avec mon argent, tout marche bien.",
            "Le réseau est bon ici, merci d'être venus nous voir.",
        ),
        "en": (
            "Very happy with the service, no problem with my money.",
            "Good coverage here, thank you for visiting.",
        ),
        "ar": ("الخدمة ممتازة وشكرا على الزيارة.",),
        "arabizi": ("service mezyan, choukran 3la la visite.",),
        "pt": ("Estou muito satisfeito com o serviço.",),
        "mg": ("Tsara ny service, misaotra tamin'ny fitsidihana.",),
    },
}

LANGUAGE_TAGS = {
    "fr": "fr",
    "en": "en",
    "ar": "ar",
    "arabizi": "ar-Latn",
    "pt": "pt",
    "mg": "mg",
    "wo": "wo",
}

# Languages a customer of each market speaks to the agent, most frequent first.
MARKET_LANGUAGES: dict[Market, tuple[str, ...]] = {
    Market.BW: ("en",),
    Market.LR: ("en",),
    Market.SL: ("en",),
    Market.BF: ("fr",),
    Market.CF: ("fr",),
    Market.CI: ("fr",),
    Market.GN: ("fr",),
    Market.ML: ("fr",),
    Market.CD: ("fr",),
    Market.CM: ("fr", "en"),
    Market.SN: ("fr", "wo"),
    Market.GW: ("pt",),
    Market.MG: ("fr", "mg"),
    Market.EG: ("ar", "arabizi"),
    Market.JO: ("ar", "arabizi"),
    Market.MA: ("fr", "arabizi", "ar"),
    Market.TN: ("fr", "arabizi", "ar"),
}
