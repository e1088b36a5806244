"""JSON:API 1.0 as a JSON Schema (draft-07), written from the specification
(jsonapi.org/format/1.0): the top level, resource objects, relationships, linkage, links,
error objects. Checked with the ``jsonschema`` package, it is a judge of the server's
documents that owes nothing to the server's own code."""

from __future__ import annotations

from typing import Any

MEMBER_NAME = r"^[a-zA-Z0-9](?:[-\w]*[a-zA-Z0-9])?$"

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "JSON:API 1.0 document",
    "oneOf": [{"$ref": "#/definitions/success"}, {"$ref": "#/definitions/failure"},
              {"$ref": "#/definitions/info"}],
    "definitions": {
        "success": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {"$ref": "#/definitions/data"},
                "included": {
                    "type": "array", "items": {"$ref": "#/definitions/resource"},
                    "uniqueItems": True,
                },
                "meta": {"$ref": "#/definitions/meta"},
                "links": {"allOf": [{"$ref": "#/definitions/links"},
                                    {"$ref": "#/definitions/pagination"}]},
                "jsonapi": {"$ref": "#/definitions/jsonapi"},
            },
            "additionalProperties": False,
        },
        "failure": {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {"type": "array", "items": {"$ref": "#/definitions/error"},
                           "uniqueItems": True},
                "meta": {"$ref": "#/definitions/meta"},
                "jsonapi": {"$ref": "#/definitions/jsonapi"},
                "links": {"$ref": "#/definitions/links"},
            },
            "additionalProperties": False,
        },
        "info": {
            "type": "object",
            "required": ["meta"],
            "properties": {
                "meta": {"$ref": "#/definitions/meta"},
                "links": {"$ref": "#/definitions/links"},
                "jsonapi": {"$ref": "#/definitions/jsonapi"},
            },
            "additionalProperties": False,
        },
        "meta": {"type": "object", "additionalProperties": True},
        "data": {
            "oneOf": [
                {"$ref": "#/definitions/resource"},
                {"type": "array", "items": {"$ref": "#/definitions/resource"},
                 "uniqueItems": True},
                {"type": "null"},
            ],
        },
        "resource": {
            "type": "object",
            "required": ["type", "id"],
            "properties": {
                "type": {"type": "string", "pattern": MEMBER_NAME},
                "id": {"type": "string"},
                "attributes": {"$ref": "#/definitions/attributes"},
                "relationships": {"$ref": "#/definitions/relationships"},
                "links": {"$ref": "#/definitions/links"},
                "meta": {"$ref": "#/definitions/meta"},
            },
            "additionalProperties": False,
        },
        "relationshipLinks": {
            "type": "object",
            "properties": {"self": {"$ref": "#/definitions/link"},
                           "related": {"$ref": "#/definitions/link"}},
            "additionalProperties": True,
        },
        "links": {"type": "object", "additionalProperties": {"$ref": "#/definitions/link"}},
        "link": {
            "oneOf": [
                {"type": "string", "format": "uri-reference"},
                {"type": "object", "required": ["href"],
                 "properties": {"href": {"type": "string", "format": "uri-reference"},
                                "meta": {"$ref": "#/definitions/meta"}}},
            ],
        },
        "attributes": {
            "type": "object",
            "patternProperties": {MEMBER_NAME: {}},
            "not": {"anyOf": [{"required": ["relationships"]}, {"required": ["links"]},
                              {"required": ["id"]}, {"required": ["type"]}]},
            "additionalProperties": False,
        },
        "relationships": {
            "type": "object",
            "patternProperties": {
                MEMBER_NAME: {
                    "type": "object",
                    "properties": {
                        "links": {"$ref": "#/definitions/relationshipLinks"},
                        "data": {"$ref": "#/definitions/relationshipData"},
                        "meta": {"$ref": "#/definitions/meta"},
                    },
                    "anyOf": [{"required": ["data"]}, {"required": ["meta"]},
                              {"required": ["links"]}],
                    "additionalProperties": False,
                },
            },
            "not": {"anyOf": [{"required": ["id"]}, {"required": ["type"]}]},
            "additionalProperties": False,
        },
        "relationshipData": {
            "oneOf": [
                {"type": "null"},
                {"$ref": "#/definitions/linkage"},
                {"type": "array", "items": {"$ref": "#/definitions/linkage"},
                 "uniqueItems": True},
            ],
        },
        "linkage": {
            "type": "object",
            "required": ["type", "id"],
            "properties": {"type": {"type": "string", "pattern": MEMBER_NAME},
                           "id": {"type": "string"}, "meta": {"$ref": "#/definitions/meta"}},
            "additionalProperties": False,
        },
        "pagination": {
            "type": "object",
            "properties": {name: {"oneOf": [{"$ref": "#/definitions/link"}, {"type": "null"}]}
                           for name in ("first", "last", "prev", "next")},
        },
        "jsonapi": {
            "type": "object",
            "properties": {"version": {"type": "string"}, "meta": {"$ref": "#/definitions/meta"}},
            "additionalProperties": False,
        },
        "error": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "links": {"type": "object",
                          "properties": {"about": {"$ref": "#/definitions/link"}}},
                "status": {"type": "string"},
                "code": {"type": "string"},
                "title": {"type": "string"},
                "detail": {"type": "string"},
                "source": {"type": "object", "properties": {"pointer": {"type": "string"},
                                                            "parameter": {"type": "string"}}},
                "meta": {"$ref": "#/definitions/meta"},
            },
            "additionalProperties": False,
        },
    },
}
