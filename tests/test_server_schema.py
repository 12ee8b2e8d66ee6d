"""schemathesis against the served OpenAPI schema: generated requests to every operation never get a 5xx."""

from dataclasses import replace

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from masterocr.charset import Charset  # noqa: E402
from masterocr.model import MASTER, get_preset  # noqa: E402
from masterocr.runtime.torch import Recognizer  # noqa: E402
from masterocr.serve.app import create_app  # noqa: E402

CHARSET = Charset.default()
APP = create_app(Recognizer(MASTER(replace(get_preset("tiny"), max_len=4), len(CHARSET)), CHARSET))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_get_a_server_error(case):
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
