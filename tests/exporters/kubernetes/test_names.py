"""Names, label values, image references and quantities: what Kubernetes accepts, for any bundle name."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from modelbundle.bundler._manifest import NAME_PATTERN, VERSION_PATTERN
from modelbundle.errors import ExportError
from modelbundle.exporters.kubernetes._names import (
    check_image,
    image_pinned,
    label_value,
    resource_name,
)
from modelbundle.exporters.kubernetes._quantity import parse_quantity

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
AWKWARD_NAMES = ["iris", "3d_model.v2-", "a", "9", "a..b__c--d", "x" * 63, "0" + "-" * 62, "model.v1.2_final_", "a" + "_" * 62]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_every_bundle_name_gives_a_dns_label(name: str) -> None:
    assert NAME_PATTERN.match(name), "not a bundle name: the test is wrong"
    derived = resource_name(name)
    assert DNS_1035.match(derived), derived
    assert len(derived) <= 63
    assert LABEL_VALUE.match(label_value(name))


def test_derived_names_read_like_the_bundle_name() -> None:
    assert resource_name("iris") == "iris"
    assert resource_name("3d_model.v2-") == "mb-3d-model-v2"
    assert resource_name("a..b__c--d") == "a-b-c-d"


@pytest.mark.parametrize("version", ["d9aa4f5c38ee", "1.0.0-rc.1_", "A" * 128, "v_" * 64, "0"])
def test_every_bundle_version_gives_a_label_value(version: str) -> None:
    assert VERSION_PATTERN.match(version)
    value = label_value(version)
    assert LABEL_VALUE.match(value) and len(value) <= 63
    assert value and version.startswith(value[:1])


@pytest.mark.parametrize(
    "image",
    [
        "iris",
        "iris:1",
        "models/iris:d9aa4f5c38ee",
        "localhost:5000/models/iris:latest",
        "registry.example.com/a/b/c_d-e.f:Tag_1.0",
        "[::1]:5000/iris:1",
        "ghcr.io/org/iris@sha256:" + "a" * 64,
        "ghcr.io/org/iris:1@sha256:" + "b" * 64,
    ],
)
def test_valid_image_references(image: str) -> None:
    assert check_image(image) == image


@pytest.mark.parametrize(
    "image", ["", " iris", "Iris", "iris:", "iris::1", "/iris", "registry:5000/", "iris:-tag", "iris@sha256:abc", "http://registry/iris"]
)
def test_invalid_image_references(image: str) -> None:
    with pytest.raises(ExportError, match="--image"):
        check_image(image)


@pytest.mark.parametrize(("image", "pinned"), [("iris", False), ("iris:latest", False), ("iris:1", True), ("iris@sha256:" + "c" * 64, True)])
def test_only_pinned_images_are_cached_on_the_node(image: str, pinned: bool) -> None:
    assert image_pinned(image) is pinned


@pytest.mark.parametrize(
    ("value", "amount"),
    [("500m", "0.5"), ("2", "2"), ("1.5", "1.5"), ("512Mi", str(512 * 2**20)), ("1G", "1000000000"), ("1e3", "1000"), ("4Gi", str(4 * 2**30))],
)
def test_quantities(value: str, amount: str) -> None:
    assert parse_quantity(value, "--x") == Decimal(amount)


@pytest.mark.parametrize("value", ["", "1GB", "1 Gi", "-1", "1.2.3", "Mi", "1mi", "1KB", "10%"])
def test_bad_quantities(value: str) -> None:
    with pytest.raises(ExportError, match=r"--x: .* is not a Kubernetes quantity"):
        parse_quantity(value, "--x")
