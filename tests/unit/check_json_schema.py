# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Validate a JSON file against a JSON Schema, draft-07 subset, no packages.

    check_json_schema.py SCHEMA.json DOCUMENT.json

Exit 0 when DOCUMENT matches; 1 with "DOCUMENT: <path>: <why>" on stderr for
the first mismatch (path like $.processes[0].stacks[2].growth_fit) or a
document that is not strict JSON; 2 for a usage error, an unreadable file, or
a schema using a keyword outside the subset (checked over the whole schema,
so that a typo in it cannot make every document pass).

Subset: type (object, array, string, integer, number, boolean, null, or a
list of them), properties, required, additionalProperties (bool or schema),
items (schema, or list of schemas for fixed positions), minItems, maxItems,
enum, minimum, maximum; $schema, $id, $comment, title, description are
ignored. Stricter than draft-07 where a report writer needs it: "integer"
means written without fraction or exponent (1.0 is not an integer), NaN and
Infinity are rejected, and so are duplicate keys in an object.
"""
import json
import sys

ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description"}
KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items",
    "minItems", "maxItems", "enum", "minimum", "maximum",
} | ANNOTATIONS
TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


class Mismatch(Exception):
    def __init__(self, path, why):
        Exception.__init__(self, "%s: %s" % (path, why))


class BadSchema(Exception):
    pass


def reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def unique_pairs(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate key %s" % json.dumps(key))
        obj[key] = value
    return obj


def load(path):
    """The parsed file; OSError, or ValueError when it is not strict JSON."""
    with open(path, encoding="utf-8") as f:
        return json.load(f, parse_constant=reject_constant, object_pairs_hook=unique_pairs)


def check_schema(schema):
    """Every subschema uses known keywords only, visited or not by a document."""
    work = [(schema, "#")]
    while work:
        s, where = work.pop()
        if isinstance(s, bool):
            continue
        if not isinstance(s, dict):
            raise BadSchema("schema at %s is not an object or boolean" % where)
        unknown = set(s) - KEYWORDS
        if unknown:
            raise BadSchema("schema at %s uses unsupported keyword(s) %s"
                            % (where, ", ".join(sorted(unknown))))
        names = s.get("type", [])
        for n in names if isinstance(names, list) else [names]:
            if n not in TYPES:
                raise BadSchema("schema at %s: unknown type %r" % (where, n))
        props = s.get("properties", {})
        if not isinstance(props, dict):
            raise BadSchema("schema at %s: properties is not an object" % where)
        for key, sub in props.items():
            work.append((sub, "%s/properties/%s" % (where, key)))
        if "additionalProperties" in s:
            work.append((s["additionalProperties"], where + "/additionalProperties"))
        items = s.get("items", True)
        if isinstance(items, list):
            for i, sub in enumerate(items):
                work.append((sub, "%s/items/%d" % (where, i)))
        else:
            work.append((items, where + "/items"))


def type_ok(value, name):
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "integer":
        # json.load gives int only for literals without fraction/exponent
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    raise BadSchema("unknown type %r" % name)


def describe(value):
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number %r" % value
    if isinstance(value, str):
        return "string"
    return type(value).__name__.replace("dict", "object").replace("list", "array")


def child(path, key):
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    if key.isidentifier():
        return "%s.%s" % (path, key)
    return "%s[%s]" % (path, json.dumps(key))


def same(a, b):
    """enum equality that keeps true apart from 1 and 1.0 apart from 1."""
    return type(a) is type(b) and a == b


def check(schema, value, path):
    # Iterative, not recursive: a hostile document cannot exhaust the stack.
    work = [(schema, value, path)]
    while work:
        schema, value, path = work.pop()
        if schema is True:
            continue
        if schema is False:
            raise Mismatch(path, "not allowed here")
        if "type" in schema:
            names = schema["type"]
            names = names if isinstance(names, list) else [names]
            if not any(type_ok(value, n) for n in names):
                raise Mismatch(path, "%s where %s was expected"
                               % (describe(value), " or ".join(names)))

        if "enum" in schema and not any(same(value, e) for e in schema["enum"]):
            raise Mismatch(path, "%s is not one of %s"
                           % (json.dumps(value), json.dumps(schema["enum"])))

        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                raise Mismatch(path, "%r is below minimum %r" % (value, schema["minimum"]))
            if "maximum" in schema and value > schema["maximum"]:
                raise Mismatch(path, "%r is above maximum %r" % (value, schema["maximum"]))

        if isinstance(value, dict):
            props = schema.get("properties", {})
            for key in schema.get("required", []):
                if key not in value:
                    raise Mismatch(path, "required key %s missing" % json.dumps(key))
            extra = schema.get("additionalProperties", True)
            for key in sorted(value, reverse=True):
                if key in props:
                    work.append((props[key], value[key], child(path, key)))
                elif extra is False:
                    raise Mismatch(child(path, key), "key not allowed")
                else:
                    work.append((extra, value[key], child(path, key)))

        if isinstance(value, list):
            if "minItems" in schema and len(value) < schema["minItems"]:
                raise Mismatch(path, "%d items, fewer than %d"
                               % (len(value), schema["minItems"]))
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                raise Mismatch(path, "%d items, more than %d"
                               % (len(value), schema["maxItems"]))
            items = schema.get("items", True)
            for i in reversed(range(len(value))):
                if isinstance(items, list):
                    # draft-07 tuple form: positions past the list are free
                    sub = items[i] if i < len(items) else True
                else:
                    sub = items
                work.append((sub, value[i], child(path, i)))


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: check_json_schema.py SCHEMA.json DOCUMENT.json\n")
        return 2
    try:
        schema = load(argv[1])
        check_schema(schema)
    except (OSError, ValueError) as e:
        sys.stderr.write("check_json_schema: cannot read schema %s: %s\n" % (argv[1], e))
        return 2
    except BadSchema as e:
        sys.stderr.write("check_json_schema: %s\n" % e)
        return 2
    try:
        doc = load(argv[2])
    except OSError as e:
        sys.stderr.write("check_json_schema: cannot read %s: %s\n" % (argv[2], e))
        return 2
    except (ValueError, RecursionError) as e:
        sys.stderr.write("%s: $: not strict JSON: %s\n" % (argv[2], e))
        return 1
    try:
        check(schema, doc, "$")
    except BadSchema as e:
        sys.stderr.write("check_json_schema: %s\n" % e)
        return 2
    except Mismatch as e:
        sys.stderr.write("%s: %s\n" % (argv[2], e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
