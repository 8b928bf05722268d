"""Text generation with TinyLlama-1.1B-Chat, the paper's third workload.

Generates a fixed number of new tokens (256, as in the paper) for a chat prompt. The model code
lives in model.py beside this file.
"""

import time

from .model import MAX_NEW_TOKENS, load


generator = load()


def handle(request: dict) -> dict:
    prompt = str(request.get("prompt", "Explain serverless computing in one paragraph."))
    started = time.perf_counter()
    text, new_tokens = generator.generate(prompt, MAX_NEW_TOKENS)
    return {
        "text": text,
        "new_tokens": new_tokens,
        "device": generator.device,
        "seconds": time.perf_counter() - started,
    }
