#!/usr/bin/env python3
"""Validate FHIR JSON resources with an independent library, plus the
profile rules that library cannot check.

Usage: validate_fhir.py FILE...   (or JSON / NDJSON on stdin)

Each file holds one JSON resource, or NDJSON (one resource per line).
Exit 0 when every resource is valid; otherwise print every error (file,
line, resource type, the validator's own text) on stderr and exit 1.
Exit 2 on usage errors (unreadable file, not JSON).

What is checked:

1. Structure, with `fhir.resources` 6.5.0 (pydantic models generated from
   the FHIR specification; its default package reports FHIR 4.3.0, R4B,
   whose Observation, Patient, Device, Bundle, OperationOutcome,
   DetectedIssue, Flag, Communication, Subscription and Parameters are
   element-for-element those of R4 4.0.1): element names (unknown ones
   refused), types (decimal, dateTime, instant, uri, code patterns),
   cardinality (required elements, one value[x] at most). Every entry of a
   Bundle is validated on its own too (the library does not descend into
   `Bundle.entry.resource`).
2. Code-valued elements against their required value sets, which the
   library does not check: Observation/DetectedIssue/Flag/Communication/
   Subscription status, Bundle.type, Bundle.entry.request.method,
   OperationOutcome issue severity and code, DetectedIssue.severity,
   Communication.priority, Device.status and deviceName.type.
3. R4 vital-signs profile (http://hl7.org/fhir/StructureDefinition/
   vitalsigns and the heartrate, resprate, oxygensat, bodytemp,
   bodyweight and bp profiles), for every Observation that claims one of
   them or has category vital-signs and a vital-signs LOINC code:
   category vital-signs (observation-category system), a LOINC coding, the
   profile's required LOINC code (8867-4, 9279-1, 2708-6, 8310-5,
   29463-7, 85354-9), a subject referencing a Patient, effective[x]
   (dateTime at least to the day, vs-1), a value or dataAbsentReason
   unless components (vs-2), valueQuantity in UCUM
   (http://unitsofmeasure.org) with the profile's unit (/min, %, Cel or
   [degF], kg/g/[lb_av], mm[Hg]), and for bp the systolic 8480-6 and
   diastolic 8462-4 components, each with a value or dataAbsentReason
   (vs-3).
4. HL7 CGM IG sensor reading (cgm-sensor-reading-mass-per-volume): LOINC
   99504-3, UCUM mg/dL, subject, effectiveDateTime.
5. MDC codings (system urn:iso:std:iso:11073:10101, as the PHD IG codes
   them) carry the numeric 32-bit code.
6. Bundles: transaction entries each with request (method, url) and a
   unique fullUrl; `urn:uuid:` fullUrls are UUIDs; `urn:uuid:` references
   inside a transaction resolve to an entry; history and
   transaction-response entries carry request/response as R4 bdl-3/bdl-4
   require.
7. R4 Subscriptions Backport IG: a Subscription claiming backport-subscription
   has criteria, a rest-hook channel with endpoint and payload, a content
   extension of empty|id-only|full-resource, a heartbeat period as
   valueUnsignedInt; a Parameters claiming backport-subscription-status-r4
   has subscription (valueReference), status, type (handshake | heartbeat
   | event-notification | query-status | query-event),
   events-since-subscription-start as a valueString of digits, and each
   notification-event an event-number (valueString of digits), a
   timestamp (valueInstant) and, when given, a focus reference; a history
   Bundle whose first entry is that Parameters is a notification, and
   each event's focus resolves to an entry of the Bundle.
"""

import json
import re
import sys

try:
    from fhir.resources import get_fhir_model_class
    from pydantic import ValidationError
except ImportError as e:  # pragma: no cover
    print(f"error: fhir.resources is not installed: {e}", file=sys.stderr)
    sys.exit(2)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MDC = "urn:iso:std:iso:11073:10101"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
SD = "http://hl7.org/fhir/StructureDefinition/"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
CGM_MASS = "http://hl7.org/fhir/uv/cgm/StructureDefinition/cgm-sensor-reading-mass-per-volume"

# profile -> (required LOINC code, allowed UCUM units or None for components)
VITAL_PROFILES = {
    SD + "vitalsigns": (None, None),
    SD + "heartrate": ("8867-4", {"/min"}),
    SD + "resprate": ("9279-1", {"/min"}),
    SD + "oxygensat": ("2708-6", {"%"}),
    SD + "bodytemp": ("8310-5", {"Cel", "[degF]"}),
    SD + "bodyweight": ("29463-7", {"kg", "g", "[lb_av]"}),
    SD + "bp": ("85354-9", None),
}
VITAL_LOINC = {code: profile for profile, (code, _) in VITAL_PROFILES.items() if code}

REQUIRED_CODES = {
    ("Observation", "status"): {"registered", "preliminary", "final", "amended",
                                "corrected", "cancelled", "entered-in-error", "unknown"},
    ("DetectedIssue", "status"): {"registered", "preliminary", "final", "amended",
                                  "corrected", "cancelled", "entered-in-error", "unknown"},
    ("DetectedIssue", "severity"): {"high", "moderate", "low"},
    ("Flag", "status"): {"active", "inactive", "entered-in-error"},
    ("Communication", "status"): {"preparation", "in-progress", "not-done", "on-hold",
                                  "stopped", "completed", "entered-in-error", "unknown"},
    ("Communication", "priority"): {"routine", "urgent", "asap", "stat"},
    ("Subscription", "status"): {"requested", "active", "error", "off"},
    ("Device", "status"): {"active", "inactive", "entered-in-error", "unknown"},
    ("Bundle", "type"): {"document", "message", "transaction", "transaction-response",
                         "batch", "batch-response", "history", "searchset", "collection"},
}
ISSUE_SEVERITY = {"fatal", "error", "warning", "information"}
ISSUE_TYPES = {
    "invalid", "structure", "required", "value", "invariant", "security", "login",
    "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
    "duplicate", "multiple-matches", "not-found", "deleted", "too-long",
    "code-invalid", "extension", "too-costly", "business-rule", "conflict",
    "transient", "lock-error", "no-store", "exception", "timeout", "incomplete",
    "throttled", "informational",
}
HTTP_VERBS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}
DEVICE_NAME_TYPES = {"udi-label-name", "user-friendly-name", "patient-reported-name",
                     "manufacturer-name", "model-name", "other"}
NOTIFICATION_TYPES = {"handshake", "heartbeat", "event-notification", "query-status",
                      "query-event"}
UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


class Checker:
    def __init__(self):
        self.errors = []

    def fail(self, where, text):
        self.errors.append(f"{where}: {text}")

    # -- 1. structure --------------------------------------------------
    def structure(self, where, res):
        rt = res.get("resourceType") if isinstance(res, dict) else None
        if not isinstance(rt, str):
            self.fail(where, "not a resource (no resourceType)")
            return False
        try:
            cls = get_fhir_model_class(rt)
        except KeyError:
            self.fail(where, f"unknown resourceType {rt!r}")
            return False
        try:
            cls.parse_obj(res)
        except ValidationError as e:
            self.fail(f"{where} {rt}", str(e).replace("\n", "\n    "))
            return False
        return True

    def resource(self, where, res, in_bundle=None):
        if not self.structure(where, res):
            return
        rt = res["resourceType"]
        where = f"{where} {rt}" + (f"/{res['id']}" if "id" in res else "")
        for (t, field), allowed in REQUIRED_CODES.items():
            if t == rt and field in res and res[field] not in allowed:
                self.fail(where, f"{field} {res[field]!r} is not one of {sorted(allowed)}")
        self.mdc_codings(where, res)
        if rt == "Observation":
            self.observation(where, res)
        elif rt == "Bundle":
            self.bundle(where, res)
        elif rt == "OperationOutcome":
            for i, issue in enumerate(res.get("issue", [])):
                if issue.get("severity") not in ISSUE_SEVERITY:
                    self.fail(where, f"issue[{i}].severity {issue.get('severity')!r}")
                if issue.get("code") not in ISSUE_TYPES:
                    self.fail(where, f"issue[{i}].code {issue.get('code')!r} is not an IssueType")
        elif rt == "Device":
            for n in res.get("deviceName", []):
                if n.get("type") not in DEVICE_NAME_TYPES:
                    self.fail(where, f"deviceName.type {n.get('type')!r}")
        elif rt == "Subscription":
            self.subscription(where, res)
        elif rt == "Parameters" and BACKPORT + "backport-subscription-status-r4" in profiles(res):
            self.subscription_status(where, res)

    def mdc_codings(self, where, node):
        if isinstance(node, dict):
            if node.get("system") == MDC and not re.fullmatch(r"\d+", str(node.get("code", ""))):
                self.fail(where, f"MDC coding {node.get('code')!r} is not a numeric MDC code")
            for v in node.values():
                self.mdc_codings(where, v)
        elif isinstance(node, list):
            for v in node:
                self.mdc_codings(where, v)

    # -- 3./4. observation profiles --------------------------------------
    def observation(self, where, obs):
        claimed = profiles(obs)
        loinc = {c.get("code") for c in obs.get("code", {}).get("coding", []) if c.get("system") == LOINC}
        vital_cat = any(
            c.get("system") == OBS_CAT and c.get("code") == "vital-signs"
            for cat in obs.get("category", []) for c in cat.get("coding", [])
        )
        vs = [p for p in claimed if p in VITAL_PROFILES]
        if vital_cat:
            vs += [VITAL_LOINC[c] for c in loinc if c in VITAL_LOINC and VITAL_LOINC[c] not in vs]
        if vs:
            self.vital_signs(where, obs, vs, loinc, vital_cat)
        if CGM_MASS in claimed:
            if "99504-3" not in loinc:
                self.fail(where, "CGM sensor reading without LOINC 99504-3")
            q = obs.get("valueQuantity") or {}
            if q.get("system") != UCUM or q.get("code") != "mg/dL" or "value" not in q:
                self.fail(where, f"CGM reading must be a valueQuantity in UCUM mg/dL, got {q}")
            if "subject" not in obs or "effectiveDateTime" not in obs:
                self.fail(where, "CGM reading needs subject and effectiveDateTime")

    def vital_signs(self, where, obs, vs, loinc, vital_cat):
        if not vital_cat:
            self.fail(where, "vital-signs profile without category vital-signs "
                             f"({OBS_CAT})")
        if not loinc:
            self.fail(where, "vital-signs Observation.code has no LOINC coding")
        subject = obs.get("subject")
        if not subject:
            self.fail(where, "vital-signs Observation without subject")
        else:
            ref = subject.get("reference", "")
            if ref and not (ref.startswith("Patient/") or "/Patient/" in ref or ref.startswith("urn:uuid:")):
                self.fail(where, f"subject {ref!r} is not a Patient")
            if not ref and not subject.get("identifier"):
                self.fail(where, "subject has neither reference nor identifier")
        eff = obs.get("effectiveDateTime")
        if eff is None and "effectivePeriod" not in obs:
            self.fail(where, "vital-signs Observation without effective[x]")
        elif eff is not None and not DAY.match(eff):
            self.fail(where, f"vs-1: effectiveDateTime {eff!r} is not at least a day")
        has_value = any(k.startswith("value") for k in obs) or "dataAbsentReason" in obs
        if not has_value and not obs.get("component") and not obs.get("hasMember"):
            self.fail(where, "vs-2: no value[x], dataAbsentReason, component or hasMember")
        for p in vs:
            code, units = VITAL_PROFILES[p]
            if code and code not in loinc:
                self.fail(where, f"{p} requires LOINC {code} in Observation.code, has {sorted(loinc)}")
            if units is not None and "dataAbsentReason" not in obs:
                q = obs.get("valueQuantity")
                if not q:
                    self.fail(where, f"{p} requires valueQuantity")
                elif q.get("system") != UCUM or q.get("code") not in units or "value" not in q:
                    self.fail(where, f"{p} requires a UCUM value in {sorted(units)}, got {q}")
        if SD + "bp" in vs:
            comps = {}
            for comp in obs.get("component", []):
                for c in comp.get("code", {}).get("coding", []):
                    if c.get("system") == LOINC:
                        comps[c.get("code")] = comp
            for code in ("8480-6", "8462-4"):
                if code not in comps:
                    self.fail(where, f"bp requires a component with LOINC {code}")
        for i, comp in enumerate(obs.get("component", [])):
            q = comp.get("valueQuantity")
            if q is None and not any(k.startswith("value") for k in comp) and "dataAbsentReason" not in comp:
                self.fail(where, f"vs-3: component[{i}] has no value and no dataAbsentReason")
            if q is not None and (q.get("system") != UCUM or not q.get("code")):
                self.fail(where, f"component[{i}].valueQuantity is not UCUM: {q}")
            if q is not None and SD + "bp" in vs and q.get("code") != "mm[Hg]":
                self.fail(where, f"component[{i}] of a blood pressure must be mm[Hg], got {q.get('code')!r}")

    # -- 6. bundles ------------------------------------------------------
    def bundle(self, where, b):
        kind = b.get("type")
        entries = b.get("entry", [])
        full_urls = [e.get("fullUrl") for e in entries if e.get("fullUrl")]
        if len(full_urls) != len(set(full_urls)):
            self.fail(where, "duplicate fullUrl")
        for i, e in enumerate(entries):
            w = f"{where} entry[{i}]"
            fu = e.get("fullUrl", "")
            if fu.startswith("urn:uuid:") and not UUID.match(fu):
                self.fail(w, f"fullUrl {fu!r} is not a urn:uuid")
            if kind in ("transaction", "batch", "history"):
                req = e.get("request")
                if not req:
                    self.fail(w, f"bdl-3: a {kind} entry needs request")
                elif req.get("method") not in HTTP_VERBS or not req.get("url"):
                    self.fail(w, f"request needs method and url, got {req}")
            elif "request" in e:
                self.fail(w, f"bdl-3: request is not allowed in a {kind}")
            if kind in ("transaction-response", "batch-response", "history"):
                if not (e.get("response") or {}).get("status"):
                    self.fail(w, f"bdl-4: a {kind} entry needs response.status")
            elif "response" in e:
                self.fail(w, f"bdl-4: response is not allowed in a {kind}")
            if kind == "transaction" and not fu:
                self.fail(w, "a transaction entry needs a fullUrl")
            if "resource" in e:
                self.resource(w, e["resource"], in_bundle=b)
        if kind == "transaction":
            local = set(full_urls)
            for ref in references(b):
                if ref.startswith("urn:uuid:") and ref not in local:
                    self.fail(where, f"reference {ref!r} resolves to no entry")
        if kind == "history" and entries:
            first = entries[0].get("resource") or {}
            if first.get("resourceType") == "Parameters" and \
                    BACKPORT + "backport-subscription-status-r4" in profiles(first):
                self.notification(where, b, first)

    # -- 7. subscriptions backport -----------------------------------------
    def subscription(self, where, s):
        if BACKPORT + "backport-subscription" not in profiles(s):
            return
        if not s.get("criteria"):
            self.fail(where, "backport Subscription needs criteria (the topic canonical)")
        ch = s.get("channel", {})
        if ch.get("type") != "rest-hook":
            self.fail(where, f"channel.type {ch.get('type')!r}; medtwin uses rest-hook")
        if not ch.get("endpoint"):
            self.fail(where, "rest-hook channel without endpoint")
        if not ch.get("payload"):
            self.fail(where, "channel.payload (MIME type) missing")
        for ext in (ch.get("_payload") or {}).get("extension", []):
            if ext.get("url") == BACKPORT + "backport-payload-content" and \
                    ext.get("valueCode") not in ("empty", "id-only", "full-resource"):
                self.fail(where, f"payload content {ext.get('valueCode')!r}")
        for ext in ch.get("extension", []):
            if ext.get("url") in (BACKPORT + "backport-heartbeat-period", BACKPORT + "backport-timeout"):
                v = ext.get("valueUnsignedInt")
                if not isinstance(v, int) or v < 0:
                    self.fail(where, f"{ext.get('url')} needs valueUnsignedInt, got {ext}")

    def subscription_status(self, where, p):
        params = p.get("parameter", [])
        by_name = {}
        for q in params:
            by_name.setdefault(q.get("name"), []).append(q)
        sub = by_name.get("subscription", [])
        if len(sub) != 1 or not (sub[0].get("valueReference") or {}).get("reference"):
            self.fail(where, "SubscriptionStatus needs exactly one subscription valueReference")
        for name in ("status", "type"):
            if len(by_name.get(name, [])) != 1 or "valueCode" not in by_name[name][0]:
                self.fail(where, f"SubscriptionStatus needs one {name} valueCode")
        t = (by_name.get("type") or [{}])[0].get("valueCode")
        if t not in NOTIFICATION_TYPES:
            self.fail(where, f"type {t!r} is not a notification type")
        for q in by_name.get("events-since-subscription-start", []):
            if not re.fullmatch(r"\d+", str(q.get("valueString", ""))):
                self.fail(where, f"events-since-subscription-start must be a valueString of digits, got {q}")
        for q in by_name.get("topic", []):
            if "valueCanonical" not in q:
                self.fail(where, "topic must be a valueCanonical")
        for q in by_name.get("notification-event", []):
            parts = {x.get("name"): x for x in q.get("part", [])}
            n = parts.get("event-number")
            if not n or not re.fullmatch(r"\d+", str(n.get("valueString", ""))):
                self.fail(where, f"notification-event needs event-number as a valueString of digits: {q}")
            ts = parts.get("timestamp")
            if ts is not None and "valueInstant" not in ts:
                self.fail(where, "notification-event timestamp must be a valueInstant")
            f = parts.get("focus")
            if f is not None and not (f.get("valueReference") or {}).get("reference"):
                self.fail(where, "notification-event focus must be a valueReference")
        if t in ("handshake", "heartbeat") and by_name.get("notification-event"):
            self.fail(where, f"a {t} carries no notification-event")

    def notification(self, where, b, status):
        urls = {e.get("fullUrl") for e in b.get("entry", [])[1:]}
        for q in status.get("parameter", []):
            if q.get("name") != "notification-event":
                continue
            for part in q.get("part", []):
                if part.get("name") == "focus":
                    ref = (part.get("valueReference") or {}).get("reference")
                    if ref not in urls:
                        self.fail(where, f"focus {ref!r} is not an entry of the notification")


def profiles(res):
    return (res.get("meta") or {}).get("profile", [])


def references(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                yield v
            else:
                yield from references(v)
    elif isinstance(node, list):
        for v in node:
            yield from references(v)


def load(name, text):
    text = text.strip()
    if not text:
        return []
    try:
        return [(name, json.loads(text))]
    except json.JSONDecodeError:
        pass
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((f"{name}:{i}", json.loads(line)))
            except json.JSONDecodeError as e:
                print(f"error: {name}:{i}: not JSON: {e}", file=sys.stderr)
                sys.exit(2)
    return out


def main(argv):
    docs = []
    if len(argv) > 1:
        for path in argv[1:]:
            try:
                with open(path, encoding="utf-8") as f:
                    docs += load(path, f.read())
            except OSError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
    else:
        docs = load("<stdin>", sys.stdin.read())
    if not docs:
        print("error: no resources to validate", file=sys.stderr)
        return 2
    checker = Checker()
    for where, res in docs:
        checker.resource(where, res)
    if checker.errors:
        for e in checker.errors:
            print(e, file=sys.stderr)
        print(f"{len(checker.errors)} error(s) in {len(docs)} resource(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(docs)} resource(s) valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
