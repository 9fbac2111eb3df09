"""The client's assumptions as data (``CLIENT_CONTRACT``) against OpenAPI documents: each difference
is named, tolerated ones as notes, breaking ones as problems; both sandbox profiles' own documents
hold no problem."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rivya_mcp.client import (
    CLIENT_CONTRACT,
    ERROR_CLASS_BY_CODE,
    NEVER_RETRY_CODES,
    RETRY_CODES,
    ContractFinding,
    compare_openapi,
)
from rivya_mcp.sandbox import PROFILES, WEBHOOK_SIGNINGS, get_profile, openapi_document


def _sandbox_doc(profile: str = "default", signing: str = "standard") -> dict[str, Any]:
    return openapi_document(get_profile(profile), webhook_signing=signing, base_url="http://sandbox.test")


def _levels(findings: list[ContractFinding]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for finding in findings:
        out.setdefault(finding.level, set()).add(finding.subject)
    return out


def test_every_code_the_client_acts_on_is_in_the_contract() -> None:
    assert NEVER_RETRY_CODES | RETRY_CODES | set(ERROR_CLASS_BY_CODE) <= set(CLIENT_CONTRACT.error_statuses)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("signing", WEBHOOK_SIGNINGS)
def test_each_sandbox_profile_documents_nothing_the_client_cannot_work_with(profile: str, signing: str) -> None:
    levels = _levels(compare_openapi(_sandbox_doc(profile, signing)))
    assert "problem" not in levels
    assert levels.get("warn", set()) == ({"webhook signature"} if signing == "unknown" else set())


def test_the_variants_choices_are_named_as_tolerated_differences() -> None:
    findings = {f.subject: f for f in compare_openapi(_sandbox_doc("variant", "stripe"))}
    assert findings["file object"].level == "note"
    assert "file_id" in findings["file object"].detail and "no kind" in findings["file object"].detail
    assert "insufficient_credits is 400" in findings["error statuses"].detail
    assert findings["Retry-After"].detail.startswith("http-date")
    assert findings["create status"].detail.startswith("200")


def _broken(mutate: Any) -> list[ContractFinding]:
    doc = copy.deepcopy(_sandbox_doc())
    mutate(doc)
    return compare_openapi(doc)


@pytest.mark.parametrize(
    ("mutate", "subject", "level", "named"),
    [
        (lambda d: d["paths"].pop("/api/v1/credits"), "paths", "problem", "GET /api/v1/credits"),
        (
            lambda d: d["components"]["schemas"]["Generation"]["properties"]["status"]["enum"].append("canceled"),
            "task statuses",
            "problem",
            "canceled",
        ),
        (
            lambda d: d["components"]["schemas"]["Generation"]["properties"].pop("status"),
            "Generation fields",
            "problem",
            "status",
        ),
        (
            lambda d: d["components"]["schemas"]["PublicApiFile"]["properties"].pop("id"),
            "file object",
            "problem",
            "no id field",
        ),
        (
            lambda d: d["paths"]["/api/v1/generations"]["post"].update(responses={"400": {}}),
            "create status",
            "problem",
            "no 2xx",
        ),
        (
            lambda d: d["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"].append(
                "quota_exceeded"
            ),
            "error codes",
            "note",
            "quota_exceeded",
        ),
        (
            lambda d: d["components"]["schemas"]["Model"]["properties"]["api_status"]["enum"].append("beta"),
            "api_status values",
            "note",
            "beta",
        ),
        (lambda d: d.update({"x-webhook-signature": {"scheme": "ed25519", "headers": ["sig"]}}), "webhook signature",
         "warn", "ed25519"),
        (lambda d: d.pop("x-webhook-signature"), "webhook signature", "note", "not stated"),
        (
            lambda d: d["paths"]["/api/v1/generations"]["post"]["responses"]["400"]["x-error-codes"].append(
                "not_found"
            ),
            "error statuses",
            "note",
            "not_found is 400/404",
        ),
    ],
)  # fmt: skip
def test_each_difference_is_named(mutate: Any, subject: str, level: str, named: str) -> None:
    matching = [f for f in _broken(mutate) if f.subject == subject and f.level == level]
    assert matching and any(named in f.detail for f in matching), _broken(mutate)


@pytest.mark.parametrize("document", [{}, {"paths": "nope"}, {"components": {"schemas": {"Generation": 3}}},
                                      {"paths": {"/x": {"get": None}}, "components": []}])  # fmt: skip
def test_any_document_is_compared_without_an_error(document: dict[str, Any]) -> None:
    findings = compare_openapi(document)
    assert findings and all(f.level in ("ok", "note", "warn", "problem") for f in findings)
    assert not [f for f in findings if f.level == "problem"]


def test_references_are_followed_and_cycles_end() -> None:
    doc = _sandbox_doc()
    doc["components"]["schemas"]["Loop"] = {"$ref": "#/components/schemas/Loop"}
    doc["components"]["schemas"]["Generation"] = {"$ref": "#/components/schemas/Loop"}
    findings = compare_openapi(doc)
    assert any(f.subject == "Generation fields" and f.level == "problem" for f in findings)
