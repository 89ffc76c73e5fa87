"""The operator's parameters for one stage (infra/params-<stage>.json), checked against the packaged template before
anything reaches AWS (make deploy).

    python infra/params.py check build/package/prod/sam.json infra/params-prod.json
    python infra/params.py overrides build/package/prod/sam.json infra/params-prod.json   # Key=Value ... for the CLI

The file is one JSON object, parameter name -> value; keys starting with "_" are comments. `check` refuses (exit 1,
one line per problem): a parameter the template does not have, a required one (no Default) missing, a value still
CHANGE-ME or on a reserved placeholder domain (example.com/.net/.org, .example, .test, .invalid, .localhost, .local),
and any value the template itself would refuse (AllowedPattern, AllowedValues, MinValue/MaxValue).
"""
import json
import re
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"change-?me|placeholder|"
                         r"(^|[@.])example\.(com|net|org)$|\.(example|test|invalid|localhost|local)$", re.IGNORECASE)


def problems(template: dict, values: dict) -> list[str]:
    declared = template.get("Parameters", {})
    out = []
    for key, value in values.items():
        if key.startswith("_"):
            continue
        if key not in declared:
            out.append(f"{key}: the template has no such parameter")
            continue
        spec, text = declared[key], str(value)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            out.append(f"{key}: give a string or a number")
            continue
        if PLACEHOLDER.search(text):
            out.append(f"{key}: {text!r} is a placeholder; put the real value")
        if re.search(r"\s", text):
            out.append(f"{key}: no spaces")
        if "AllowedValues" in spec and text not in [str(v) for v in spec["AllowedValues"]]:
            out.append(f"{key}: one of {', '.join(str(v) for v in spec['AllowedValues'])}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], text):
            out.append(f"{key}: {text!r} is refused: {spec.get('ConstraintDescription') or spec['AllowedPattern']}")
        if spec.get("Type") == "Number":
            try:
                number = float(text)
            except ValueError:
                out.append(f"{key}: a number")
                continue
            if "MinValue" in spec and number < float(spec["MinValue"]):
                out.append(f"{key}: at least {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                out.append(f"{key}: at most {spec['MaxValue']}")
    for key, spec in declared.items():
        if "Default" not in spec and key not in values:
            out.append(f"{key}: required ({spec.get('Description', 'no default')})")
    return out


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] not in ("check", "overrides"):
        raise SystemExit("usage: python infra/params.py check|overrides PACKAGED_TEMPLATE PARAMS_FILE")
    command, template_path, params_path = argv
    template = json.loads(Path(template_path).read_text())
    try:
        values = json.loads(Path(params_path).read_text())
    except FileNotFoundError:
        raise SystemExit(f"{params_path}: no such file (copy infra/params-dev.json and fill it in)") from None
    if not isinstance(values, dict):
        raise SystemExit(f"{params_path}: one JSON object, parameter name -> value")
    found = problems(template, values)
    if found:
        print(f"{params_path} is not ready to deploy:", *(f"  {p}" for p in found), sep="\n", file=sys.stderr)
        raise SystemExit(1)
    if command == "check":
        print(f"{params_path}: {sum(not k.startswith('_') for k in values)} parameters, none a placeholder")
    else:
        print(" ".join(f"{k}={v}" for k, v in values.items() if not k.startswith("_")))


if __name__ == "__main__":
    main(sys.argv[1:])
