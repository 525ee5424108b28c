#!/usr/bin/env python3
"""Validate vectors/*.json against vectors/schema/*.schema.json (needs `pip install jsonschema`).

Exit status 1 when any file breaks its schema. CI checks the same in Rust
(`every_vector_file_is_valid_under_its_json_schema` in `conformance/tests/vectors.rs`).
"""
import json
import os
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors")
schemas = os.path.join(root, "schema")
registry = Registry().with_resources(
    (name, Resource.from_contents(json.load(open(os.path.join(schemas, name)))))
    for name in os.listdir(schemas)
)
bad = 0
for suite in ["wire", "node-id", "distance", "closest", "value-key", "store", "pubkeyhash", "rest"]:
    schema = json.load(open(os.path.join(schemas, f"{suite}.schema.json")))
    doc = json.load(open(os.path.join(root, f"{suite}.json")))
    errors = list(Draft202012Validator(schema, registry=registry).iter_errors(doc))
    print(f"{suite}.json: {len(doc['cases'])} cases, {len(errors)} schema errors")
    for e in errors[:10]:
        print(f"  {list(e.path)}: {e.message[:200]}")
    bad += len(errors)
sys.exit(1 if bad else 0)
