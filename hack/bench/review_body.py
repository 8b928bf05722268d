"""Prints the AdmissionReview an apiserver sends for `kn service create ... --annotation
gaia.dev/execution-mode=auto` with the given file attached inline as gaia.dev/source."""

import json
import sys

source = open(sys.argv[1], encoding="utf-8").read()
annotations = {"gaia.dev/execution-mode": "auto"}
service = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {
        "name": "chat",
        "namespace": "demo",
        "annotations": dict(annotations, **{"gaia.dev/source": source}),
    },
    "spec": {
        "template": {
            "metadata": {
                "annotations": dict(
                    annotations,
                    **{
                        "client.knative.dev/updateTimestamp": "2026-11-22T10:00:00Z",
                        "client.knative.dev/user-image": "dev.local/gaia/chat",
                    },
                )
            },
            "spec": {
                "containers": [
                    {"image": "dev.local/gaia/chat", "name": "", "resources": {},
                     "env": [{"name": "MODEL_ID", "value": "mistralai/Mistral-7B-Instruct-v0.2"}]}
                ]
            },
        },
        "traffic": [{"latestRevision": True, "percent": 100}],
    },
}
gvk = {"group": "serving.knative.dev", "version": "v1", "kind": "Service"}
gvr = {"group": "serving.knative.dev", "version": "v1", "resource": "services"}
review = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "7f0b2c4e-1d2a-4b8e-9c3f-5a6d7e8f9a0b",
        "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": "chat", "namespace": "demo", "operation": "CREATE",
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
        "object": service, "oldObject": None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "kn"},
    },
}
json.dump(review, sys.stdout)
