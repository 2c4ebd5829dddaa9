"""What the runtime answers a new user's first mistakes: the status and the exact message
(issue 15). Batching on and off give the same answers."""

from __future__ import annotations

import io

import numpy as np
import pytest

from fixtures.services.tickets import Tickets
from modelbundle.runtime import ServeConfig


@pytest.fixture(scope="module", params=[True, False], ids=["batching", "no-batching"])
def server(request, serve_in_thread):
    with serve_in_thread(Tickets, ServeConfig(batching=request.param, log_level="critical")) as server:
        yield server


def _error(response, status: int) -> tuple[str, str]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    return error["type"], error["message"]


def test_an_unknown_key_beside_the_parameter_is_named(server):
    response = server.post("/route", json={"texts": ["a"], "x": 1})
    assert _error(response, 422) == ("invalid_input", "unknown field 'x'; route takes field 'texts'")


def test_a_misspelt_parameter_is_named_rather_than_called_not_a_list(server):
    response = server.post("/route", json={"text": ["a"]})
    assert _error(response, 422) == ("invalid_input", "unknown field 'text'; route takes field 'texts'")


def test_the_keyed_and_the_bare_forms_still_work(server):
    assert server.post("/route", json={"texts": ["an invoice", "hello"]}).json() == ["billing", "support"]
    assert server.post("/route", json=["an invoice"]).json() == ["billing"]


@pytest.mark.parametrize("body", [[], {"texts": []}], ids=["bare", "keyed"])
def test_an_empty_batch_gets_an_empty_answer_without_calling_the_model(server, body):
    # route raises on no rows, as scikit-learn does: a 200 means the model was not called
    response = server.post("/route", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == []


def test_an_empty_array_batch_gets_an_empty_array_of_the_declared_dtype(server):
    response = server.post("/urgency", json=[])
    assert response.status_code == 200, response.text
    assert response.json() == []
    npy = server.post("/urgency", json=[], headers={"accept": "application/x-npy"})
    assert npy.status_code == 200
    array = np.load(io.BytesIO(npy.content))
    assert array.shape == (0,) and array.dtype == np.int64


def test_an_empty_batch_whose_output_has_no_empty_value_is_a_422(server):
    response = server.post("/embed", json=[])
    assert _error(response, 422) == (
        "invalid_input",
        "embed got no rows (an empty batch along dimension 0), and its output (array of any dtype, any shape) "
        "has no empty value; send at least one row",
    )


def test_an_empty_body_on_a_pydantic_api_names_the_models_fields(server):
    response = server.post("/triage", content=b"", headers={"content-type": "application/json"})
    assert _error(response, 400) == (
        "bad_request",
        "empty body; triage expects JSON: a Ticket object (fields 'text', 'priority'), bare or as {\"req\": ...}",
    )
    # and the body it names is the one that works
    assert server.post("/triage", json={"text": "down", "priority": 1}).json() == {"queue": "urgent"}
