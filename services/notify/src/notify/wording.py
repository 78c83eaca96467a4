"""What a manager reads, in their language (fr, en, ar): email, SMS and the page's labels.

The alert payload never holds the customer's number, so nothing rendered here can leak it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "alert": "Alerte",
        "digest": "Résumé des alertes",
        "market": "Marché",
        "city": "Ville",
        "customer": "Client",
        "segment": "Segment",
        "satisfaction": "Satisfaction",
        "verbatim": "Verbatim",
        "rule": "Règle",
        "signals": "Signaux",
        "ack": "Accuser réception",
        "resolve": "Résoudre",
        "note": "Note",
        "location": "Lieu",
        "phone": "Numéro du client",
        "state": "État",
        "open": "ouverte",
        "acknowledged": "prise en charge",
        "resolved": "résolue",
        "link": "Ouvrir et accuser réception",
        "refused": "Ce lien est invalide ou a expiré.",
        "escalated": "escaladée",
    },
    "en": {
        "alert": "Alert",
        "digest": "Alert digest",
        "market": "Market",
        "city": "City",
        "customer": "Customer",
        "segment": "Segment",
        "satisfaction": "Satisfaction",
        "verbatim": "Verbatim",
        "rule": "Rule",
        "signals": "Signals",
        "ack": "Acknowledge",
        "resolve": "Resolve",
        "note": "Note",
        "location": "Location",
        "phone": "Customer's number",
        "state": "State",
        "open": "open",
        "acknowledged": "acknowledged",
        "resolved": "resolved",
        "link": "Open and acknowledge",
        "refused": "This link is invalid or has expired.",
        "escalated": "escalated",
    },
    "ar": {
        "alert": "تنبيه",
        "digest": "ملخص التنبيهات",
        "market": "السوق",
        "city": "المدينة",
        "customer": "العميل",
        "segment": "الشريحة",
        "satisfaction": "الرضا",
        "verbatim": "كلام العميل",
        "rule": "القاعدة",
        "signals": "الإشارات",
        "ack": "تأكيد الاستلام",
        "resolve": "حل",
        "note": "ملاحظة",
        "location": "الموقع",
        "phone": "رقم العميل",
        "state": "الحالة",
        "open": "مفتوح",
        "acknowledged": "تم الاستلام",
        "resolved": "تم الحل",
        "link": "فتح وتأكيد الاستلام",
        "refused": "هذا الرابط غير صالح أو منتهي الصلاحية.",
        "escalated": "تم التصعيد",
    },
}


def labels(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["en"])


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str


def _lines(alert: dict[str, Any], words: dict[str, str]) -> list[str]:
    return [
        f"{words['market']}: {alert.get('market')}",
        f"{words['city']}: {alert.get('city') or '-'}",
        f"{words['customer']}: {alert.get('customer_kind')}"
        f" / {words['segment']}: {alert.get('segment') or '-'}",
        f"{words['satisfaction']}: {alert.get('satisfaction')}/5",
        f"{words['rule']}: {alert.get('rule')} ({alert.get('severity')})",
        f"{words['signals']}: {', '.join(alert.get('signals') or []) or '-'}",
        f"{words['verbatim']}: {alert.get('verbatim') or '-'}",
    ]


def render(alert: dict[str, Any], language: str) -> Email:
    """Email of one alert (with ``ack_url``) or of a digest (``digest``: a list of alerts)."""
    words = labels(language)
    if "digest" in alert:
        items = alert["digest"]
        parts = [f"{words['digest']} ({len(items)})", ""]
        for item in items:
            parts += [*_lines(item, words), f"{words['link']}: {item.get('ack_url')}", ""]
        return Email(f"[Terrain] {words['digest']} {alert.get('market')}", "\n".join(parts))
    subject = (
        f"[Terrain {alert.get('severity')}] {words['alert']} {alert.get('market')}"
        f" {alert.get('city') or ''}".rstrip()
    )
    text = "\n".join([*_lines(alert, words), "", f"{words['link']}: {alert.get('ack_url')}"])
    return Email(subject, text)


def render_sms(alert: dict[str, Any], language: str, *, limit: int = 480) -> str:
    words = labels(language)
    verbatim = (alert.get("verbatim") or "")[:160]
    head = (
        f"Terrain {alert.get('severity')} {alert.get('market')} {alert.get('city') or ''}"
        f" {words['rule']}: {alert.get('rule')} {','.join(alert.get('signals') or [])}"
    )
    # The link first: a truncated SMS still lets the manager open the alert.
    return f"{head}\n{alert.get('ack_url')}\n{verbatim}"[:limit]
