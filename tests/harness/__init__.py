"""The test harness: what the end-to-end tests (tests/e2e), the demo (demo.py) and the live
evaluation (tests/eval/live.py) share.

* paths.py          the repository, hack/cluster.sh, cargo's target directory
* proc.py           ``run`` (one command, output captured) and ``Proc`` (a background process
                    logging to a file): the one process wrapper
* wait.py           ``wait_until`` and the default time limits
* cluster_env.py    ``Cluster``: the local cluster's facts, read from ``hack/cluster.sh env``
* kubectl.py, kn.py ``Kubectl`` and ``Kn`` bound to the cluster's kubeconfig
* install.py        ``GaiaInstall``: Gaia from manifests/, its binaries as processes
* webhook_process.py ``WebhookProcess``: gaia-webhook registered by URL, without manifests/
* duration.py       ``parse_duration``: Gaia's one duration syntax
* driver.py         ``Driver``: what the demo and the live evaluation do on the cluster
* emulator.py, loadgen.py, knative_metrics_standin.py, queue_proxy_series.py: the emulated
  data plane and the load (run as ``python3 -m tests.harness.<name>``)
* autoscaler_run.py one gaia-autoscaler process with the metrics stand-in: the pieces an e2e
                    test of the running controller needs
* node_provisioner_standin.py  a STAND-IN for Karpenter / the cluster autoscaler: adds a KWOK
                    GPU node for a Pending GPU pod after a delay
* demo.py           the live demo's driver (hack/demo.sh runs ``python3 -m tests.harness.demo``)
"""
