#!/usr/bin/env python3
"""Validate HL7 v2 ER7 messages with hl7apy, independently of medtwin.

Usage: validate_hl7.py FILE...   (one ER7 message per file; `-` or no
argument reads one message from stdin). Exits 0 when every message
passes, 1 when one does not (printing hl7apy's own error with the file
name), 2 on usage errors.

What it checks, with hl7apy (v2.6 reference, VALIDATION_LEVEL.STRICT):
- the message parses as ER7 with the delimiters MSH-1/MSH-2 declare;
- MSH-12 is 2.6 and the message structure (MSH-9-3) is one hl7apy knows;
- every segment is allowed where it stands in that structure, in order,
  with the groups (PATIENT_RESULT, PATIENT, VISIT, ORDER_OBSERVATION,
  OBSERVATION) found, and within each segment's and group's cardinality;
- every required field, component and segment is present;
- every field's, component's and subcomponent's value fits its datatype's
  maximum length, and typed values (NM, DTM, ID, SI...) are well-formed.

What hl7apy cannot check (and this script does not pretend to):
- IHE PCD profile rules (MSH-21's profile, OBX-4 containment, MDC codes,
  EUI-64 in OBX-18, the ACM facet rows): medtwin's own tests check those;
- table values (HL7 tables 0008, 0078, 0125...): hl7apy does not hold
  them;
- ORU^R40 (IHE PCD-04): HL7 v2.6 defines no ORU_R40 structure and hl7apy
  has none, so a message whose MSH-9 is ORU^R40^ORU_R40 is validated
  against ORU_R01, whose layout IHE PCD-04 uses (the text validated is
  otherwise unchanged; the rewrite is said on stderr).
"""

import sys

try:
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message
except ImportError as e:  # pragma: no cover
    print(f"error: hl7apy is not installed: {e}", file=sys.stderr)
    sys.exit(2)


def normalise(text: str) -> tuple[str, str | None]:
    """Segments ended by \\r; ORU_R40 read as ORU_R01 (see above)."""
    lines = [l for l in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if l]
    note = None
    if lines and lines[0].startswith("MSH") and len(lines[0]) > 8:
        sep = lines[0][3]
        comp = lines[0][4]
        fields = lines[0].split(sep)
        if len(fields) > 8:
            msg_type = fields[8].split(comp)
            if msg_type[:2] == ["ORU", "R40"]:
                while len(msg_type) < 3:
                    msg_type.append("")
                if msg_type[2] != "ORU_R01":
                    note = f"MSH-9 {fields[8]!r} validated as ORU^R40^ORU_R01 (hl7apy has no ORU_R40)"
                    msg_type[2] = "ORU_R01"
                    fields[8] = comp.join(msg_type)
                    lines[0] = sep.join(fields)
    return "\r".join(lines) + "\r", note


def validate(name: str, text: str) -> str | None:
    """None when valid, else hl7apy's error text."""
    er7, note = normalise(text)
    if note:
        print(f"{name}: {note}", file=sys.stderr)
    try:
        msg = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        msg.validate()
    except Exception as e:  # hl7apy raises several exception types
        return f"{type(e).__name__}: {e}"
    return None


def main(argv: list[str]) -> int:
    files = argv[1:] or ["-"]
    failed = 0
    for name in files:
        try:
            text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
        except OSError as e:
            print(f"{name}: cannot read: {e}", file=sys.stderr)
            return 2
        error = validate(name, text)
        if error:
            print(f"{name}: INVALID: {error}")
            failed += 1
    if failed:
        print(f"{failed} of {len(files)} message(s) invalid")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
