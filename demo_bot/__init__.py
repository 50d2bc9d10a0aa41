"""demo_bot: the reference system under test for perfsuite.

A small, real WhatsApp webhook bot modelled on the "Reality Checker" bot (it checks job offers
sent over WhatsApp). It imports nothing from the suite and is only ever started as a separate
process::

    TWILIO_AUTH_TOKEN=... DEMO_BOT_REDIS_URL=redis://127.0.0.1:6380/0 \\
        python -m demo_bot --host 127.0.0.1 --port 8000 --mode optimized|legacy

Where each concept lives: ``config`` (flags, env), ``signature`` (X-Twilio-Signature), ``keys``
(every Redis key), ``breaker`` (circuit breaker), ``redis_gateway`` (pool, retry, breaker;
per-request connections for legacy), ``ratelimit`` / ``dedupe`` (in-memory fallbacks and window
arithmetic), ``intake`` (one-round-trip admission script), ``message_queue`` (Redis list + memory
fallback), ``analysis`` (the reality check), ``workers``, ``storage`` (SQLite / PostgreSQL),
``legacy`` (the pre-optimization path), ``pipelines`` (optimized vs legacy behind one interface),
``metrics`` (Prometheus text), ``app`` (WSGI routes, /health, /metrics), ``server`` (pywsgi with
TCP_NODELAY, clean stop), ``__main__``.

This package must stay importable without side effects: ``__main__`` monkey-patches for gevent
before anything else is imported.
"""
