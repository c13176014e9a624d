#!/usr/bin/env python3
"""Writes crates/vidi-core/src/languages.tsv, the primary language subtags Vidi accepts in caption
and chapter languages (BCP 47: the shortest ISO 639 code of a language), from Debian's iso-codes
JSON (`apt-get install iso-codes`). Run it again when iso-codes adds languages.

Each line is `code<TAB>English name`, or `code<TAB>>shorter` for a three-letter code that BCP 47
does not use because the language has a two-letter one (so the error can name it)."""
import json
import pathlib

SRC = pathlib.Path("/usr/share/iso-codes/json")
OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/vidi-core/src/languages.tsv"

rows = {}
redirect = {}
for entry in json.loads((SRC / "iso_639-3.json").read_text())["639-3"]:
    name = entry["name"]
    if "alpha_2" in entry:
        rows[entry["alpha_2"]] = name
        redirect[entry["alpha_3"]] = entry["alpha_2"]
    else:
        rows[entry["alpha_3"]] = name
# ISO 639-2 adds collections (`afa`, `mul`, `und`, `zxx`…) and the bibliographic codes (`fre`).
for entry in json.loads((SRC / "iso_639-2.json").read_text())["639-2"]:
    two = entry.get("alpha_2")
    if two:
        rows.setdefault(two, entry["name"])
        for three in (entry["alpha_3"], entry.get("bibliographic")):
            if three:
                redirect[three] = two
    else:
        rows.setdefault(entry["alpha_3"], entry["name"])
        if entry.get("bibliographic"):
            redirect[entry["bibliographic"]] = entry["alpha_3"]
lines = [f"{c}\t{rows[c]}" for c in sorted(rows)]
lines += [f"{c}\t>{redirect[c]}" for c in sorted(redirect) if c not in rows]
OUT.write_text("\n".join(lines) + "\n")
print(f"{OUT}: {len(rows)} codes, {len(redirect)} redirects")
