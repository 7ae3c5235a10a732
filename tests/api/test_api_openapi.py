"""GET /openapi.json and /docs: a valid OpenAPI 3 document generated from the same schemas the views use."""
from __future__ import annotations

import re
from typing import Any

import pytest

from llm_service.api import schemas
from tests.api.support import SECRET


@pytest.fixture
def document(api) -> dict:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def _resolve(document: dict, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def test_the_document_is_valid_openapi(document):
    assert document["openapi"].startswith("3.0")
    try:
        from openapi_spec_validator import validate
    except ImportError:  # not installed here: the official 3.0 JSON schema, as shipped with schemathesis
        from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

        errors = [str(error) for error in OPENAPI_30_VALIDATOR.iter_errors(document)]
        assert errors == []
        for ref in _refs(document):
            assert _resolve(document, ref) is not None
    else:
        validate(document)


def test_schemathesis_can_load_every_operation(document):
    import schemathesis

    loaded = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in document["paths"].values())


def test_every_route_is_documented(api, document):
    routes = set()
    for rule in api.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    documented = {(path, method) for path, methods in document["paths"].items() for method in methods}
    assert routes == documented
    assert {("/api/v1/workflow", "post"), ("/api/v1/workflow/validate", "post"), ("/api/v1/workflows", "get"),
            ("/api/v1/status/{job_id}", "get"), ("/api/v1/jobs", "get"), ("/api/v1/jobs/{job_id}", "get"),
            ("/api/v1/jobs/{job_id}/cancel", "post"), ("/api/v1/jobs/{job_id}/webhooks", "get"),
            ("/api/v1/jobs/bulk", "delete"), ("/", "get"), ("/health", "get"), ("/openapi.json", "get"),
            ("/docs", "get")} <= documented


def test_api_routes_require_the_secret_and_document_auth_errors(document):
    scheme = document["components"]["securitySchemes"]["ApiSecret"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-API-Secret"}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if path.startswith("/api/v1/"):
                assert operation["security"] == [{"ApiSecret": []}], (path, method)
                assert {"401", "500", "503"} <= set(operation["responses"]), (path, method)
            else:
                assert operation["security"] == [], (path, method)


def test_the_request_body_schema_is_the_validation_schema(document):
    operation = document["paths"]["/api/v1/workflow"]["post"]
    media = operation["requestBody"]["content"]["application/json"]
    body = _resolve(document, media["schema"]["$ref"])
    assert set(body["properties"]) == set(schemas.SubmitRequestSchema().fields)
    assert set(body["required"]) == {"workflow_name", "input_data"}
    assert body["properties"]["priority"]["minimum"] == 0 and body["properties"]["priority"]["maximum"] == 10
    assert body["properties"]["webhook_url"]["nullable"] is True
    assert set(media["example"]) <= set(body["properties"])
    assert {"202", "400", "404", "413", "422", "429", "500", "503"} <= set(operation["responses"])


def test_query_parameters_come_from_the_query_schema(document):
    parameters = {p["name"]: p for p in document["paths"]["/api/v1/jobs"]["get"]["parameters"]}
    assert set(parameters) == set(schemas.JobListQuerySchema().fields)
    assert all(p["in"] == "query" for p in parameters.values())
    assert parameters["limit"]["schema"]["maximum"] == 200 and parameters["limit"]["schema"]["default"] == 50
    assert "cancelled" in parameters["status"]["schema"]["enum"]


def test_responses_use_the_response_and_error_schemas(document):
    status_op = document["paths"]["/api/v1/status/{job_id}"]["get"]
    ok = status_op["responses"]["200"]["content"]["application/json"]
    status_schema = _resolve(document, ok["schema"]["$ref"])
    assert list(status_schema["properties"]) == list(schemas.StatusResponseSchema().fields)
    assert set(ok["example"]) == set(status_schema["properties"])
    not_found = status_op["responses"]["404"]["content"]["application/json"]
    error_schema = _resolve(document, not_found["schema"]["$ref"])
    assert error_schema["required"] == ["detail", "error", "message"]
    detail = _resolve(document, error_schema["properties"]["detail"]["$ref"])
    assert set(detail["required"]) == {"error", "message"} and detail["additionalProperties"] is True
    example = not_found["examples"]["JobNotFound"]["value"]
    assert example["detail"]["error"] == "JobNotFound" and "message" in example["detail"]


def test_examples_of_success_responses_match_their_schemas(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json", {})
                if status.startswith("2") and "$ref" in media.get("schema", {}) and "example" in media:
                    properties = _resolve(document, media["schema"]["$ref"])["properties"]
                    assert set(media["example"]) <= set(properties), (path, method, status)


def test_the_document_reflects_the_configuration_and_holds_no_secret(make_api):
    api = make_api(api_title="Custom Title", api_version="4.5.6")
    response = api.client.get("/openapi.json")
    assert response.get_json()["info"]["title"] == "Custom Title"
    assert response.get_json()["info"]["version"] == "4.5.6"
    assert SECRET.encode() not in response.data


def test_docs_page_loads_swagger_ui_with_the_document(api):
    response = api.client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "swagger-ui" in page and '"/openapi.json"' in page
    assert "//" not in page  # no other host (no URL with a scheme or protocol-relative): works offline


def test_docs_assets_are_served_from_the_installed_package(api):
    page = api.client.get("/docs").get_data(as_text=True)
    assets = re.findall(r'(?:href|src)="(/docs/assets/[^"]+)"', page)
    assert {"/docs/assets/swagger-ui.css", "/docs/assets/swagger-ui-bundle.js"} <= set(assets)
    for path in assets:
        response = api.client.get(path)
        assert response.status_code == 200 and len(response.data) > 500, path
        response.close()
    bundle = api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.mimetype == "text/javascript" and b"SwaggerUIBundle" in bundle.data
    bundle.close()
    for wrong in ("index.html", "..%2Fsetup.py", "swagger-ui.js.map"):
        response = api.client.get(f"/docs/assets/{wrong}")
        assert response.status_code == 404 and response.get_json()["detail"]["error"] == "NotFound"


def test_docs_title_is_escaped(make_api):
    api = make_api(api_title="<script>x</script>")
    assert "<script>x</script>" not in api.client.get("/docs").get_data(as_text=True)


def test_the_workflow_detail_endpoint_is_documented(document):
    operation = document["paths"]["/api/v1/workflows/{name}"]["get"]
    assert {p["name"]: p["in"] for p in operation["parameters"]} == {"name": "path", "format": "query"}
    assert {"200", "400", "404", "500"} <= set(operation["responses"])
    ok = operation["responses"]["200"]["content"]["application/json"]
    detail = _resolve(document, ok["schema"]["$ref"])
    assert {"inputs", "steps", "diagram", "waves", "upstream_calls"} <= set(detail["properties"])
