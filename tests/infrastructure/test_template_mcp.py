"""template.yaml routes /mcp through the same HTTP API to the chat function (which serves it)."""

from __future__ import annotations

from pathlib import Path

from vicw.aws_resources import read_template

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


def test_mcp_is_routed_to_the_chat_function_on_the_same_http_api():
    resources = read_template(TEMPLATE_PATH)["Resources"]
    routes = {}
    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for event in res["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                routes[(props["Path"], props["Method"])] = (name, props["ApiId"])
    assert routes[("/mcp", "ANY")] == routes[("/{proxy+}", "ANY")] == ("ChatFunction", {"Ref": "HttpApi"})
    # No authorizer of its own: the bearer keys are checked by the app, exactly as on every route.
    assert not any("Auth" in e["Properties"] for e in resources["ChatFunction"]["Properties"]["Events"].values()
                   if e["Properties"].get("Path") == "/mcp")
