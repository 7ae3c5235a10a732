"""The placeholder API keys the sandbox recipes use (``make dev``/``demo``, ``.env.sandbox``, the README).

The sandbox accepts any non-empty key; these read as keys (long, unique strings) rather than a common word, because
every configured key is also a secret that logs and results are scrubbed of: a key like ``sandbox`` would blank that
word out of every log line.
"""
DEMO_KEYS = {
    "OPENROUTER_API_KEY": "sbx-openrouter-demo-key-0001",
    "WEATHERAPI_API_KEY": "sbx-weatherapi-demo-key-0001",
    "GOOGLE_PLACES_API_KEY": "sbx-places-demo-key-0001",
}
