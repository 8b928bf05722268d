import numpy as np
import tensorrt as trt
import triton_python_backend_utils as pb_utils

TRT_LOGGER = trt.Logger(trt.Logger.WARNING)


class TritonPythonModel:
    def initialize(self, args):
        with open("/models/detector/1/model.engine", "rb") as f:
            runtime = trt.Runtime(TRT_LOGGER)
            self.engine = runtime.deserialize_cuda_engine(f.read())
        self.context = self.engine.create_execution_context()

    def execute(self, requests):
        return [pb_utils.InferenceResponse([]) for _ in requests]
