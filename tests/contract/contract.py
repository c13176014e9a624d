"""Schemathesis against a running Vidi, over every served operation, twice: with api.video's own
2023 OpenAPI file (apivideo-openapi-2023.json beside this file) and with Vidi's /openapi.json.

  VIDI_URL=http://127.0.0.1:8080 VIDI_API_KEY=<key> .venv/bin/python tests/contract/contract.py

It makes the objects the operations' path parameters name (one set per operation, so a DELETE
cannot take another operation's video away), writes schemathesis.toml, runs `st run` with a small
example budget and reads its JSON report. A finding fails the run unless ALLOWED below explains
it; each reason is a deliberate difference written in docs/contract.md. Checks: no 5xx
(not_a_server_error), answers inside the schema (status_code_, content_type_ and
response_schema_conformance), schema-valid requests accepted (positive_data_acceptance) and
schema-violating ones refused (negative_data_rejection)."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
URL = os.environ["VIDI_URL"].rstrip("/")
KEY = os.environ["VIDI_API_KEY"]
# A few examples per operation and phase: the run must stay within a few minutes on 2 cores.
MAX_EXAMPLES = int(os.environ.get("VIDI_CONTRACT_EXAMPLES", "8"))
SEED = os.environ.get("VIDI_CONTRACT_SEED", "24")
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
])

# Each finding is explained by the first rule that matches it: (schemathesis code, operation
# regex, answered status, problem slug regex, problem `name` regex, reason[, a regex the
# failure's message must contain]). Every reason is a
# section of docs/contract.md; a finding no rule explains fails the run. `*` matches anything.
IDS = r"videoId|liveStreamId|playerId|uploadToken|webhookId|deliveryId|language|sessionId"
COLOURS = (r"text|link|linkHover|linkActive|trackPlayed|trackUnplayed|trackBackground|backgroundTop|"
           r"backgroundBottom|backgroundText")
FILES = r"POST /(videos/\{videoId\}/(source|thumbnail)|players/\{playerId\}/logo|live-streams/\{liveStreamId\}/thumbnail|upload)"
ALLOWED = [
    # Answers outside api.video's file that are deliberate.
    ("ST105", "*", "*", "*", "*", "problem bodies are application/problem+json"),
    ("ST103", "*", "400|401|404", "*", "*", "error statuses api.video's file leaves out"),
    ("ST108", "GET .*", "200", "*", "*", "relative pagination links"),
    # Schema-valid requests refused for a documented reason.
    ("ST202", "*", "404", "resource-not-found", IDS, "unknown ids"),
    ("ST202", "(POST|PATCH) /(videos|live-streams).*", "400", "invalid-attribute", "playerId", "unknown ids",
     r"does not exist"),
    ("ST202", ".*\\{language\\}", "400", "invalid-attribute", "language", "BCP 47 tags"),
    ("ST202", "GET .*", "400", "request-invalid-query-parameter", "currentPage|pageSize", "list parameters out of range"),
    ("ST202", "GET .*", "400", "request-invalid-query-parameter", "sortBy|sortOrder", "sorting by a field Vidi sorts"),
    ("ST202", "(POST|PATCH) /players.*", "400", "invalid-attribute", COLOURS, "the colour grammar"),
    ("ST202", "(POST|PATCH) /players.*", "400", "invalid-attribute", "name", "names of at most 100 characters"),
    ("ST202", "POST /videos/\\{videoId\\}/(captions|chapters)/.*", "400", "uploaded-file-invalid-file", "file", "WebVTT that is not UTF-8"),
    ("ST202", FILES, "400", "uploaded-file-.*|invalid-payload|video-source-already-uploaded", "*", "media that is not media"),
    # Extra multipart parts whose names hold control bytes, which the multipart parser refuses.
    ("ST202", "POST .*", "400", "invalid-payload", "*", "multipart headers that are not text",
     r"multipart body could not be read"),
    ("ST202", "POST /videos/\\{videoId\\}/source|POST /upload", "400", "video-content-range-malformed", "*", "the Content-Range grammar"),
    ("ST202", "PATCH /videos/\\{videoId\\}/thumbnail", "400", "invalid-attribute|attribute-required", "timecode", "timecodes outside the video"),
    ("ST202", "POST /webhooks", "400", "invalid-attribute", "events|url", "webhook events and URLs"),
    ("ST202", "GET /webhooks", "400", "request-invalid-query-parameter", "events", "webhook events and URLs"),
    ("ST202", "(POST|PATCH) /live-streams.*", "400", "invalid-attribute", "name|restreams.*", "live stream names and restreams"),
    ("ST202", "(POST|PATCH) /videos(/\\{videoId\\})?", "400", "invalid-attribute", "title|metadata|clip.*|source|watermark|playerId|tags|description", "video fields"),
    ("ST202", "GET /analytics/.*", "400", "request-invalid-query-parameter", "period", "the period grammar"),
    ("ST202", "POST /collect/sessions", "400", "invalid-payload", "*", "a viewing session names one subject",
     r"Exactly one of videoId and liveStreamId"),
    ("ST202", "POST /collect/.*", "429", "too-many-requests", "*", "the collector's per-address limit"),
    # api.video's file has no collector: its events' bounds (event types, playheads) are Vidi's.
    ("ST202", "POST /collect/sessions/\\{sessionId\\}/events", "400", "invalid-attribute", "events.*", "the collector's bounds"),
    ("ST202", "POST /auth/(api-key|refresh)", "400", "authentication-invalid-user-credentials", "*", "unknown credentials"),
    ("ST202", "POST /upload", "401|404", "*", "*", "unknown credentials"),
    # Schema-violating requests accepted on purpose.
    ("ST201", "PATCH /(videos|live-streams)/\\{[a-zA-Z]+\\}", "200", "*", "*", "playerId: null detaches the player",
     r"in body - playerId"),
    ("ST201", "GET .*", "200", "*", "*", "an empty query parameter is not given", r"parameter `\w+` in query"),
    # (The `Authorization` header schemathesis says it dropped is added back by --auth.)
    ("ST201", "GET .*", "200", "*", "*", "unknown query parameters are ignored", r"query: violates `additionalProperties`"),
]


def explained(check_text, operation):
    code = check_text[1:check_text.index("]")]
    m = re.search(r"\| answered (\S+) ?(?:problem=(\S*) name=(\S*))?", check_text)
    status, slug, name = (m.group(1), m.group(2) or "", m.group(3) or "") if m else ("", "", "")
    for c, op, st, sl, nm, reason, *msg in ALLOWED:
        if msg and not re.search(msg[0], check_text):
            continue
        if c == code and all(
            pat == "*" or re.fullmatch(pat, val)
            for pat, val in ((op, operation), (st, status), (sl, slug), (nm, name))
        ):
            return reason
    return None


def api(method, path, **kw):
    r = requests.request(method, URL + path, auth=(KEY, ""), timeout=30, **kw)
    if r.status_code >= 300:
        raise SystemExit(f"contract: fixture {method} {path} answered {r.status_code}: {r.text[:300]}")
    return r.json() if r.content else None


VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello\n"


def fixtures():
    """One object of each kind per operation that names it, keyed by 'METHOD path'."""
    def video():
        v = api("POST", "/videos", json={"title": "contract"})["videoId"]
        for kind in ("captions", "chapters"):
            api("POST", f"/videos/{v}/{kind}/en", files={"file": ("en.vtt", VTT, "text/vtt")})
        return v

    def player():
        return api("POST", "/players", json={"name": "contract"})["playerId"]

    def live():
        return api("POST", "/live-streams", json={"name": "contract"})["liveStreamId"]

    def token():
        return api("POST", "/upload-tokens", json={"ttl": 0})["token"]

    def webhook():
        return api("POST", "/webhooks", json={"url": "https://example.com/hook", "events": ["video.encoding.quality.completed"]})["webhookId"]

    def session():
        # A viewing session of a public video, minted by the player's collector (no API key).
        v = api("POST", "/videos", json={"title": "contract"})["videoId"]
        r = requests.post(URL + "/collect/sessions", json={"videoId": v}, timeout=30)
        if r.status_code >= 300:
            raise SystemExit(f"contract: fixture POST /collect/sessions answered {r.status_code}: {r.text[:300]}")
        return r.json()["sessionId"]

    makers = {"videoId": video, "playerId": player, "liveStreamId": live, "uploadToken": token, "webhookId": webhook,
              "sessionId": session}
    return makers


def operations(doc):
    for path, item in doc["paths"].items():
        for m in ("get", "post", "put", "patch", "delete"):
            if m in item:
                yield m.upper(), path


def config(doc, served, path):
    """schemathesis.toml: per operation, fresh objects for its path parameters."""
    makers = fixtures()
    lines = [
        f"seed = {SEED}",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "[checks.positive_data_acceptance]",
        # 404 is not listed: an unknown id is explained by ALLOWED, not hidden.
        'expected-statuses = ["2xx", "401", "403"]',
    ]
    for method, p in operations(doc):
        if (method, p) not in served:
            continue
        params = {}
        for name in re.findall(r"\{(\w+)\}", p):
            if name in makers:
                params[f"path.{name}"] = makers[name]()
            elif name == "language":
                params["path.language"] = "en"
        if params:
            lines.append("[[operations]]")
            lines.append(f'include-path = "{p}"')
            lines.append(f'include-method = "{method}"')
            lines.append("parameters = { " + ", ".join(f'"{k}" = "{v}"' for k, v in params.items()) + " }")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def run(label, schema, served, work):
    with open(schema) as f:
        doc = json.load(f)
    cfg = os.path.join(work, f"{label}.toml")
    config(doc, served, cfg)
    report = os.path.join(work, f"{label}.ndjson")
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "st"), "--config-file", cfg, "run", schema,
        "--url", URL, "--auth", f"{KEY}:", "--checks", CHECKS, "--workers", "2",
        "--phases", "examples,coverage,fuzzing", "--no-color", "--request-timeout", "30",
        "--report", "ndjson", "--report-ndjson-path", report, "--continue-on-failure",
        "--generation-database", "none",
    ]
    # Only the operations Vidi serves: the others are listed, with reasons, by the Rust test that
    # compares the two documents (crates/vidi/tests/it/contract.rs).
    paths = sorted({p for _, p in served & set(operations(doc))})
    cmd += ["--include-path-regex", "^(" + "|".join(re.escape(p) for p in paths) + ")$"]
    started = time.time()
    # In the work folder: schemathesis and hypothesis leave their caches where they run.
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    took = time.time() - started
    with open(os.path.join(work, f"{label}.log"), "w") as f:
        f.write(out.stdout + out.stderr)
    return findings(report), took, out


def problem(response):
    """The answer's problem `type` slug, `name` and `detail`, when it is a problem body."""
    try:
        body = json.loads(base64.b64decode(response["content"]["$base64"]))
        slug = body["type"].rsplit("/", 1)[-1]
        return "problem={} name={} detail={}".format(slug, body.get("name", ""), body.get("detail", ""))
    except Exception:
        return ""


def findings(report):
    """Each distinct failure in the NDJSON event stream, as (check, operation, text), where text
    holds the failure's code, title and message and the answer's status; the number of cases;
    the operations tested."""
    found, cases, ops = {}, 0, set()
    with open(report) as f:
        for line in f:
            ev = json.loads(line).get("ScenarioFinished")
            if not ev:
                continue
            rec = ev.get("recorder", {})
            label = rec.get("label", "")
            ops.add(label)
            for case_id, checks in rec.get("checks", {}).items():
                cases += 1
                response = (rec.get("interactions", {}).get(case_id) or {}).get("response") or {}
                for chk in checks:
                    if chk.get("status") == "success":
                        continue
                    failure = (chk.get("failure_info") or {}).get("failure") or {}
                    text = "[{}] {} {}: {} | answered {} {}".format(
                        failure.get("code"), failure.get("title"), chk.get("name"),
                        failure.get("message", ""), response.get("status_code"), problem(response))
                    found.setdefault((chk.get("name"), label, text), case_id)
    return list(found), cases, ops


def main():
    served_doc = requests.get(URL + "/openapi.json", timeout=30).json()
    served = set(operations(served_doc))
    work = tempfile.mkdtemp(prefix="vidi-contract-")
    with open(os.path.join(work, "vidi-openapi.json"), "w") as f:
        json.dump(served_doc, f)
    failed = 0
    for label, schema in (("api.video-2023", os.path.join(HERE, "apivideo-openapi-2023.json")),
                          ("vidi", os.path.join(work, "vidi-openapi.json"))):
        (found, cases, ops), took, out = run(label, schema, served, work)
        counts = {}
        unexplained = []
        for check, op, text in found:
            reason = explained(text, op)
            if reason:
                counts[reason] = counts.get(reason, 0) + 1
            else:
                unexplained.append((check, op, text))
        print(f"== schemathesis ({label}): {len(ops)} operations, {cases} cases, {took:.0f} s")
        for reason, n in sorted(counts.items()):
            print(f"   explained: {n} x {reason}")
        for check, op, text in unexplained:
            print(f"   UNEXPLAINED {check} on {op}: {text[:600]}")
        if not ops or (out.returncode not in (0, 1)):
            print(out.stdout[-3000:], out.stderr[-3000:])
            print(f"   schemathesis did not run ({label}): exit {out.returncode}")
            failed += 1
        failed += len(unexplained)
    if failed:
        print(f"contract: FAILED (logs and reports in {work})")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("contract: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
