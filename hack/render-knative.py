#!/usr/bin/env python3
"""Render Knative Serving's config/core for the local cluster (stdlib only).

Usage: render-knative.py [--real-nodes ACTIVATOR_IMAGE] [--release VERSION] CONFIG_CORE_DIR OUT_DIR

Writes:
  OUT_DIR/crds.yaml      the CustomResourceDefinitions (applied first)
  OUT_DIR/base.yaml      namespace, RBAC, config maps, Services, caches
  OUT_DIR/webhooks.yaml  the admission webhook configurations (applied once the
                         Knative webhook process is running)
  OUT_DIR/activator.yaml with --real-nodes: the activator Deployment, image replaced

Changes made to upstream's YAML, and why:
  * Deployment, HorizontalPodAutoscaler and PodDisruptionBudget objects are
    dropped: controller, webhook and autoscaler run as local processes
    (hack/cluster.sh), there is no container runtime.
  * The `webhook` Service loses its selector: hack/cluster.sh writes its
    Endpoints by hand, pointing at the local webhook process, and the
    apiserver (--enable-aggregator-routing) dials those endpoints.
  * With --real-nodes (real worker nodes, hack/nodes.sh) the activator runs as a
    pod: its Deployment is kept (image: ACTIVATOR_IMAGE, in the local registry).
    The `autoscaler` Service loses its selector too: the autoscaler is a process,
    its Endpoints are written by hack/nodes.sh, and the activator pod reaches it
    through the Service.
  * With --release VERSION, `app.kubernetes.io/version: devel` becomes VERSION, as
    Knative's hack/generate-yamls.sh stamps its release manifests (the namespace's
    label is how the Gaia autoscaler learns the release, docs/autoscaler.md).
"""
import os
import re
import sys

DROP_KINDS = {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
WEBHOOK_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}


def top_level(doc, key):
    m = re.search(r"^%s:\s*(\S+)\s*$" % re.escape(key), doc, re.M)
    return m.group(1).strip("\"'") if m else None


def metadata_name(doc):
    m = re.search(r"^metadata:\s*\n((?:[ \t]+.*\n|\s*\n)*)", doc, re.M)
    if not m:
        return None
    n = re.search(r"^  name:\s*(\S+)", m.group(1), re.M)
    return n.group(1).strip("\"'") if n else None


def documents(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for doc in re.split(r"^---[ \t]*$", text, flags=re.M):
        if re.search(r"^kind:", doc, re.M):
            yield doc.strip("\n") + "\n"


def drop_selector(doc, name):
    doc, n = re.subn(r"^  selector:\s*\n(?:    .*\n)+", "", doc, flags=re.M)
    if n != 1:
        sys.exit("render-knative: could not drop the %s Service selector" % name)
    return doc


def main():
    args = sys.argv[1:]
    activator_image = None
    release = None
    while args[:1] in (["--real-nodes"], ["--release"]):
        if args[0] == "--real-nodes":
            activator_image = args[1]
        else:
            release = args[1]
        args = args[2:]
    src, out = args[0], args[1]
    activator = []
    files = []
    for root, dirs, names in os.walk(src):
        dirs.sort()
        files += [os.path.join(root, n) for n in sorted(names) if n.endswith((".yaml", ".yml"))]
    files.sort(key=lambda p: os.path.relpath(p, src))
    crds, base, hooks, dropped = [], [], [], []
    for path in files:
        for doc in documents(path):
            if release:
                doc = re.sub(r"^([ \t]+app\.kubernetes\.io/version:[ \t]*)\"?devel\"?[ \t]*$",
                             lambda m: '%s"%s"' % (m.group(1), release), doc, flags=re.M)
            kind, name = top_level(doc, "kind"), metadata_name(doc)
            if activator_image and kind == "Deployment" and name == "activator":
                doc, n = re.subn(r"^(\s+image:\s*)ko://\S+", r"\g<1>" + activator_image, doc, flags=re.M)
                if n != 1:
                    sys.exit("render-knative: could not set the activator image")
                activator.append(doc)
                continue
            if activator_image and kind == "Service" and name == "autoscaler":
                doc = drop_selector(doc, name)
            if kind in DROP_KINDS:
                dropped.append("%s/%s" % (kind, name))
                continue
            if kind == "Service" and name == "webhook":
                doc = drop_selector(doc, name)
            if kind in WEBHOOK_KINDS:
                hooks.append(doc)
            elif kind == "CustomResourceDefinition":
                crds.append(doc)
            else:
                base.append(doc)
    os.makedirs(out, exist_ok=True)
    outputs = [("crds.yaml", crds), ("base.yaml", base), ("webhooks.yaml", hooks)]
    if activator_image:
        outputs.append(("activator.yaml", activator))
    for fname, docs in outputs:
        with open(os.path.join(out, fname), "w", encoding="utf-8") as f:
            f.write("---\n".join(docs))
    print("rendered %d CRDs, %d base objects, %d webhook configurations; dropped %s"
          % (len(crds), len(base), len(hooks), ", ".join(dropped)))


if __name__ == "__main__":
    main()
