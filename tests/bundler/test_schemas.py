"""``bundle.json`` as a document of its own: each API's schemas resolve every reference inside
themselves, and a file that defines one Service builds without ``:Class``."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from ._helpers import build_tag, manifest

ROUTER = '''\
from pydantic import BaseModel

from modelbundle import Service, api


class Customer(BaseModel):
    name: str


class Ticket(BaseModel):
    text: str
    customer: Customer


class Routed(BaseModel):
    queue: str
    customer: Customer


class Router(Service):
    @api
    def route(self, req: Ticket) -> Routed:
        return Routed(queue="support", customer=req.customer)

    @api(batchable=True)
    def classify(self, texts: list[str]) -> list[str]:
        return ["support" for _ in texts]
'''


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    project = tmp_path_factory.mktemp("router")
    (project / "router.py").write_text(ROUTER)
    home = project / "home"
    return home, build_tag(project / "router.py", "--quiet", home=home, cwd=project)  # no :Class


def test_a_file_with_one_service_builds_without_a_class_name(router: tuple[Path, str]) -> None:
    home, tag = router
    assert manifest(home, tag)["service"] == "router:Router"


def test_every_schema_in_bundle_json_is_self_contained(router: tuple[Path, str]) -> None:
    home, tag = router
    apis = {api["name"]: api for api in manifest(home, tag)["apis"]}
    route = apis["route"]
    ticket = {"text": "printer on fire", "customer": {"name": "Ada"}}

    # each schema checks a value on its own: a dangling #/components/schemas/... would raise here
    jsonschema.Draft202012Validator(route["input_schema"]["properties"]["req"] | {"$defs": route["input_schema"]["$defs"]}).validate(ticket)
    output = jsonschema.Draft202012Validator(route["output_schema"])
    output.validate({"queue": "support", "customer": {"name": "Ada"}})
    with pytest.raises(jsonschema.ValidationError):
        output.validate({"queue": "support", "customer": {}})  # the nested model is really checked
    assert set(route["output_schema"]["$defs"]) == {"Routed", "Customer"}  # what it uses, nested too
    assert "components" not in str(apis)
    assert "$defs" not in apis["classify"]["input_schema"]  # nothing to define, nothing carried
