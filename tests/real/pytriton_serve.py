"""Serve a decoupled toy "LLM" with NVIDIA PyTriton (a real ``tritonserver``), on CPU.

Run by ``tests/real/test_pytriton.py`` and ``benchmarks/bench_grpc.py``; by hand::

    LD_LIBRARY_PATH=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))') \\
        .venv/bin/python tests/real/pytriton_serve.py --http-port 8000 --grpc-port 8001

Stop it with SIGTERM (or SIGINT): tritonserver and its model stub stop with it.
(The ``LD_LIBRARY_PATH`` fix is in ``shared/reference/real-servers.md`` §2: the Python
backend stub otherwise loads the system libpython next to this venv's stdlib).

Model ``toy_stream`` (decoupled: one Triton response per ``yield``):

* inputs ``text_input`` BYTES [1] (the prompt, ignored except for its length) and the
  optional ``max_tokens`` INT32 [1] (default 8);
* output ``text_output`` BYTES [1]: one word per response, "The", " quick", ... including
  non-ASCII words so multibyte UTF-8 crosses the wire;
* ``delay`` (float seconds, default 0), as a request parameter (gRPC) or the optional
  FP32 [1] input tensor (HTTP ``generate_stream`` maps top-level keys to tensors): sleep
  before each token.

A Python model cannot observe a client's cancellation (PyTriton's ``infer`` function is
not told), so after a client stops, this model goes on generating on its side.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

WORDS = tuple(
    [
        "The",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        ".",
        "Ça",
        "va",
        "très",
        "bien",
        ",",
        "日本語",
        "✓",
    ]
)


def word(i: int) -> bytes:
    return (("" if i == 0 else " ") + WORDS[i % len(WORDS)]).encode()


def infer(requests: list[Any]) -> Iterator[list[dict[str, np.ndarray[Any, Any]]]]:
    for request in requests:
        count = int(request["max_tokens"][0]) if "max_tokens" in request.data else 8
        delay = float((request.parameters or {}).get("delay", 0.0))
        if "delay" in request.data:
            delay = float(request["delay"][0])
        for i in range(count):
            if delay:
                time.sleep(delay)
            yield [{"text_output": np.array([word(i)], dtype=np.object_)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--workspace", default=None, help="PyTriton workspace directory")
    args = parser.parse_args()
    # PyTriton stops cleanly (tritonserver and the Python backend stub too) on SIGINT's
    # KeyboardInterrupt; a background job may have SIGINT ignored, so SIGTERM does the same.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.http_port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        metrics_address="127.0.0.1",
        metrics_port=args.metrics_port,
        allow_gpu_metrics=False,
    )
    with Triton(config=config, workspace=args.workspace) as triton:
        triton.bind(
            model_name="toy_stream",
            infer_func=infer,
            inputs=[
                Tensor(name="text_input", dtype=bytes, shape=(1,)),
                Tensor(name="max_tokens", dtype=np.int32, shape=(1,), optional=True),
                Tensor(name="delay", dtype=np.float32, shape=(1,), optional=True),
            ],
            outputs=[Tensor(name="text_output", dtype=bytes, shape=(1,))],
            config=ModelConfig(batching=False, decoupled=True),
            strict=False,
        )
        triton.serve()


if __name__ == "__main__":
    main()
