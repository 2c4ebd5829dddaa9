"""A composed bundle on Kubernetes: one Deployment and Service (and autoscaler, disruption budget) per service.

Every pod runs the bundle's one image and serves one service of the graph
(``MODELBUNDLE_SERVICE``); a caller reaches each dependency at
``MODELBUNDLE_DEPENDENCY_<NAME>_URL``, the DNS name of the dependency's Service.
The entry keeps a one-service export's file names and its Service's port 80. A
dependency's Service listens on the server's own port (3000), so its URL,
``http://<service>:3000``, is the same in a cluster and on a plain Docker
network whose aliases are the Services' names. The entry's probes are on
/readyz, which a service served alone answers 503 until its dependencies are ready.
Jobs and API keys belong to the entry: the dependencies' Services are internal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ...bundler import BundleManifest, StoredBundle, read_record
from ...errors import ExportError
from ._manifests import Manifest, kubernetes_manifests, service
from ._names import LABEL_PREFIX, label_value, resource_name
from ._options import SERVER_PORT, KubernetesOptions, Plan, plan

_MAX_NAME = 63


def is_composed(manifest: BundleManifest) -> bool:
    """True for a bundle whose ``bundle.json`` records a graph of services (``depends``)."""
    return bool(manifest.services)


def resource_names(manifest: BundleManifest, entry_name: str) -> dict[str, str]:
    """Service name -> the name of its Deployment and Service: the entry's is ``entry_name``,
    a dependency's ``<entry_name>-<service>``; two services that would share one are refused."""
    entry = manifest.services[-1].name
    names: dict[str, str] = {}
    for info in manifest.services:
        name = entry_name if info.name == entry else f"{entry_name}-{resource_name(info.name)}"[:_MAX_NAME].rstrip("-")
        clash = next((other for other, taken in names.items() if taken == name), None)
        if clash is not None:
            raise ExportError(
                f"services {clash!r} and {info.name!r} both give the Kubernetes name {name!r}; "
                "rename one of them (Service.name) or choose a shorter --name"
            )
        names[info.name] = name
    return names


def dependency_url(resource: str) -> str:
    """Where a caller in the same namespace reaches the dependency whose Service is called ``resource``."""
    return f"http://{resource}:{SERVER_PORT}"


def composed_files(manifest: BundleManifest, one_service_files: tuple[str, ...]) -> tuple[str, ...]:
    """Every file an export of this graph may write: the entry's under the one-service names, each
    dependency's prefixed with its service's name (not --name, so a re-export under another name replaces them)."""
    prefixed = [_file_name(info.name, file) for info in manifest.services[:-1] for file in one_service_files]
    return (*one_service_files, *prefixed)


def _file_name(service_name: str, file: str) -> str:
    return f"{resource_name(service_name)}-{file}"


def composed_manifests(bundle: StoredBundle, options: KubernetesOptions) -> dict[str, Manifest]:
    """File name -> object for every service of the bundle's graph, the entry's files first."""
    manifest = bundle.manifest
    entry_plan = plan(bundle, options)  # the entry's name and checks, as for a one-service bundle
    names = resource_names(manifest, entry_plan.name)
    shares = artifact_shares(bundle)
    files: dict[str, Manifest] = {}
    for info in reversed(manifest.services):  # the entry first, as in a one-service export
        is_entry = info is manifest.services[-1]
        service_options = options if is_entry else options.model_copy(
            update={"name": names[info.name], "jobs_volume": None, "jobs_url_secret": None, "api_keys_secret": None}
        )
        service_plan = _for_service(
            plan(bundle, service_options, artifact_size=shares[info.name], service=info.name),
            info.name, info.entry, info.dependencies, names,
        )
        objects = kubernetes_manifests(service_plan)
        if is_entry:
            files.update(objects)
        else:
            objects["service.yaml"] = service(service_plan, port=SERVER_PORT)
            files.update({_file_name(info.name, file): obj for file, obj in objects.items()})
    return files


def _for_service(base: Plan, name: str, entry: str, dependencies: Mapping[str, str], names: Mapping[str, str]) -> Plan:
    """``base`` for the pods of one service: which service they serve, where its dependencies are, its labels."""
    from ...runtime import dependency_url_variable

    env = [
        *base.env,
        {"name": "MODELBUNDLE_SERVICE", "value": name},
        *(
            {"name": dependency_url_variable(dependency), "value": dependency_url(names[dependency])}
            for dependency in sorted(set(dependencies.values()))
        ),
    ]
    labels = {**base.labels, LABEL_PREFIX + "service": label_value(name)}
    annotations = {**base.annotations, LABEL_PREFIX + "service": entry}
    return dataclasses.replace(base, env=env, labels=labels, annotations=annotations)


def artifact_shares(bundle: StoredBundle) -> dict[str, int]:
    """Service name -> the bytes of its artifacts (a dependency's are stored as ``<service>.<artifact>``)."""
    manifest = bundle.manifest
    shares = {info.name: 0 for info in manifest.services}
    for path, (_, size) in read_record(bundle.path).items():
        parts = path.split("/")
        if parts[0] == "artifacts" and len(parts) >= 2:
            shares[manifest.artifact_owner(parts[1])] += size
    return shares
