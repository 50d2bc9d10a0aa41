"""Realistic Twilio WhatsApp inbound-message webhooks, their X-Twilio-Signature, and how to judge replies.

Twilio POSTs every inbound WhatsApp message to the bot as a form (``application/x-www-form-urlencoded``)
and signs it: ``X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + name1 + value1 + name2 + ...))``
with the parameters sorted by name. :class:`TrafficGenerator` builds such requests with the field set
Twilio really sends, for a configurable mix of message kinds, a share of deliberately bad signatures
(wrong token, mangled, missing, wrong URL, tampered body: a validating bot must answer 403) and a
share of retries (the same MessageSid again, as Twilio retries after a timeout: a bot must ack it
without doing the work twice). :func:`classify` turns the bot's answer into an :class:`Outcome`.

This is core code: it imports only the standard library and :mod:`perfsuite.errors`, takes plain
values and returns frozen dataclasses. The auth token never appears in a repr or a message.
"""

from __future__ import annotations

import base64
import hmac
import math
import os
import random
import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import urlencode, urlsplit, urlunsplit

from perfsuite.errors import ConfigError

MESSAGE_KINDS = ("text", "document", "image", "location", "button", "command")
"""Kinds of inbound message a simulated user sends; the keys a message mix may use."""

SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
"""Twilio sends this on every webhook; a retry of the same webhook carries the same token."""
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
TWILIO_USER_AGENT = "TwilioProxy/1.1"
API_VERSION = "2010-04-01"
TWILIO_TIMEOUT_S = 15.0
"""Twilio gives up on a webhook after 15 seconds (and may retry it)."""
BACKPRESSURE_STATUSES = frozenset({429, 503})
"""Statuses that mean "slow down" (usually with Retry-After) rather than a broken bot."""

_SID_HEX = re.compile(r"[0-9a-fA-F]{32}")
_E164 = re.compile(r"\+[0-9]{7,15}")
_BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


# --------------------------------------------------------------------------------------------- signing


def sign(auth_token: str, url: str, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    """The X-Twilio-Signature Twilio would send for a form POST of ``params`` to ``url``.

    ``url`` is used exactly as given (scheme, host, port, path and query string): it must be the
    URL the bot reconstructs, which can differ from the address the load generator connects to.
    Parameters are sorted by name (code-point order, i.e. Twilio's case-sensitive order); a name
    given several times contributes each distinct value in sorted order, as the ``twilio``
    package's ``RequestValidator`` does. Text is signed as UTF-8.
    """
    pairs = params.items() if isinstance(params, Mapping) else params
    return _signature(auth_token.encode("utf-8"), url, pairs)


def _signature(key: bytes, url: str, pairs: Iterable[tuple[str, str]]) -> str:
    # set() + sort on (name, value) = sorted names, each distinct value of a name in sorted order.
    payload = url + "".join([name + value for name, value in sorted(set(pairs))])
    return base64.b64encode(hmac.digest(key, payload.encode("utf-8"), "sha1")).decode("ascii")


def _new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix + 32 lowercase hex, from os.urandom (unique across processes)."""
    return prefix + os.urandom(16).hex()


# --------------------------------------------------------------------------------------------- values


class SignatureFault(StrEnum):
    """How a deliberately invalid request was signed."""

    WRONG_TOKEN = "wrong_token"
    """Signed correctly but with another auth token (a forger or a misconfigured proxy)."""
    MANGLED = "mangled"
    """A valid signature with one significant base64 character changed."""
    MISSING = "missing"
    """No X-Twilio-Signature header at all."""
    WRONG_URL = "wrong_url"
    """Signed for the other scheme (http <-> https) of the public URL."""
    TAMPERED = "tampered"
    """Signed, then the Body was altered in transit."""


_FAULTS = tuple(SignatureFault)


class Outcome(StrEnum):
    """How one webhook request went, judged against what the generator intended."""

    SUCCESS = "success"
    """A valid request acknowledged with 2xx (and TwiML when the body was checked)."""
    REJECTED = "rejected"
    """An invalid signature refused with 403: the expected rejection, not an error."""
    BACKPRESSURE = "backpressure"
    """429 or 503: the bot shed load on purpose."""
    FAILURE = "failure"
    """Anything else: errors, wrong acceptance or rejection, non-TwiML replies, no response."""


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
class WebhookMessage:
    """One inbound-message webhook request, ready to POST to the public URL."""

    kind: str
    """One of :data:`MESSAGE_KINDS`."""
    params: tuple[tuple[str, str], ...]
    """The form fields in the order Twilio sends them."""
    message_sid: str
    """MessageSid (= SmsMessageSid = SmsSid): ``SM`` + 32 hex, or ``MM`` + 32 hex with media."""
    signature: str
    """The X-Twilio-Signature to send; empty when the header is deliberately missing."""
    signature_valid: bool
    """Whether the generator meant the signature to validate (a correct bot answers 403 if not)."""
    duplicate: bool = False
    """A retry of an earlier message of the same sender: same MessageSid, params and token."""
    signature_fault: SignatureFault | None = None
    """How the signature was made invalid; None when it is valid."""
    idempotency_token: str = ""
    """The I-Twilio-Idempotency-Token value; retries repeat the original's."""

    @property
    def signature_case(self) -> str:
        """A label for reports: ``valid``, ``replayed`` (a duplicate) or the :class:`SignatureFault`."""
        if self.duplicate:
            return "replayed"
        return "valid" if self.signature_fault is None else self.signature_fault.value

    def form(self) -> dict[str, str]:
        """The form fields as a dict (names are unique), e.g. for ``client.post(data=...)``."""
        return dict(self.params)

    def urlencoded(self) -> str:
        """The request body, form-encoded as UTF-8 in Twilio's field order."""
        return urlencode(self.params)

    def headers(self) -> dict[str, str]:
        """The HTTP headers Twilio sends with this request (no signature header when it is missing)."""
        headers = {
            "Content-Type": FORM_CONTENT_TYPE,
            "User-Agent": TWILIO_USER_AGENT,
            IDEMPOTENCY_HEADER: self.idempotency_token,
        }
        if self.signature:
            headers[SIGNATURE_HEADER] = self.signature
        return headers


# --------------------------------------------------------------------------------------------- senders


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


def _sender_for_index(index: int) -> Sender:
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


# --------------------------------------------------------------------------------------------- content

_COMPANIES = (
    "Amazon",
    "Nestlé",
    "Globex & Partners",
    "Müller Logistik GmbH",
    "Tata Consultancy Services",
    "Société Générale",
    "Mercado Libre",
    "Jumia",
    "Accenture",
    "BrightPath Staffing",
    "DHL Supply Chain",
    "Shopee",
    "Safaricom",
    "Zalando",
)
_ROLES = (
    "Data Entry Clerk",
    "Warehouse Associate",
    "Customer Support Agent",
    "Software Engineer",
    "Delivery Driver",
    "Product Reviewer",
    "Administrative Assistant",
    "Registered Nurse",
    "Sales Representative",
    "Social Media Moderator",
    "Remote Typist",
    "Barista",
)
_CITIES = (
    "São Paulo",
    "Zürich",
    "Kraków",
    "Bengaluru",
    "Lagos",
    "Nairobi",
    "Ciudad de México",
    "Manila",
    "Jakarta",
    "Berlin",
    "London",
    "Austin, TX",
    "Montréal",
)
_RECRUITERS = (
    "Sarah Thompson",
    "Rahul Mehta",
    "Ana Beatriz",
    "Grace Wanjiru",
    "Mr. David Lee",
    "Chloé Martin",
)
_SALARIES_YEAR = ("$52,000", "€48.000", "£31,500", "₹9,50,000", "R$ 72.000", "$85,000–$95,000", "CHF 96'000")
_SALARIES_DAY = ("$300", "$450", "$800", "€500", "₹5,000", "R$ 800")
_FEES = ("$49", "$99", "$150", "€75", "₹499", "₦15,000", "R$ 120", "50 USDT")
_SCAM_LINKS = (
    "bit.ly/3xJobNow",
    "wa.me/447911123456",
    "t.me/easyjobs_hr",
    "tinyurl.com/earn-daily-24",
    "http://amaz0n-careers.work/apply?id=8812&ref=wa",
)
_CAREER_SITES = (
    "careers.example.com",
    "jobs.globex.example",
    "apply.brightpath.example",
    "careers.example.org",
)
_DATES = ("Monday 3 March", "1 April", "next Monday", "15/07", "June 2nd")
_GREETING_NAMES = ("there", "Maria", "John", "Priya", "Chinedu", "Luis", "Zoé")

_LEGIT_OFFERS = (
    "Hi {name}, this is {recruiter} from {company} HR. Thanks for applying to the {role} position in "
    "{city}. We'd like to invite you to a 30-minute video interview next week. Please choose a slot "
    "here: https://{site}/schedule. The salary range for the role is {salary_year} per year plus benefits.",
    "Job opening: {role} at {company} ({city}). Full-time, on-site, Mon–Fri 9:00–17:30. Requirements: "
    "2+ years of experience, good English. Apply on our careers page https://{site}/jobs/{job_id}. "
    "We never charge candidates any fee.",
    "{company} is hiring a {role} — hybrid, {city}. Compensation: {salary_year} + equity. Process: "
    "recruiter screen → technical interview → onsite. Questions? Just reply here.",
    "Hola {name}, te escribimos de {company}. Revisamos tu CV para el puesto de {role} en {city}. "
    "¿Podrías confirmar tu disponibilidad para una entrevista el próximo martes? Sueldo: {salary_year} "
    "brutos anuales. ¡Gracias!",
    "Olá! Vaga de {role} na {company} em {city}. CLT, vale-refeição e plano de saúde. Envie seu "
    "currículo para vagas@{site}. Processo seletivo sem nenhuma taxa.",
    "Offer letter: We are pleased to offer you the position of {role} at {company}, starting {date}. "
    "Annual base salary: {salary_year}. Please sign and return the attached contract by {date}. "
    "— People Team",
    "Hallo {name}, vielen Dank für Ihre Bewerbung als {role} bei {company} in {city}. Wir möchten Sie "
    "gerne zu einem Vorstellungsgespräch einladen. Gehalt: {salary_year} brutto/Jahr.",
    "Bonjour, suite à votre candidature pour le poste de {role} chez {company} à {city}, nous "
    "souhaitons échanger avec vous. Rémunération : {salary_year} bruts annuels. Cordialement, l'équipe RH",
    "Reminder: your interview for {role} at {company} is on {date} at 10:30 (Q&A with the team lead "
    "included). Bring an ID. Address: see https://{site}/visit?ref=wa&lang=en",
)
_SCAM_OFFERS = (
    "🔥🔥 URGENT HIRING 🔥🔥 Work from home, only 1-2 hours/day, earn {salary_day}–$800 DAILY 💰💰 "
    "No experience needed!!! Just like YouTube videos & get paid. Contact our HR on WhatsApp now 👉 {link}",
    "Hello dear, I am {recruiter} from {company} recruitment department. Your profile has been "
    "selected for a part-time job. Salary {salary_day}/day. To activate your account please pay a "
    "registration fee of {fee} via USDT/Bitcoin. Limited slots!!!",
    "Congratulations!!! 🎉 You have been shortlisted for a {role} job in Dubai/Canada. Free visa + "
    "accommodation + flight ✈️. Processing fee only {fee}. Send your passport copy and pay the agent today.",
    "Hi, I'm {recruiter} from {company}. We help merchants raise product ratings 👍 Complete 30 tasks "
    "daily and earn 5,000–12,000 INR. Commission paid instantly. Interested? Reply YES 😊",
    "घर बैठे कमाएं ₹25,000 प्रति सप्ताह! 📱 बस वीडियो लाइक करें। रजिस्ट्रेशन फीस सिर्फ {fee}. अभी संपर्क करें: {link}",
    "¡¡TRABAJO DESDE CASA!! Gana hasta 500€ diarios 💶 sin experiencia. Solo necesitas tu móvil. "
    "Para empezar deposita 50€ de garantía. Plazas limitadas ⏳ {link}",
    "Parabéns! Você foi selecionado(a) para trabalhar meio período avaliando produtos. Ganhe "
    "{salary_day} por dia 🤑. Faça um PIX de {fee} para liberar sua vaga: {link}",
    "Dear candidate, {company} (Official) is hiring Data Entry clerks. 100% remote, $45/hour, weekly "
    "pay. We will send you a cheque to buy your home-office equipment from our approved vendor. "
    "Kindly provide your bank details & SSN to proceed.",
    "Hey 👋 looking for extra income? Our team at {company} Crypto Capital guarantees 30% weekly "
    "returns 📈 Join t.me/{telegram} and the mentor will guide you. First withdrawal in 24h!",
    "u want job? {salary_day} per day. reply fast",
    "WORK FROM HOME = $$$ 🤑🤑 100% guaranteed +{salary_day}/day. Registration {fee} only. DM now {link}",
)
_QUESTIONS = (
    "Is this legit?",
    "Is this a scam? 🤔",
    "Can you check this offer please",
    "Recebi essa mensagem, é golpe?",
    "¿Esto es real?",
    "क्या ये नौकरी असली है?",
    "Got this on WhatsApp today:",
    "Should I pay the fee?",
    "hi",
)
_REQUIREMENTS = (
    "• Smartphone with internet",
    "• Age 18–60, any nationality",
    "• No CV or interview required",
    "• Bachelor's degree in Computer Science or equivalent",
    "• Valid driver's licence (B) and clean record",
    "• Fluent English; Español/Português is a plus",
    "• Available for night shifts 22:00–06:00",
)
_DOCUMENT_CAPTIONS = (
    "",
    "",
    "",
    "Offer letter attached",
    "contract.pdf — please check",
    "Carta de oferta 📄",
    "They sent me this PDF, is it real?",
    "Appointment letter",
)
_IMAGE_CAPTIONS = ("", "", "", "Screenshot of the job ad", "Is this legit? 👇", "Print da conversa")
_IMAGE_TYPES = ("image/jpeg",) * 8 + ("image/png", "image/webp")
_PLACES = (
    (-23.5613, -46.6565, "Av. Paulista, 1578 - Bela Vista, São Paulo - SP, 01310-200", "MASP"),
    (6.4281, 3.4219, "Plot 1, Adeola Odeku St, Victoria Island, Lagos", "Interview venue"),
    (-1.2864, 36.8172, "Kenyatta Avenue, Nairobi", "Hilton Nairobi"),
    (12.9716, 77.5946, "MG Road, Bengaluru, Karnataka 560001", "Office"),
    (19.4270, -99.1677, "Av. Paseo de la Reforma 483, Cuauhtémoc, CDMX", "Torre Reforma"),
    (52.5163, 13.3889, "Friedrichstraße 68, 10117 Berlin", "Büro"),
    (47.3717, 8.5386, "Bahnhofstrasse 45, 8001 Zürich", "Empfang"),
    (14.5547, 121.0244, "Ayala Ave, Makati, Metro Manila", "BPO office"),
)
_BUTTONS = (
    ("Check another offer", "check_another"),
    ("Report as scam", "report_scam"),
    ("Yes, it's legit", "feedback_yes"),
    ("No, it was a scam", "feedback_no"),
    ("Talk to a human", "human_agent"),
    ("Ver más 🔎", "more_info"),
    ("Stop alerts", "unsubscribe"),
)
_COMMANDS = ("help", "HELP", "Help", "status", "Status", "/start", "/help", "stop", "STOP", "start", "menu")


def _offer_fields(rng: random.Random) -> dict[str, str]:
    return {
        "name": rng.choice(_GREETING_NAMES),
        "recruiter": rng.choice(_RECRUITERS),
        "company": rng.choice(_COMPANIES),
        "role": rng.choice(_ROLES),
        "city": rng.choice(_CITIES),
        "salary_year": rng.choice(_SALARIES_YEAR),
        "salary_day": rng.choice(_SALARIES_DAY),
        "fee": rng.choice(_FEES),
        "link": rng.choice(_SCAM_LINKS),
        "site": rng.choice(_CAREER_SITES),
        "date": rng.choice(_DATES),
        "job_id": str(rng.randrange(10_000, 99_999)),
        "telegram": rng.choice(("vip_signals", "earn_with_anna", "cryptomentor_official")),
    }


def _job_offer_text(rng: random.Random) -> str:
    """A message a user forwards to a scam-checking bot: a legit or scammy offer, short to very long."""
    shape = rng.random()
    if shape < 0.12:
        return rng.choice(_QUESTIONS)
    fields = _offer_fields(rng)
    if shape < 0.85:
        offer = rng.choice(_SCAM_OFFERS if rng.random() < 0.5 else _LEGIT_OFFERS).format_map(fields)
        return f"{rng.choice(_QUESTIONS)}\n\n{offer}" if rng.random() < 0.3 else offer
    # A long forwarded thread: several offers and a requirement list (WhatsApp allows 4,096 chars).
    parts = [rng.choice(_SCAM_OFFERS + _LEGIT_OFFERS).format_map(fields) for _ in range(rng.randint(3, 6))]
    parts.append("Requirements:\n" + "\n".join(rng.sample(_REQUIREMENTS, rng.randint(2, len(_REQUIREMENTS)))))
    return rng.choice(_QUESTIONS) + "\n\n" + "\n\n".join(parts)


# --------------------------------------------------------------------------------------------- generator


def _require_rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{name}: must be a number between 0 and 1, got {value!r}")
    return float(value)


class TrafficGenerator:
    """Builds signed inbound-message webhooks for simulated WhatsApp users.

    ``mix`` maps message kinds (:data:`MESSAGE_KINDS`; missing kinds weigh 0) to relative
    weights. ``duplicate_rate`` and ``invalid_signature_rate`` are shares of all messages (their
    sum must not exceed 1): a duplicate re-sends the sender's previous message unchanged with a
    valid signature; an invalid one carries one of the :class:`SignatureFault` kinds. A sender's
    first message cannot be a duplicate, so its odds of an invalid signature are slightly higher.

    ``rng`` drives every content and rate decision (seed it for repeatable content); SIDs and
    idempotency tokens always come from os.urandom, so several Locust processes never collide.
    ``first_sender_index`` is the index the first :meth:`new_sender` call without an index gets;
    None draws it at random so that workers which do not coordinate indexes still get distinct users.
    """

    def __init__(
        self,
        account_sid: str,
        bot_number: str,
        public_url: str,
        auth_token: str,
        mix: Mapping[str, float],
        invalid_signature_rate: float,
        duplicate_rate: float,
        rng: random.Random | None = None,
        messaging_service_sid: str | None = None,
        *,
        first_sender_index: int | None = None,
    ) -> None:
        if not isinstance(account_sid, str) or not (
            account_sid.startswith("AC") and _SID_HEX.fullmatch(account_sid[2:])
        ):
            raise ConfigError(f"account_sid: must be 'AC' followed by 32 hex digits, got {account_sid!r}")
        if messaging_service_sid is not None and not (
            isinstance(messaging_service_sid, str)
            and messaging_service_sid.startswith("MG")
            and _SID_HEX.fullmatch(messaging_service_sid[2:])
        ):
            raise ConfigError(
                "messaging_service_sid: must be 'MG' followed by 32 hex digits or None, "
                f"got {messaging_service_sid!r}"
            )
        number = bot_number.removeprefix("whatsapp:") if isinstance(bot_number, str) else bot_number
        if not isinstance(number, str) or not _E164.fullmatch(number):
            raise ConfigError(f"bot_number: must be an E.164 number such as +14155238886, got {bot_number!r}")
        self._public_url = self._check_url(public_url)
        if not isinstance(auth_token, str) or not auth_token:
            raise ConfigError("auth_token: must be a non-empty string (set TWILIO_AUTH_TOKEN)")
        self._kinds, self._cum_weights = self._check_mix(mix)
        self._invalid_rate = _require_rate("invalid_signature_rate", invalid_signature_rate)
        self._duplicate_rate = _require_rate("duplicate_rate", duplicate_rate)
        if self._invalid_rate + self._duplicate_rate > 1:
            raise ConfigError(
                "invalid_signature_rate + duplicate_rate: both are shares of all messages and must not "
                f"add up to more than 1, got {invalid_signature_rate} + {duplicate_rate}"
            )
        # Invalid share among new (non-duplicate) messages, so that it is the overall share.
        remaining = 1.0 - self._duplicate_rate
        self._invalid_among_new = min(1.0, self._invalid_rate / remaining) if remaining > 0 else 0.0
        if first_sender_index is None:
            first_sender_index = int.from_bytes(os.urandom(8), "big") % (MAX_SENDERS // 2)
        elif isinstance(first_sender_index, bool) or not 0 <= first_sender_index < MAX_SENDERS:
            raise ConfigError(
                f"first_sender_index: must be in [0, {MAX_SENDERS}), got {first_sender_index!r}"
            )

        self._account_sid = account_sid
        self._bot_whatsapp = "whatsapp:" + number
        self._messaging_service_sid = messaging_service_sid
        self._rng = rng if rng is not None else random.Random()
        self._key = auth_token.encode("utf-8")
        wrong_key = os.urandom(16).hex().encode("ascii")
        self._wrong_key = wrong_key if wrong_key != self._key else wrong_key[::-1]
        parts = urlsplit(self._public_url)
        other_scheme = "http" if parts.scheme == "https" else "https"
        self._wrong_url = urlunsplit(parts._replace(scheme=other_scheme))
        self._next_sender_index = first_sender_index
        self._previous: dict[str, WebhookMessage] = {}

    @staticmethod
    def _check_url(public_url: str) -> str:
        if not isinstance(public_url, str):
            raise ConfigError(f"public_url: must be an http(s) URL, got {public_url!r}")
        try:
            parts = urlsplit(public_url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError as exc:
            raise ConfigError(f"public_url: not a valid URL ({exc}), got {public_url!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                "public_url: must be an http(s) URL such as https://bot.example.com/webhook, "
                f"got {public_url!r}"
            )
        return public_url

    @staticmethod
    def _check_mix(mix: Mapping[str, float]) -> tuple[tuple[str, ...], list[float]]:
        if not isinstance(mix, Mapping):
            raise ConfigError(f"mix: must be a mapping of message kind -> weight, got {type(mix).__name__}")
        for kind, weight in mix.items():
            if kind not in MESSAGE_KINDS:
                raise ConfigError(f"mix.{kind}: unknown message kind; allowed: {', '.join(MESSAGE_KINDS)}")
            if (
                isinstance(weight, bool)
                or not isinstance(weight, int | float)
                or not math.isfinite(weight)
                or weight < 0
            ):
                raise ConfigError(f"mix.{kind}: weight must be a finite number >= 0, got {weight!r}")
        kinds = tuple(kind for kind in MESSAGE_KINDS if mix.get(kind, 0) > 0)
        if not kinds:
            raise ConfigError(f"mix: weights must add up to more than 0; kinds: {', '.join(MESSAGE_KINDS)}")
        cum_weights: list[float] = []
        total = 0.0
        for kind in kinds:
            total += float(mix[kind])
            cum_weights.append(total)
        return kinds, cum_weights

    def __repr__(self) -> str:
        return (
            f"TrafficGenerator(account_sid={self._account_sid!r}, bot={self._bot_whatsapp!r}, "
            f"public_url={self._public_url!r}, auth_token=<hidden>, kinds={self._kinds!r}, "
            f"invalid_signature_rate={self._invalid_rate}, duplicate_rate={self._duplicate_rate})"
        )

    @property
    def public_url(self) -> str:
        """The URL every message is signed for (what the bot sees)."""
        return self._public_url

    def new_sender(self, index: int | None = None) -> Sender:
        """A simulated user. The same ``index`` always gives the same number and profile name (in any
        process); distinct indexes give distinct numbers. Without an index, the next unused one."""
        if index is None:
            index = self._next_sender_index % MAX_SENDERS
            self._next_sender_index += 1
        elif isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_SENDERS:
            raise ConfigError(f"index: a sender index must be an int in [0, {MAX_SENDERS}), got {index!r}")
        return _sender_for_index(index)

    def forget(self, sender: Sender) -> None:
        """Drop the sender's previous message (call when a simulated user stops, to bound memory)."""
        self._previous.pop(sender.number, None)

    def next_message(self, sender: Sender) -> WebhookMessage:
        """The sender's next webhook: a retry of their previous message, or a new one of a kind picked
        by the mix, validly signed or (at the configured rate) deliberately not."""
        rng = self._rng
        previous = self._previous.get(sender.number)
        if previous is not None and self._duplicate_rate and rng.random() < self._duplicate_rate:
            return self._retry(previous)
        kind = rng.choices(self._kinds, cum_weights=self._cum_weights)[0]
        params, sid = self._build(kind, sender)
        fault: SignatureFault | None = None
        if self._invalid_among_new and rng.random() < self._invalid_among_new:
            fault = rng.choice(_FAULTS)
            params, signature = self._bad_signature(fault, params)
        else:
            signature = _signature(self._key, self._public_url, params)
        message = WebhookMessage(
            kind=kind,
            params=params,
            message_sid=sid,
            signature=signature,
            signature_valid=fault is None,
            signature_fault=fault,
            idempotency_token=str(uuid.uuid4()),
        )
        self._previous[sender.number] = message
        return message

    def _retry(self, original: WebhookMessage) -> WebhookMessage:
        signature = original.signature
        if not original.signature_valid:
            signature = _signature(self._key, self._public_url, original.params)
        return replace(
            original, signature=signature, signature_valid=True, signature_fault=None, duplicate=True
        )

    def _bad_signature(
        self, fault: SignatureFault, params: tuple[tuple[str, str], ...]
    ) -> tuple[tuple[tuple[str, str], ...], str]:
        if fault is SignatureFault.WRONG_TOKEN:
            return params, _signature(self._wrong_key, self._public_url, params)
        if fault is SignatureFault.MISSING:
            return params, ""
        if fault is SignatureFault.WRONG_URL:
            return params, _signature(self._key, self._wrong_url, params)
        valid = _signature(self._key, self._public_url, params)
        if fault is SignatureFault.TAMPERED:
            tampered = tuple((name, value + " 💸" if name == "Body" else value) for name, value in params)
            return tampered, valid
        # MANGLED: change one of the first 26 characters, which carry whole 6-bit groups, so that the
        # decoded digest differs too (the 27th carries padding bits a decoder may ignore).
        position = self._rng.randrange(26)
        replacement = self._rng.choice(_BASE64_ALPHABET.replace(valid[position], ""))
        return params, valid[:position] + replacement + valid[position + 1 :]

    def _build(self, kind: str, sender: Sender) -> tuple[tuple[tuple[str, str], ...], str]:
        rng = self._rng
        front: list[tuple[str, str]] = []
        media_types: tuple[str, ...] = ()
        message_type = kind
        if kind == "text":
            body = _job_offer_text(rng)
        elif kind == "command":
            body, message_type = rng.choice(_COMMANDS), "text"
        elif kind == "document":
            body, media_types = rng.choice(_DOCUMENT_CAPTIONS), ("application/pdf",)
        elif kind == "image":
            body, media_types = rng.choice(_IMAGE_CAPTIONS), (rng.choice(_IMAGE_TYPES),)
        elif kind == "location":
            latitude, longitude, address, label = rng.choice(_PLACES)
            body = ""
            front = [
                ("Latitude", f"{latitude + rng.uniform(-0.01, 0.01):.7f}"),
                ("Longitude", f"{longitude + rng.uniform(-0.01, 0.01):.7f}"),
            ]
            if rng.random() < 0.4:  # a shared place rather than a dropped pin
                front += [("Address", address), ("Label", label)]
        else:  # button: a quick reply to the bot's last message
            body, payload = rng.choice(_BUTTONS)
            front = [
                ("ButtonPayload", payload),
                ("ButtonText", body),
                ("OriginalRepliedMessageSender", self._bot_whatsapp),
                ("OriginalRepliedMessageSid", _new_sid("SM")),
            ]
        sid = _new_sid("MM" if media_types else "SM")
        media_urls = [
            f"https://api.twilio.com/{API_VERSION}/Accounts/{self._account_sid}/Messages/{sid}/Media/{_new_sid('ME')}"
            for _ in media_types
        ]
        # Field order as captured from real Twilio WhatsApp webhooks.
        params = [(f"MediaContentType{n}", content_type) for n, content_type in enumerate(media_types)]
        params += front
        params += [
            ("SmsMessageSid", sid),
            ("NumMedia", str(len(media_types))),
            ("ProfileName", sender.profile_name),
            ("MessageType", message_type),
            ("SmsSid", sid),
            ("WaId", sender.wa_id),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", self._bot_whatsapp),
            ("NumSegments", "1"),
            ("ReferralNumMedia", "0"),
            ("MessageSid", sid),
            ("AccountSid", self._account_sid),
        ]
        if self._messaging_service_sid is not None:
            params.append(("MessagingServiceSid", self._messaging_service_sid))
        params.append(("From", sender.whatsapp))
        params += [(f"MediaUrl{n}", url) for n, url in enumerate(media_urls)]
        params.append(("ApiVersion", API_VERSION))
        return tuple(params), sid


# --------------------------------------------------------------------------------------------- judging


def classify(
    status_code: int,
    signature_valid: bool,
    body: str | None = None,
    *,
    rejection_statuses: Collection[int] = (403,),
) -> tuple[Outcome, str | None]:
    """Judge the bot's answer to one webhook: the :class:`Outcome` and, unless it is a success, why.

    ``body`` (the response text) is checked for TwiML on a 2xx when given. ``status_code`` 0 means
    no response at all (Locust's code for connection errors and timeouts). ``rejection_statuses``
    are the codes that count as refusing a bad signature (Twilio's convention is 403).
    """
    if status_code in BACKPRESSURE_STATUSES:
        return Outcome.BACKPRESSURE, f"HTTP {status_code}"
    if 200 <= status_code < 300:
        if not signature_valid:
            return Outcome.FAILURE, "accepted invalid signature"
        if body is not None and "<Response" not in body:
            return Outcome.FAILURE, "not TwiML"
        return Outcome.SUCCESS, None
    if status_code in rejection_statuses:
        if signature_valid:
            return Outcome.FAILURE, "valid signature rejected"
        return Outcome.REJECTED, "invalid signature rejected"
    if status_code == 0:
        return Outcome.FAILURE, "no response"
    return Outcome.FAILURE, f"HTTP {status_code}"


_METRIC_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DURATION = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _split_unquoted(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double-quoted strings (which may contain backslash escapes)."""
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for position, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == separator:
            parts.append(text[start:position])
            start = position + 1
    parts.append(text[start:])
    return parts


def parse_server_timing(header: str | None) -> dict[str, float]:
    """Durations (milliseconds) from a Server-Timing header: ``db;dur=1.2;desc="x", app;dur=0.3``.

    Metrics without a usable ``dur`` are left out; a metric named twice has its durations added;
    the first ``dur`` of a metric wins (as the spec says). Malformed parts are skipped, never raised.
    """
    durations: dict[str, float] = {}
    if not header:
        return durations
    for metric in _split_unquoted(header, ","):
        name, *metric_params = _split_unquoted(metric, ";")
        name = name.strip()
        if not _METRIC_NAME.fullmatch(name):
            continue
        for param in metric_params:
            key, has_value, value = param.partition("=")
            if key.strip().lower() != "dur" or not has_value:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].strip()
            if _DURATION.fullmatch(value):
                duration_ms = float(value)
                if math.isfinite(duration_ms):
                    durations[name] = durations.get(name, 0.0) + duration_ms
            break
    return durations


__all__ = [
    "API_VERSION",
    "BACKPRESSURE_STATUSES",
    "FORM_CONTENT_TYPE",
    "IDEMPOTENCY_HEADER",
    "MAX_SENDERS",
    "MESSAGE_KINDS",
    "SIGNATURE_HEADER",
    "TWILIO_TIMEOUT_S",
    "TWILIO_USER_AGENT",
    "Outcome",
    "Sender",
    "SignatureFault",
    "TrafficGenerator",
    "WebhookMessage",
    "classify",
    "parse_server_timing",
    "sign",
]
