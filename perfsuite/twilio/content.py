"""What simulated users write: job offers (legit and scammy), questions, captions, places, buttons,
commands, in several languages and scripts, as users of a scam-checking WhatsApp bot send them."""

from __future__ import annotations

import random

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
DOCUMENT_CAPTIONS = (
    "",
    "",
    "",
    "Offer letter attached",
    "contract.pdf — please check",
    "Carta de oferta 📄",
    "They sent me this PDF, is it real?",
    "Appointment letter",
)
IMAGE_CAPTIONS = ("", "", "", "Screenshot of the job ad", "Is this legit? 👇", "Print da conversa")
IMAGE_TYPES = ("image/jpeg",) * 8 + ("image/png", "image/webp")
PLACES = (
    (-23.5613, -46.6565, "Av. Paulista, 1578 - Bela Vista, São Paulo - SP, 01310-200", "MASP"),
    (6.4281, 3.4219, "Plot 1, Adeola Odeku St, Victoria Island, Lagos", "Interview venue"),
    (-1.2864, 36.8172, "Kenyatta Avenue, Nairobi", "Hilton Nairobi"),
    (12.9716, 77.5946, "MG Road, Bengaluru, Karnataka 560001", "Office"),
    (19.4270, -99.1677, "Av. Paseo de la Reforma 483, Cuauhtémoc, CDMX", "Torre Reforma"),
    (52.5163, 13.3889, "Friedrichstraße 68, 10117 Berlin", "Büro"),
    (47.3717, 8.5386, "Bahnhofstrasse 45, 8001 Zürich", "Empfang"),
    (14.5547, 121.0244, "Ayala Ave, Makati, Metro Manila", "BPO office"),
)
BUTTONS = (
    ("Check another offer", "check_another"),
    ("Report as scam", "report_scam"),
    ("Yes, it's legit", "feedback_yes"),
    ("No, it was a scam", "feedback_no"),
    ("Talk to a human", "human_agent"),
    ("Ver más 🔎", "more_info"),
    ("Stop alerts", "unsubscribe"),
)
COMMANDS = ("help", "HELP", "Help", "status", "Status", "/start", "/help", "stop", "STOP", "start", "menu")


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


def job_offer_text(rng: random.Random) -> str:
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


__all__ = [
    "BUTTONS",
    "COMMANDS",
    "DOCUMENT_CAPTIONS",
    "IMAGE_CAPTIONS",
    "IMAGE_TYPES",
    "PLACES",
    "job_offer_text",
]
