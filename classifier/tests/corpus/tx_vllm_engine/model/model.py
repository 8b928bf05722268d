from vllm import LLM, SamplingParams


class Model:
    def __init__(self, **kwargs):
        self.llm = None

    def load(self):
        self.llm = LLM(model="meta-llama/Meta-Llama-3-8B-Instruct", tensor_parallel_size=1)

    def predict(self, request):
        params = SamplingParams(temperature=0.7, max_tokens=request.get("max_tokens", 256))
        outputs = self.llm.generate([request["prompt"]], params)
        return {"text": outputs[0].outputs[0].text}
