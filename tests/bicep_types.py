"""Checks every property a Bicep file of infra/ writes against Azure's published Bicep types (bicep-types-az),
as `bicep build` would: a property the type does not declare (BCP037) or declares read-only (BCP073). Each one
must sit right under a `#disable-next-line <code> <reason>` in the file: the known gaps of the published types,
each with why the property is right anyway. Prints one line per problem; exits 1 if any is unexplained.

usage: bicep_types.py <bicep-types dir> <file.bicep>...
"""
import json
import pathlib
import re
import sys

from pycep import BicepParser

TYPES = pathlib.Path(sys.argv[1])
# Keys Bicep itself reads on a resource, not the resource type.
BICEP_KEYWORDS = {"scope", "parent", "dependsOn"}
# What pycep makes of an expression: a dict with one of these keys is a value, not an object literal.
EXPRESSION_KEYS = {"function", "operator", "property_accessor", "index_accessor", "loop_type", "condition", "interpolation"}
READ_ONLY = 2


def load_types():
    """Every ResourceType by `type@version`, with the list its refs index."""
    out = {}
    for f in TYPES.rglob("types.json"):
        types = json.loads(f.read_text())
        for t in types:
            if t.get("$type") == "ResourceType":
                out[t["name"].lower()] = (types, t["body"])
    return out


def resolve(types, ref):
    return types[int(ref["$ref"].split("/")[-1])]


def is_expression(value):
    return isinstance(value, dict) and any(k in value for k in EXPRESSION_KEYS)


def walk(types, ref, value, path, problems):
    t = resolve(types, ref)
    kind = t["$type"]
    if is_expression(value):
        return
    if kind == "ArrayType":
        if isinstance(value, list):
            for i, item in enumerate(value):
                walk(types, t["itemType"], item, f"{path}[{i}]", problems)
        return
    if kind == "UnionType":
        for element in t["elements"]:
            trial = []
            walk(types, element, value, path, trial)
            if not trial:
                return
        return
    if not isinstance(value, dict):
        return
    if kind == "ObjectType":
        props = dict(t.get("properties", {}))
        additional = t.get("additionalProperties")
    elif kind == "DiscriminatedObjectType":
        props = dict(t.get("baseProperties", {}))
        tag = value.get(t["discriminator"])
        element = t["elements"].get(tag) if isinstance(tag, str) else None
        if element is None:
            return
        props.update(resolve(types, element).get("properties", {}))
        props[t["discriminator"]] = {"type": None, "flags": 1}
        additional = None
    else:
        return
    for key, v in value.items():
        if key in props:
            p = props[key]
            if p.get("flags", 0) & READ_ONLY and not p.get("flags", 0) & 1:
                problems.append(("BCP073", f"{path}.{key}", key))
            elif p.get("type") is not None:
                walk(types, p["type"], v, f"{path}.{key}", problems)
        elif additional is not None:
            walk(types, additional, v, f"{path}.{key}", problems)
        elif not path and key in BICEP_KEYWORDS:
            continue
        else:
            problems.append(("BCP037", f"{path}.{key}" if path else key, key))


def explained(lines, key, code):
    """Whether a line writing `key:` sits right under `#disable-next-line <code>`, itself under a `//` comment
    that says why (Bicep reads every word after the directive as a diagnostic code, so the reason goes above)."""
    for i, line in enumerate(lines):
        if re.match(rf"\s*'?{re.escape(key)}'?\s*:", line) and i > 1:
            directive = re.match(r"#disable-next-line\s+(.+)", lines[i - 1].strip())
            reason = lines[i - 2].strip()
            if directive and code in directive.group(1).split() and reason.startswith("//") and len(reason) > 20:
                return True
    return False


def main():
    types = load_types()
    unexplained = 0
    for f in sys.argv[2:]:
        text = pathlib.Path(f).read_text()
        lines = text.splitlines()
        parsed = BicepParser().parse(file_path=pathlib.Path(f))
        for name, res in parsed.get("resources", {}).items():
            key = f"{res['type']}@{res['api_version']}".lower()
            if res.get("existing"):
                continue
            if key not in types:
                print(f"{f}: {name}: {key}: no published type here (add its types.json)")
                unexplained += 1
                continue
            table, body = types[key]
            config = res.get("config", {})
            # A conditional or looped resource: pycep keeps its body under `config`.
            while isinstance(config, dict) and "config" in config and ("loop_type" in config or "condition" in config):
                config = config["config"]
            problems = []
            walk(table, body, config, "", problems)
            for code, path, prop in problems:
                ok = explained(lines, prop, code)
                print(f"{f}: {name} ({key}): {code} {path}: {'suppressed with a reason' if ok else 'NOT EXPLAINED'}")
                unexplained += 0 if ok else 1
    sys.exit(1 if unexplained else 0)


main()
