"""The Dockerfile: a builder stage makes the venv from host wheels, the final stage copies the bundle's layers.

Layers of the final stage, least to most often changed, so that a code-only
change rebuilds only the last one:

1. ``COPY --from=builder /out/ /``: the venv at /opt/venv, plus /etc/passwd and
   /etc/group naming the non-root user (made in the builder, so no RUN in the
   final stage and no layer duplicated by a chown);
2. one ``COPY`` per baked weights blob (``_weights.py``), when the bundle references weights;
3. ``COPY data/ /``: the bundle's artifacts (and vendored wheels);
4. ``COPY code/ /``: everything else of the bundle (manifest, RECORD, src, lock).

The builder stage and the venv layer depend on the image's lock, Python and
base image only, never on the target: a docker and a sagemaker image of one
bundle share the venv layer (the user exists in both; only the final stage
decides whether it is used). Every file the final stage gets has a fixed mtime,
mode and owner, so the layers the bundle contributes have the same digest
whenever they are built.

``render_dockerfile`` writes the whole build as one multi-stage Dockerfile (for
``--context-only``). ``bundle containerize`` builds the same image in two
steps, so that the venv outlives the builder stage: ``render_venv_dockerfile``
makes the *venv image* (the base plus the venv layer, tagged by what decides
its content), and ``render_final_dockerfile`` builds the bundle's layers on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ._weights import WEIGHTS_CACHE, WEIGHTS_HOME, weight_layer_steps

#: a fixed time for every file in the image's layers (1980-01-01, the oldest a zip or wheel can hold)
SOURCE_DATE_EPOCH = 315532800
VENV_DIR = "/opt/venv"
BUNDLE_DIR = "/opt/bundle"
USER_NAME = "bundle"
USER_ID = 10001
HOME_DIR = f"/home/{USER_NAME}"
#: a directory the server user owns, for a volume that keeps the jobs queue (`--jobs-dir`): a named
#: volume mounted there starts with its owner, so the non-root server can write to it
JOBS_DIR = "/var/lib/modelbundle/jobs"
DEFAULT_PORT = 3000
#: on the builder stage's images (never run): docker image prune --filter label=ai.modelbundle.stage=builder
BUILDER_LABEL = "ai.modelbundle.stage"
#: on a builder stage kept with --keep-builder: the image it was built for
BUILDER_FOR_LABEL = "ai.modelbundle.builder.for"
#: context folders (under the build context) copied as whole root filesystems
DATA_LAYER = "data"
CODE_LAYER = "code"
WHEELS_DIR = "wheels"
#: the system packages' .deb files (when the bundle has system_packages)
DEBS_DIR = "debs"
LOCK_FILE = "requirements.lock"


@dataclass(frozen=True)
class HealthCheck:
    command: Sequence[str]
    interval: str = "5s"
    timeout: str = "3s"
    start_period: str = "120s"
    retries: int = 3


@dataclass(frozen=True)
class ImageRecipe:
    """What differs between targets: the final stage's user, env, ports, entrypoint and labels."""

    base_image: str
    python_version: str  # "3.11": checked against the base image's python3 in the builder
    entrypoint: Sequence[str]
    command: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: None: no EXPOSE (a Lambda image listens on nothing)
    port: int | None = DEFAULT_PORT
    #: None: root (SageMaker runs containers as root and writes to /opt/ml); else USER_ID, the user the venv layer names
    user_id: int | None = USER_ID
    #: None: the user's home, or the base image's for root
    workdir: str | None = None
    healthcheck: HealthCheck | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    has_data_layer: bool = True
    #: the context has .deb files to install (the bundle's system_packages)
    has_debs: bool = False
    #: the digests of the referenced weights baked into the image, one layer each, before the bundle's layers
    weight_layers: tuple[str, ...] = ()


def render_dockerfile(recipe: ImageRecipe) -> str:
    """The whole build as one multi-stage Dockerfile: the builder, then the final stage on the base image."""
    final = [f"FROM {recipe.base_image}", "COPY --from=builder /out/ /", *_bundle_layers(recipe)]
    return "\n".join([*builder_stage(recipe.base_image, recipe.python_version, recipe.has_debs), "", *final]) + "\n"


def render_venv_dockerfile(base_image: str, python_version: str, builder_for: str | None = None, has_debs: bool = False) -> str:
    """The venv image: the base image plus the venv layer, the same layer ``render_dockerfile`` makes.

    ``builder_for`` labels the builder stage's last image with the image it was
    built for, after the install, so the install's cache is shared by every tag.
    """
    builder = builder_stage(base_image, python_version, has_debs)
    if builder_for is not None:
        builder.append(f"LABEL {BUILDER_FOR_LABEL}={json.dumps(builder_for)}")
    return "\n".join([*builder, "", f"FROM {base_image}", "COPY --from=builder /out/ /"]) + "\n"


def render_final_dockerfile(recipe: ImageRecipe, venv_image: str) -> str:
    """The bundle's layers and the target's settings on a venv image made by ``render_venv_dockerfile``."""
    return "\n".join([f"FROM {venv_image}", *_bundle_layers(recipe)]) + "\n"


def builder_stage(base_image: str, python: str, has_debs: bool = False) -> list[str]:
    """The venv from the context's lock and wheels, in /out; the same for every target of one lock.

    With ``has_debs``, the system packages first: installed in the builder from the context's
    .deb files (no sources, no download), then their files, dpkg's records of them and the
    linker cache copied to /out, so they reach the image in the venv layer, with its fixed times.
    """
    check = (
        "import sys; v = '%d.%d' % sys.version_info[:2]; "
        f"sys.exit(0 if v == '{python}' else 'the base image has Python ' + v + ', the bundle needs {python}: choose another --base-image')"
    )
    # every target gets the non-root user, used or not, so that the venv layer is one layer for all of them
    make_user = (
        f"useradd --uid {USER_ID} --user-group --no-create-home --home-dir {HOME_DIR} "
        f"--shell /usr/sbin/nologin {USER_NAME}; "
        f"mkdir -p /out/etc /out{HOME_DIR} /out{JOBS_DIR} /out{WEIGHTS_CACHE}; cp /etc/passwd /etc/group /out/etc/; "
        f"chown {USER_ID}:{USER_ID} /out{HOME_DIR} /out{JOBS_DIR} /out{WEIGHTS_HOME} /out{WEIGHTS_CACHE}; "
    )
    return [
        "# Made by `bundle containerize`; builds with the classic builder or BuildKit, offline.",
        f"FROM {base_image} AS builder",
        # containerize removes the builder's images after the build (unless --keep-builder); this label finds any left
        f"LABEL {BUILDER_LABEL}=builder",
        # fixed time and hash seed: stable marshalling, and fixed mtimes in the layer
        f"ENV SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH} PYTHONHASHSEED=0 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1",
        *(_system_packages_steps() if has_debs else []),
        f"COPY {LOCK_FILE} /build/{LOCK_FILE}",
        f"COPY {WHEELS_DIR}/ /build/{WHEELS_DIR}/",
        "RUN set -eu; "
        f"python3 -c {_sh_quote(check)}; "
        # pip runs from outside the image's venv, so that the venv holds only the lock: straight from the
        # pip wheel the base image keeps for ensurepip (Debian's or CPython's), else from a throwaway venv
        # (ensurepip installing pip takes ~10 s on a busy machine)
        f"pip=; for wheel in /usr/share/python-wheels/pip-*.whl \"$(python3 -c {_sh_quote(_ENSUREPIP_DIR)} 2>/dev/null)\"/_bundled/pip-*.whl; do "
        '[ -f "$wheel" ] && pip="python3 $wheel/pip" && break; done; '
        '[ -n "$pip" ] || { python3 -m venv /build/tools; pip="/build/tools/bin/python -m pip"; }; '
        f"python3 -m venv --without-pip {VENV_DIR}; "
        f"$pip --python {VENV_DIR}/bin/python install --quiet --no-compile --no-index "
        f"--find-links /build/{WHEELS_DIR} --require-hashes --no-deps -r /build/{LOCK_FILE}; "
        # the packages' own test suites (a fifth of scipy's and numpy's size) never run in a server:
        # the same rule as Lambda's zip, by the venv's own Python from the installed modelbundle's file
        f"site=$(echo {VENV_DIR}/lib/python3*/site-packages); "
        f'{VENV_DIR}/bin/python -B -I "$site/modelbundle/_test_packages.py" "$site"; '
        f"{VENV_DIR}/bin/python -c {_sh_quote(_COMPILER)} {VENV_DIR}/lib; "
        # moved, not copied: the step's layer (committed and hashed by the engine) holds the venv once
        f"mkdir -p /out/opt; mv {VENV_DIR} /out/opt/; rm -rf /build/tools; "
        f"{make_user}"
        f"find /out -exec touch -h -d @{SOURCE_DATE_EPOCH} '{{}}' +",
    ]


def _system_packages_steps() -> list[str]:
    installed = "dpkg-query -W -f '${Package} ${db:Status-Status}\\n' | awk '$2 == \"installed\" {print $1}' | sort"
    return [
        f"COPY {DEBS_DIR}/ /build/{DEBS_DIR}/",
        "RUN set -eu; export DEBIAN_FRONTEND=noninteractive; mkdir -p /out /build/no-sources; "
        f"{installed} > /build/before; "
        # apt orders the installs (Pre-Depends) and checks that the files complete the base image; it has no
        # sources to download from, and the build has no network (--no-download would refuse local files)
        "apt-get install --yes --quiet --no-install-recommends "
        "-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/build/no-sources "
        f"/build/{DEBS_DIR}/*.deb > /build/apt.log 2>&1 || {{ cat /build/apt.log; exit 1; }}; "
        f"{installed} > /build/after; "
        'for package in $(comm -13 /build/before /build/after); do dpkg -L "$package"; '
        'ls -d /var/lib/dpkg/info/"$package".* /var/lib/dpkg/info/"$package":* 2>/dev/null || true; done | sort -u | '
        # each file under its parent's real path: /lib is a link to /usr/lib on merged-/usr bases, and a /out/lib
        # folder would replace that link in the image
        'while read -r file; do if [ -f "$file" ] || [ -L "$file" ]; then '
        'dir=$(readlink -f "$(dirname "$file")"); mkdir -p "/out$dir"; cp -a "$file" "/out$dir/"; fi; done; '
        f"ldconfig; cp -a --parents /var/lib/dpkg/status /etc/ld.so.cache /out/; rm -rf /build/{DEBS_DIR}",
    ]


def _bundle_layers(recipe: ImageRecipe) -> list[str]:
    """The final stage after the venv layer: the data and code layers, then the target's settings."""
    lines = weight_layer_steps(recipe.weight_layers, recipe.user_id)
    if recipe.has_data_layer:
        lines.append(f"COPY {DATA_LAYER}/ /")
    lines.append(f"COPY {CODE_LAYER}/ /")
    env = {
        "PATH": f"{VENV_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # log collectors read containers' stderr: one JSON object per line (MODELBUNDLE_LOG_FORMAT=text for people)
        "MODELBUNDLE_LOG_FORMAT": "json",
        **({"HOME": HOME_DIR} if recipe.user_id is not None else {}),
        **recipe.env,
    }
    lines.append("ENV " + " ".join(f"{key}={_env_quote(value)}" for key, value in env.items()))
    if recipe.user_id is not None:
        # numeric, so that Kubernetes can check runAsNonRoot without reading /etc/passwd
        lines.append(f"USER {recipe.user_id}:{recipe.user_id}")
    workdir = recipe.workdir or (HOME_DIR if recipe.user_id is not None else None)
    if workdir is not None:
        lines.append(f"WORKDIR {workdir}")
    if recipe.port is not None:
        lines.append(f"EXPOSE {recipe.port}")
    check = recipe.healthcheck
    if check is not None:
        lines.append(
            f"HEALTHCHECK --interval={check.interval} --timeout={check.timeout} "
            f"--start-period={check.start_period} --retries={check.retries} CMD {json.dumps(list(check.command))}"
        )
    lines += ["STOPSIGNAL SIGTERM", f"ENTRYPOINT {json.dumps(list(recipe.entrypoint))}", f"CMD {json.dumps(list(recipe.command))}"]
    if recipe.labels:
        lines.append("LABEL " + " \\\n      ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in sorted(recipe.labels.items())))
    return lines


#: bytecode for every module of the venv (one line: a Dockerfile's RUN cannot hold a newline). Unchecked-hash
#: pyc (PEP 552): the same bytes for the same sources, and imports that never re-read a source to check it,
#: since an image's files do not change. A fixed number of processes, each with a fixed share of the files:
#: marshal's output can depend on what else its process compiled, and the layer must stay reproducible.
_COMPILER = "; ".join([
    "import os, sys, py_compile, multiprocessing",
    "mode = py_compile.PycInvalidationMode.UNCHECKED_HASH",
    "files = sorted(os.path.join(d, n) for d, _, names in os.walk(sys.argv[1]) for n in names if n.endswith('.py'))",
    # quiet=2: a file that is not valid Python 3 is skipped without a word, as pip skips it
    "compile_all = lambda paths: [py_compile.compile(p, quiet=2, invalidation_mode=mode) for p in paths]",
    "workers = [multiprocessing.get_context('fork').Process(target=compile_all, args=(files[i::4],)) for i in range(4)]",
    "[w.start() for w in workers]",
    "[w.join() for w in workers]",
    "sys.exit(max(w.exitcode for w in workers))",
])
_ENSUREPIP_DIR = "import ensurepip, os; print(os.path.dirname(ensurepip.__file__))"


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _env_quote(value: str) -> str:
    return json.dumps(value) if any(c in value for c in " \"'$\\") else value
