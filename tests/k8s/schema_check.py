#!/usr/bin/python3
"""Schema-level check of Kubernetes manifests, offline (no cluster, no network).

Usage: tests/k8s/schema_check.py FILE...   exit 0 when every object of every YAML document
                                           holds, else 1 with one line per problem

`kubectl apply --dry-run=client` needs an API server even with --validate=false (it asks
the server which resource a kind is), so the check uses the API models of Debian's
python3-kubernetes instead, which are generated from Kubernetes' OpenAPI specification.
For every object: its apiVersion and kind name a known model; at every depth, every field is
one the model has (a typo is an error, as `kubectl --validate=strict` would report) and every
value has the model's type; fields the model requires are present.
"""
import sys

import kubernetes.client as api
import yaml

PRIMITIVES = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "date": (str,),
    "datetime": (str,),
    "object": (object,),
}


def model_class(api_version, kind):
    version = api_version.rpartition("/")[2]
    return getattr(api, version[:1].upper() + version[1:] + kind, None)


def check(value, typ, path, problems):
    if typ.startswith("list["):
        if not isinstance(value, list):
            problems.append(f"{path}: a list expected, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check(item, typ[5:-1], f"{path}[{i}]", problems)
    elif typ.startswith("dict("):
        if not isinstance(value, dict):
            problems.append(f"{path}: a map expected, got {type(value).__name__}")
            return
        inner = typ[5:-1].split(", ", 1)[1]
        for key, item in value.items():
            check(item, inner, f"{path}.{key}", problems)
    elif typ in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[typ]) and not (typ == "int" and isinstance(value, bool))
        if not ok:
            problems.append(f"{path}: {typ} expected, got {value!r}")
    else:
        cls = getattr(api, typ, None)
        if cls is None:
            problems.append(f"{path}: unknown model {typ}")
            return
        if not isinstance(value, dict):
            problems.append(f"{path}: a {typ} object expected, got {value!r}")
            return
        by_json = {json: attr for attr, json in cls.attribute_map.items()}
        for key, item in value.items():
            if key not in by_json:
                problems.append(f"{path}: unknown field {key!r} in {typ}")
            else:
                check(item, cls.openapi_types[by_json[key]], f"{path}.{key}", problems)
        # The models' setters refuse a missing required field (and values outside an enum).
        try:
            cls(**{attr: value.get(json) for attr, json in cls.attribute_map.items()})
        except (ValueError, TypeError) as e:
            problems.append(f"{path}: {e}")


def main(paths):
    problems = []
    count = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            documents = list(yaml.safe_load_all(f))
        for n, doc in enumerate(documents):
            if doc is None:
                continue
            where = f"{path}#{n}"
            cls = model_class(doc.get("apiVersion", ""), doc.get("kind", ""))
            if cls is None:
                problems.append(f"{where}: unknown apiVersion/kind {doc.get('apiVersion')}/{doc.get('kind')}")
                continue
            where += f" ({doc['kind']} {doc.get('metadata', {}).get('name', '?')})"
            check(doc, cls.__name__, where, problems)
            count += 1
    for p in problems:
        print(p)
    print(f"{count} objects checked, {len(problems)} problems")
    return 1 if problems or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
