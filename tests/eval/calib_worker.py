"""Measure one example function on one placement, in a process of its own.

Started by calibrate.py (``python3 -m tests.eval.calib_worker``), once per (workload, placement), so that every measurement begins with a
real cold start: a fresh interpreter imports torch, loads the function's module by file path
(which builds its model and moves it to its device) and serves a first request. The placement is
set up by the parent through the environment (CUDA_VISIBLE_DEVICES="" hides the GPU, so the
functions themselves choose the CPU; OMP/MKL thread counts) and by torch.set_num_threads here.

Results go to a JSON file that is rewritten after every measured group, so that a worker killed
at its deadline still leaves what it measured. Raw latencies are seconds of wall time around
`handle(request)`, as a caller in the same process sees them (no HTTP).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "examples" / "functions"

# Besides torch, the libraries each function imports at load time, and the names it takes from them.
LIBRARY_IMPORTS = {
    "image_classification": ("torchvision", ["models", "transforms"]),
    "text_generation": ("transformers", ["AutoModelForCausalLM", "AutoTokenizer", "LlamaConfig", "LlamaForCausalLM"]),
}


class Recorder:
    """The worker's result, saved atomically after each step."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)


def load_function(name: str):
    """Import examples/functions/<name> by file path: a package (text_generation, whose func.py
    imports .model) is registered under its directory name first, a lone func.py is loaded as is."""
    directory = FUNCTIONS / name
    if (directory / "__init__.py").exists():
        spec = importlib.util.spec_from_file_location(
            name, directory / "__init__.py", submodule_search_locations=[str(directory)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
        return importlib.import_module(f"{name}.func")
    spec = importlib.util.spec_from_file_location(f"gaia_function_{name}", directory / "func.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def timed(handle, request: dict) -> tuple[float, float, dict]:
    """(wall seconds, process CPU seconds over all threads, response) of one request."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    response = handle(request)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    return wall1 - wall0, cpu1 - cpu0, response


class Worker:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.options = json.loads(args.options)
        self.deadline = args.deadline
        self.expected_device = "cuda" if args.placement == "gpu" else "cpu"
        self.serving_cpu_s = 0.0
        self.serving_wall_s = 0.0
        self.rec = Recorder(
            Path(args.out),
            {
                "workload": args.workload,
                "placement": args.placement,
                "complete": False,
                "stopped": None,
                "runtime": {},
                "cold_start": {"interpreter_s": max(0.0, time.time() - args.spawned_at)},
            },
        )
        self.rec.save()

    def time_left(self) -> float:
        return self.deadline - time.time()

    # -- cold start ------------------------------------------------------------------------

    def cold_start(self, needs_torch: bool, first_request: dict, describe: dict | None = None, setup=None):
        """Import torch (timed), set the thread count, load the function, serve one request.
        `setup(module)`, if given, runs between loading and the first request (untimed work only)."""
        cold = self.rec.data["cold_start"]
        torch = None
        if needs_torch:
            started = time.perf_counter()
            import torch  # noqa: PLC0415 - the import is what is being timed

            cold["torch_import_s"] = time.perf_counter() - started
            if self.args.threads:
                torch.set_num_threads(self.args.threads)
        library = LIBRARY_IMPORTS.get(self.args.workload)
        if library:
            # the function's other heavy import, timed apart from building its model; transformers
            # imports lazily, so the names the function uses are resolved here too
            started = time.perf_counter()
            package = importlib.import_module(library[0])
            for name in library[1]:
                getattr(package, name)
            cold["library_import_s"] = time.perf_counter() - started
        started = time.perf_counter()
        module = load_function(self.args.workload)
        cold["module_load_s"] = time.perf_counter() - started
        if setup is not None:
            setup(module)
        latency, _, response = timed(module.handle, first_request)
        cold["first_request_s"] = latency
        cold["first_request"] = describe or first_request
        cold["total_s"] = sum(
            cold.get(k, 0.0)
            for k in ("interpreter_s", "torch_import_s", "library_import_s", "module_load_s", "first_request_s")
        )
        self.rec.data["runtime"] = self.runtime_info(torch)
        self.check_device(response)
        self.rec.save()
        return module, torch

    def runtime_info(self, torch) -> dict:
        info = {"python": sys.version.split()[0], "pid_cpu_affinity": len(os.sched_getaffinity(0))}
        if torch is None:
            return info
        info.update(
            torch=torch.__version__,
            torch_cuda=torch.version.cuda,
            cuda_available=torch.cuda.is_available(),
            intra_op_threads=torch.get_num_threads(),
            inter_op_threads=torch.get_num_interop_threads(),
            float32_matmul_precision=torch.get_float32_matmul_precision(),
        )
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info.update(
                gpu=props.name,
                gpu_memory_mib=props.total_memory // 2**20,
                gpu_multiprocessors=props.multi_processor_count,
                gpu_capability=f"{props.major}.{props.minor}",
            )
        return info

    def check_device(self, response: dict) -> None:
        seen = response.get("device")
        if seen is None:
            return
        self.rec.data["device_seen"] = seen
        if seen != self.expected_device:
            raise SystemExit(
                f"{self.args.workload} on {self.args.placement} ran on {seen!r}, "
                f"expected {self.expected_device!r}"
            )

    # -- bookkeeping -----------------------------------------------------------------------

    def serve(self, handle, request: dict) -> tuple[float, dict]:
        latency, cpu, response = timed(handle, request)
        if "error" in response:
            raise SystemExit(f"request {request} failed: {response['error']}")
        self.serving_cpu_s += cpu
        self.serving_wall_s += latency
        return latency, response

    def finish(self, stopped: str | None = None) -> None:
        data = self.rec.data
        data["stopped"] = stopped
        data["complete"] = stopped is None
        self.save_utilisation()

    def save_utilisation(self) -> None:
        wall = self.serving_wall_s
        self.rec.data["cpu_utilisation"] = {
            "cpu_s": self.serving_cpu_s,
            "wall_s": wall,
            "cores_busy": self.serving_cpu_s / wall if wall > 0 else None,
        }
        self.rec.save()

    # -- workloads -------------------------------------------------------------------------

    def matmul(self) -> None:
        """Sizes in ascending order; at each size repeat until min_samples and target_s are both
        met (max_samples at most, and no more than cap_s seconds after the first sample). Stops
        before a size whose time, scaled up as n^3 from the largest size measured, would pass the
        deadline: 'as large as time allows'."""
        o = self.options
        module, _ = self.cold_start(True, {"size": o["first_size"]})
        if o.get("cold_only"):
            return self.finish()
        points = self.rec.data["points"] = []
        last = None  # (size, fastest latency) of the largest size measured so far
        for n in o["sizes"]:
            if last is not None and n > 0:
                predicted = last[1] * (n / last[0]) ** 3
                if time.time() + predicted > self.deadline:
                    return self.finish(f"time budget: size {n} predicted {predicted:.1f} s, {self.time_left():.1f} s left")
            samples, cpu_s = [], 0.0
            size_started = time.perf_counter()
            while len(samples) < o["max_samples"]:
                elapsed = time.perf_counter() - size_started
                if samples and elapsed >= o["cap_s"]:
                    break
                if len(samples) >= o["min_samples"] and elapsed >= o["target_s"]:
                    break
                if samples and time.time() + min(samples) > self.deadline:
                    break
                cpu_before = self.serving_cpu_s
                latency, response = self.serve(module.handle, {"size": n})
                cpu_s += self.serving_cpu_s - cpu_before
                samples.append(latency)
            if n == o["sizes"][0]:
                self.check_device(response)
            points.append({"size": n, "samples": samples, "cpu_s": cpu_s})
            if n > 0:
                last = (n, min(samples))
            self.save_utilisation()
        self.finish()

    def image_classification(self) -> None:
        """One image per request: a JPEG sent base64-encoded (decode + resize + crop + normalise
        + ResNet-18), then a few requests without an image (the function's synthetic tensor)."""
        o = self.options
        payload = Path(o["jpeg_base64_file"]).read_text() if o.get("jpeg_base64_file") else None
        first = {"image": payload} if payload else {}
        describe = {"image": f"jpeg, {len(payload)} base64 chars"} if payload else {}
        module, _ = self.cold_start(True, first, describe)
        if o.get("cold_only"):
            return self.finish()
        self.rec.data["input"] = describe.get("image", "synthetic tensor (no image sent)")
        samples = self.rec.data["samples"] = []
        for _ in range(o["requests"]):
            if self.time_left() <= 0:
                return self.finish(f"time budget after {len(samples)} requests")
            samples.append(self.serve(module.handle, first)[0])
            if len(samples) % 50 == 0:
                self.save_utilisation()
        if payload:
            synthetic = self.rec.data["samples_no_image"] = []
            for _ in range(o["requests_no_image"]):
                if self.time_left() <= 0:
                    break
                synthetic.append(self.serve(module.handle, {})[0])
        self.finish()

    def text_generation(self) -> None:
        """A fixed number of new tokens per request (the function's MAX_NEW_TOKENS, 256). Where
        256 tokens take too long, the same handler is run with MAX_NEW_TOKENS set lower; the
        points (new tokens -> latency) let calibrate.py fit prefill + per-token time."""
        o = self.options
        first_tokens = o["first_tokens"]
        prompt = {"prompt": "Explain serverless computing in one paragraph."}
        function_tokens = {}

        # func.py binds MAX_NEW_TOKENS from .model at import; handle() reads that module global at
        # call time, so setting it on the module changes the tokens generated and nothing else.
        def set_first_tokens(module) -> None:
            function_tokens["value"] = module.MAX_NEW_TOKENS
            module.MAX_NEW_TOKENS = first_tokens

        module, _ = self.cold_start(True, prompt, {**prompt, "new_tokens": first_tokens}, set_first_tokens)
        if o.get("cold_only"):
            return self.finish()
        default_tokens = function_tokens["value"]
        self.rec.data["function_max_new_tokens"] = default_tokens

        def set_tokens(tokens: int) -> None:
            module.MAX_NEW_TOKENS = tokens

        points = self.rec.data["points"] = []
        fastest = {}  # new tokens -> fastest latency so far, to predict the next request's time

        def predict(tokens: int) -> float:
            if len(fastest) >= 2:  # prefill + per-token time through the two outermost points
                (n1, t1), (n2, t2) = min(fastest.items()), max(fastest.items())
                per_token = max((t2 - t1) / (n2 - n1), 0.0)
                return max(t1 + per_token * (tokens - n1), 0.0)
            if fastest:
                n1, t1 = next(iter(fastest.items()))
                return t1 * tokens / n1
            return self.rec.data["cold_start"]["first_request_s"] * tokens / first_tokens

        for tokens, count in o["plan"]:
            set_tokens(tokens)
            samples, cpu_s = [], 0.0
            for _ in range(count):
                if time.time() + predict(tokens) > self.deadline:
                    break
                cpu_before = self.serving_cpu_s
                latency, response = self.serve(module.handle, prompt)
                if response["new_tokens"] != tokens:
                    raise SystemExit(f"asked for {tokens} new tokens, got {response['new_tokens']}")
                cpu_s += self.serving_cpu_s - cpu_before
                samples.append(latency)
                fastest[tokens] = min(latency, fastest.get(tokens, latency))
            if samples:
                points.append({"new_tokens": tokens, "samples": samples, "cpu_s": cpu_s})
                self.save_utilisation()
            if len(samples) < count:
                set_tokens(default_tokens)
                return self.finish(
                    f"time budget at {tokens} tokens: {len(samples)} of {count} requests, "
                    f"{self.time_left():.1f} s left, about {predict(tokens):.1f} s a request"
                )
        set_tokens(default_tokens)
        if o.get("checkpoint_load"):
            try:
                self.measure_checkpoint_load(module.generator)
            except Exception as error:  # an extra measurement: keep the serving data regardless
                self.rec.data["cold_start"]["checkpoint_load"] = {"error": repr(error)[:500]}
        self.finish()

    def measure_checkpoint_load(self, generator) -> None:
        """With real weights the function loads a checkpoint instead of initialising at random,
        and the two take different times. Save the (random) model the function built, in the
        dtype it serves in, and time loading it back onto the function's device: what a revision
        with the weights on local disk (warm file cache) would spend in place of random init."""
        import tempfile

        import torch
        from transformers import LlamaForCausalLM

        model, device = generator.model, generator.device
        nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
        cold = self.rec.data["cold_start"]
        if self.time_left() < 10 + 3 * nbytes / 1e9:  # saving and loading at ~1 GB/s, with room
            cold["checkpoint_load"] = {"skipped": f"time budget ({self.time_left():.0f} s left)"}
            return
        with tempfile.TemporaryDirectory(prefix="gaia-checkpoint-") as directory:
            started = time.perf_counter()
            model.save_pretrained(directory)
            saved = time.perf_counter() - started
            started = time.perf_counter()
            try:
                loaded = LlamaForCausalLM.from_pretrained(directory, dtype=model.dtype)
            except TypeError:  # transformers 4.x names it torch_dtype
                loaded = LlamaForCausalLM.from_pretrained(directory, torch_dtype=model.dtype)
            loaded = loaded.eval().to(device)
            if device == "cuda":
                torch.cuda.synchronize()
            load_s = time.perf_counter() - started
            del loaded
        cold["checkpoint_load"] = {"load_s": load_s, "save_s": saved, "bytes": nbytes,
                                   "dtype": str(model.dtype).replace("torch.", "")}
        self.rec.save()

    def idle_wait(self) -> None:
        """The function sleeps; it imports no torch, so neither does its cold start here."""
        o = self.options
        request = {"seconds": o["seconds"]}
        module, _ = self.cold_start(False, request)
        if o.get("cold_only"):
            return self.finish()
        samples = self.rec.data["samples"] = []
        for _ in range(o["requests"]):
            if time.time() + o["seconds"] > self.deadline:
                return self.finish(f"time budget after {len(samples)} requests")
            samples.append(self.serve(module.handle, request)[0])
        self.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", required=True,
                        choices=["matmul", "image_classification", "text_generation", "idle_wait"])
    parser.add_argument("--placement", required=True, choices=["cpu2", "cpu16", "gpu"])
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 leaves the default")
    parser.add_argument("--deadline", type=float, required=True, help="epoch seconds: start nothing that would end later")
    parser.add_argument("--spawned-at", type=float, required=True, help="epoch seconds when the parent started us")
    parser.add_argument("--options", default="{}", help="workload options, JSON")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    worker = Worker(args)
    getattr(worker, args.workload)()


if __name__ == "__main__":
    main()
