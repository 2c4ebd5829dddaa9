"""Wheel platforms: one definition of the manylinux tags, their legacy aliases and pip's arguments."""

from __future__ import annotations

import pytest
from packaging.tags import Tag

from modelbundle.bundler import (
    LEGACY_MANYLINUX,
    WheelPlatform,
    manylinux_glibc,
    manylinux_platforms,
)
from modelbundle.exporters.awslambda import lambda_runtime
from modelbundle.exporters.docker import ImagePlatform


@pytest.mark.parametrize(
    ("tag", "glibc"),
    [
        # the aliases pip and packaging read: PEP 513, 571 and 599 against PEP 600
        ("manylinux1_x86_64", (2, 5)),
        ("manylinux2010_x86_64", (2, 12)),
        ("manylinux2014_aarch64", (2, 17)),
        ("manylinux_2_28_x86_64", (2, 28)),
        ("musllinux_1_2_x86_64", None),
        ("linux_x86_64", None),
        ("any", None),
    ],
)
def test_each_manylinux_tag_names_the_glibc_it_needs(tag: str, glibc: tuple[int, int] | None) -> None:
    assert manylinux_glibc(tag) == glibc


def test_x86_64_takes_every_policy_down_to_manylinux1_each_alias_beside_its_glibc() -> None:
    tags = manylinux_platforms("x86_64", (2, 26))
    assert tags[0] == "manylinux_2_26_x86_64" and tags[-1] == "manylinux1_x86_64"
    for alias, (_major, minor) in LEGACY_MANYLINUX.items():
        assert tags[tags.index(f"manylinux_2_{minor}_x86_64") + 1] == f"{alias}_x86_64"
    assert [manylinux_glibc(tag) for tag in tags] == sorted((manylinux_glibc(tag) for tag in tags), reverse=True)
    assert "manylinux_2_27_x86_64" not in tags


def test_aarch64_starts_at_manylinux2014_and_has_no_older_aliases() -> None:
    tags = manylinux_platforms("aarch64", (2, 28))
    assert tags[-2:] == ("manylinux_2_17_aarch64", "manylinux2014_aarch64")
    assert not any(tag.startswith(("manylinux1", "manylinux2010", "manylinux_2_16")) for tag in tags)


def test_the_glibc_ceiling_decides_which_wheels_fit() -> None:
    lambda_al2 = WheelPlatform("x86_64", "3.11", (2, 26))
    assert lambda_al2.accepts("numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert lambda_al2.accepts("websockets-17.4-cp311-cp311-manylinux1_x86_64.manylinux_2_5_x86_64.whl")
    assert lambda_al2.accepts("old-1.0-cp311-cp311-manylinux2010_x86_64.whl")  # Lambda's list lacked this alias
    assert not lambda_al2.accepts("numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl")
    assert not lambda_al2.accepts("numpy-2.2.6-cp312-cp312-manylinux2014_x86_64.whl")
    assert not lambda_al2.accepts("numpy-2.2.6-cp311-cp311-manylinux2014_aarch64.whl")
    assert not lambda_al2.accepts("not a wheel.whl")
    assert lambda_al2.accepts("watchfiles-1.3.0-cp310-abi3-manylinux_2_17_x86_64.whl")
    assert lambda_al2.accepts("click-8.5.1-py3-none-any.whl")


def test_the_most_specific_wheel_ranks_first() -> None:
    platform = WheelPlatform("x86_64", "3.11", (2, 36))
    ranks = [
        platform.wheel_rank(name)
        for name in (
            "x-1-cp311-cp311-manylinux_2_28_x86_64.whl",
            "x-1-cp311-cp311-manylinux2014_x86_64.whl",
            "x-1-cp311-abi3-manylinux2014_x86_64.whl",
            "x-1-py3-none-any.whl",
        )
    ]
    assert None not in ranks and ranks == sorted(ranks)


def test_pip_arguments_name_the_interpreter_and_every_platform() -> None:
    args = WheelPlatform("aarch64", "3.12", (2, 28)).pip_args()
    assert args[:7] == ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.12", "--abi", "cp312"]
    platforms = [args[i + 1] for i, arg in enumerate(args) if arg == "--platform"]
    assert platforms == list(manylinux_platforms("aarch64", (2, 28)))


def test_the_host_platform_takes_the_interpreters_own_tags() -> None:
    host = WheelPlatform.host()
    assert host.native and host.pip_args() == ["--only-binary=:all:"]
    assert Tag("py3", "none", "any") in host.tags


def test_images_and_lambda_share_the_definition() -> None:
    image = ImagePlatform.parse("linux/amd64", "3.11")
    runtime = lambda_runtime("3.11", "x86_64")
    assert image.wheels == WheelPlatform("x86_64", "3.11", (2, 36))
    assert runtime.wheels == WheelPlatform("x86_64", "3.11", (2, 26))
    assert runtime.platforms == list(manylinux_platforms("x86_64", (2, 26)))
    # both now list manylinux2010 and manylinux1 (pip expands manylinux2014 to them; packaging's tags do not)
    assert {"manylinux2010_x86_64", "manylinux1_x86_64"} <= set(image.wheel_platforms) & set(runtime.platforms)
    assert lambda_runtime("3.12", "arm64").wheels.glibc == (2, 28)
