"""deployments/Dockerfile and deployments/kubernetes-job.json (the base job template of a Kubernetes work pool)
rendered and validated without Docker or a cluster (neither exists here): the template's variables are a
valid JSON schema, Prefect's own templating renders a batch/v1 Job with no placeholder left, one GPU, no
Kubernetes-level retries (the train task retries) and the storage credentials from a Secret; the image is a
CUDA base plus the wheel installed under constraints.txt."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
from prefect.utilities.templating import apply_values, find_placeholders

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"


def _rendered(**variables) -> dict:
    template = json.loads((DEPLOYMENTS / "kubernetes-job.json").read_text())
    schema = template["variables"]
    defaults = {name: spec["default"] for name, spec in schema["properties"].items() if "default" in spec}
    values = defaults | {"command": "prefect flow-run execute"} | variables
    jsonschema.validate(values, schema)
    return apply_values(template["job_configuration"], values)


def test_the_kubernetes_job_template_renders_a_gpu_job():
    template = json.loads((DEPLOYMENTS / "kubernetes-job.json").read_text())
    jsonschema.Draft202012Validator.check_schema(template["variables"])
    used = {p.name for p in find_placeholders(template["job_configuration"])}
    assert used <= set(template["variables"]["properties"]), used - set(template["variables"]["properties"])

    configuration = _rendered(image="registry.example/dreamcore:1", node_selector={"gpu": "a100"})
    assert not find_placeholders(configuration), find_placeholders(configuration)
    job = configuration["job_manifest"]
    assert (job["apiVersion"], job["kind"], job["spec"]["backoffLimit"]) == ("batch/v1", "Job", 0)
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["nodeSelector"] == {"gpu": "a100"}
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/dreamcore:1"
    assert container["args"] == "prefect flow-run execute"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["envFrom"] == [{"secretRef": {"name": "dreamcore-storage"}}]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/work", "/dev/shm"}


def test_the_template_refuses_a_job_without_an_image():
    template = json.loads((DEPLOYMENTS / "kubernetes-job.json").read_text())
    try:
        jsonschema.validate({"gpus": 1}, template["variables"])
    except jsonschema.ValidationError as error:
        assert "'image' is a required property" in error.message
    else:
        raise AssertionError("a template without an image validated")


def test_the_dockerfile_is_a_cuda_base_plus_the_wheel():
    lines = (DEPLOYMENTS / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    instructions = [line.split(None, 1) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    known = {"ARG", "FROM", "ENV", "COPY", "RUN", "WORKDIR"}
    assert {word for word, _ in instructions} <= known
    args = dict(re.match(r"(\w+)=(\S+)", rest).groups() for word, rest in instructions if word == "ARG")
    (base,) = [rest for word, rest in instructions if word == "FROM"]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    assert "cuda" in base and base.startswith("pytorch/pytorch:")
    copies = " ".join(rest for word, rest in instructions if word == "COPY")
    assert "dist/dreamcore-*.whl" in copies and "constraints.txt" in copies
    (install,) = [rest for word, rest in instructions if word == "RUN"]
    assert re.search(r"pip install -c \S*constraints.txt \S*dreamcore-\*\.whl", install)
    for source in copies.split()[:-1]:  # every file the build copies exists once the wheel is built
        assert source.startswith("dist/") or (DEPLOYMENTS.parent / source).is_file(), source
