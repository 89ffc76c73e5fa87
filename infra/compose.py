"""The template `chalice package --merge-template` merges for one stage (make package, make deploy).

infra/template.json holds what the local stack builds too (ops/local/resources.py walks it, and refuses a
resource type it does not know); infra/aws.json holds what exists only in AWS: parameters, function names, log
groups and environment, the custom domain, SES identity, WAF, alarms, dashboard. This deep-merges aws.json over
template.json:

- objects merge key by key (a resource without Type extends the one of that name, as chalice's merge does);
- a null removes the key (aws.json replaces SigningKeysSecret's SecretString by GenerateSecretString);
- DependsOn lists are joined; any other list or value replaces;
- the Stage parameter is pinned to the stage packaged (chalice writes that stage's queue and topic names into its
  part of the template, so deploying it under another Stage would wire the functions to nothing), and the uploads
  bucket's default follows it;
- a dashboard body given as an object becomes the Fn::Sub string CloudFormation wants;
- the gateway responses (AWS::ApiGateway::GatewayResponse, what the local stack's 404s imitate) move into the API's
  OpenAPI body (x-amazon-apigateway-gateway-responses): as separate resources, the next deployment's import of the
  body (mode overwrite) would drop them and CloudFormation would not put them back (cfn-lint W3660).

    python infra/compose.py dev build/merge-dev.json
"""
import json
import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parent
STAGES = ("dev", "prod")


def merge(base, extra):
    if not (isinstance(base, dict) and isinstance(extra, dict)):
        return extra
    out = dict(base)
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif key == "DependsOn":
            def as_list(v):
                return [v] if isinstance(v, str) else list(v or [])
            out[key] = list(dict.fromkeys(as_list(base.get(key)) + as_list(value)))
        else:
            out[key] = merge(base[key], value) if key in base else value
    return out


def compose(stage: str) -> dict:
    if stage not in STAGES:
        raise SystemExit(f"stage must be one of {', '.join(STAGES)}, not {stage!r}")
    template = merge(json.loads((INFRA / "template.json").read_text()), json.loads((INFRA / "aws.json").read_text()))
    params = template["Parameters"]
    params["Stage"] = {**params["Stage"], "Default": stage, "AllowedValues": [stage]}
    params["UploadsBucketName"] = {**params["UploadsBucketName"], "Default": f"portal-access-{stage}-uploads"}
    responses = {}
    for lid, resource in list(template["Resources"].items()):
        if resource.get("Type") == "AWS::ApiGateway::GatewayResponse":
            props = template["Resources"].pop(lid)["Properties"]
            assert props["RestApiId"] == {"Ref": "RestAPI"}, lid
            responses[props["ResponseType"]] = {
                **({"statusCode": int(props["StatusCode"])} if "StatusCode" in props else {}),
                "responseParameters": props.get("ResponseParameters", {}),
                "responseTemplates": props.get("ResponseTemplates", {})}
    if responses:
        body = template["Resources"].setdefault("RestAPI", {}).setdefault("Properties", {}).setdefault(
            "DefinitionBody", {})
        body["x-amazon-apigateway-gateway-responses"] = responses
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::CloudWatch::Dashboard" and isinstance(props.get("DashboardBody"), dict):
            props["DashboardBody"] = {"Fn::Sub": json.dumps(props["DashboardBody"], separators=(",", ":"))}
    return template


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python infra/compose.py dev|prod OUTPUT.json")
    stage, out = argv
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(compose(stage), indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
