"""Makes tests/contract/apivideo-openapi-2023.json from api.video's published 2023 OpenAPI file
(YAML): the same document as JSON, so the Rust comparison test needs no YAML parser, without the
`x-doctave` code samples (a third of the file, never read by a tool). Run once, output committed:
  python3 tests/contract/convert.py /path/to/apivideo-openapi-2023.yaml
YAML dates in examples become ISO strings, as they would be on the wire."""
import datetime
import json
import sys

import yaml


def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if not k.startswith("x-doctave")}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o


def iso(o):
    if isinstance(o, (datetime.date, datetime.datetime)):
        return o.isoformat()
    raise TypeError(type(o))


src = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "tests/contract/apivideo-openapi-2023.json"
with open(src) as f:
    doc = strip(yaml.safe_load(f))
with open(out, "w") as f:
    json.dump(doc, f, indent=1, default=iso)
    f.write("\n")
