"""The sample conversations both template tests render: the connector's golden test against the models' own
templates (tests/unit/spcs/test_templates_transformers.py) and the stand-in's server-side rendering
(tests/unit/standin/test_standin_template_rendering.py), so the two sides are checked on the same inputs."""

CONVERSATIONS = {
    "single": [{"role": "user", "content": "What is SPCS?"}],
    "system_multi": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "  2+2?\n"},
    ],
    "multi": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me more."},
    ],
}
# A system prompt alone before the question: what the stand-in's tiny model is also trained on.
SYSTEM_SINGLE = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
