"""Schemathesis over the whole OpenAPI document, on both stores: no 5xx, no schema breaks."""

from __future__ import annotations

import pytest
import schemathesis
from apicity import City
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection,
          unsupported_method]


@pytest.fixture(scope="module")
def api_schema(live_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


# Every operation is covered, /plans included.  Random plan names rarely name a plan, so
# tests/api/test_api_plans.py also walks a draft through every /plans route and validates
# each answer against this same document.
@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])
def test_openapi_conformance(case: schemathesis.Case, city: City) -> None:
    case.call_and_validate(headers=city.auth("admin"), checks=CHECKS)
