"""Simulated WhatsApp users: a stable E.164 number and WhatsApp profile name per sender index."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sender:
    """One simulated WhatsApp user: the same number and profile name for all their messages."""

    number: str
    """E.164 number, e.g. ``+15551234567``."""
    profile_name: str
    """The WhatsApp profile name Twilio forwards as ProfileName (may hold accents and emoji)."""
    wa_id: str
    """WhatsApp id: the number without ``+``."""

    @property
    def whatsapp(self) -> str:
        """The address Twilio puts in From: ``whatsapp:+15551234567``."""
        return "whatsapp:" + self.number


@dataclass(frozen=True, slots=True)
class _Country:
    calling_code: str
    prefixes: tuple[str, ...]
    subscriber_digits: int
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]

    @property
    def capacity(self) -> int:
        return len(self.prefixes) * 10**self.subscriber_digits


_COUNTRIES: tuple[_Country, ...] = (
    _Country(
        "91",
        ("98", "97", "99", "88", "70"),
        8,
        ("Priya", "Rahul", "Ananya", "Vikram", "Sneha", "Arjun", "Deepika", "प्रिया", "Mohammed"),
        ("Sharma", "Patel", "Reddy", "Iyer", "Khan", "Gupta", "Nair"),
    ),
    _Country(
        "55",
        ("119", "219", "319", "619"),
        8,
        ("João", "Maria", "Conceição", "Luíza", "Thiago", "Ana Beatriz", "Vitória", "Gabriel"),
        ("Silva", "Gonçalves", "Araújo", "Souza", "Sant'Anna", "Magalhães", "Pereira"),
    ),
    _Country(
        "1",
        ("212", "415", "305", "646", "713", "312", "206", "404"),
        7,
        ("Ashley", "Michael", "Jasmine", "Tyler", "Brianna", "DeShawn", "Emily", "Carlos"),
        ("Johnson", "Williams", "Nguyen", "Rodriguez", "O'Connor", "Smith", "Brown"),
    ),
    _Country(
        "234",
        ("803", "806", "813", "703", "905"),
        7,
        ("Chidinma", "Oluwaseun", "Ngozi", "Emeka", "Adébáyọ̀", "Fatima", "Tunde"),
        ("Okafor", "Adeyemi", "Eze", "Bello", "Ogunleye", "Nwosu"),
    ),
    _Country(
        "52",
        ("55", "33", "81"),
        8,
        ("Guadalupe", "José Luis", "Ximena", "Andrés", "María José", "Íñigo"),
        ("Hernández", "García", "López", "Martínez", "Peña", "Ramírez"),
    ),
    _Country(
        "63",
        ("917", "918", "927", "998"),
        7,
        ("Ma. Cristina", "Jose", "Angelica", "Mark Anthony", "Rhea", "Jun"),
        ("dela Cruz", "Santos", "Reyes", "Bautista", "Villanueva"),
    ),
    _Country(
        "62",
        ("812", "813", "857"),
        8,
        ("Siti", "Budi", "Dewi", "Agus", "Putri", "Rizky"),
        ("Nurhaliza", "Santoso", "Wijaya", "Hidayat", "Saputra"),
    ),
    _Country(
        "34",
        ("6",),
        8,
        ("José", "Lucía", "Begoña", "Álvaro", "Núria", "Sergio"),
        ("Núñez", "Fernández", "Muñoz", "Pérez", "Castaño", "Ibáñez"),
    ),
    _Country(
        "254",
        ("7",),
        8,
        ("Wanjiru", "Otieno", "Achieng", "Kamau", "Njeri", "Kiprono"),
        ("Mwangi", "Odhiambo", "Kariuki", "Wambui", "Kiptoo"),
    ),
    _Country(
        "44",
        ("7700", "7911", "7400", "7500"),
        6,
        ("Siobhán", "Oliver", "Amelia", "Harry", "Aoife", "Mohammed"),
        ("O'Brien", "Smith", "Patel", "Jones", "Taylor", "McAllister"),
    ),
    _Country(
        "33",
        ("6", "7"),
        8,
        ("Zoé", "Hélène", "Théo", "Léa", "François", "Inès"),
        ("Lefèvre", "Martin", "Dubois", "Moreau", "Girard"),
    ),
    _Country(
        "49",
        ("151", "160", "170", "176"),
        8,
        ("Jürgen", "Lena", "Jörg", "Sophie", "Björn", "Anneliese"),
        ("Müller", "Schröder", "Weiß", "Becker", "Groß", "Köhler"),
    ),
)

MAX_SENDERS = len(_COUNTRIES) * min(country.capacity for country in _COUNTRIES)
"""Sender indexes run from 0 to MAX_SENDERS - 1; each maps to its own number."""

_NUMBER_MULTIPLIER = 7_919_337  # coprime with 10: n -> (a*n + b) mod 10**k permutes k-digit numbers
_NAME_EMOJI = ("🌸", "✨", "🙏", "⚽", "💼", "😊", "🌻", "👩🏽‍💻")


def sender_for_index(index: int) -> Sender:
    """The sender with this index: a bijection onto E.164 numbers, stable across processes and runs."""
    country = _COUNTRIES[index % len(_COUNTRIES)]
    within = index // len(_COUNTRIES)
    prefix = country.prefixes[within % len(country.prefixes)]
    modulus = 10**country.subscriber_digits
    offset = int(country.calling_code + prefix) * 104_729  # so the first numbers do not look like 0000001
    subscriber = (_NUMBER_MULTIPLIER * (within // len(country.prefixes)) + offset) % modulus
    wa_id = f"{country.calling_code}{prefix}{subscriber:0{country.subscriber_digits}d}"
    # Seeded by the index alone (int seeds do not depend on PYTHONHASHSEED): the same name every time.
    names = random.Random(index * 2_654_435_761 + 97)
    first, last = names.choice(country.first_names), names.choice(country.last_names)
    style = names.random()
    if style < 0.55:
        profile_name = f"{first} {last}"
    elif style < 0.75:
        profile_name = first
    elif style < 0.85:
        profile_name = f"{first} {names.choice(_NAME_EMOJI)}"
    elif style < 0.93:
        profile_name = first.lower()
    else:
        profile_name = f"{first[0]}. {last}"
    return Sender(number="+" + wa_id, profile_name=profile_name, wa_id=wa_id)


__all__ = ["MAX_SENDERS", "Sender", "sender_for_index"]
