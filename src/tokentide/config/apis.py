"""Which ``api`` names exist, the module that implements each, and the options each
takes, declared with their types: a leaf module (it imports nothing of tokentide but
the errors), so loading a config never imports a backend.

The config loader checks every option's type and choices here, with the file's line
numbers (:func:`check_option`); :mod:`tokentide.backends.registry` builds the backend
the profile names, importing only the chosen module.  A backend still checks what it
reads (a profile made from command-line flags has no file to point at).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from tokentide.errors import ConfigError

__all__ = ["API_NAMES", "ApiSpec", "Option", "api_spec", "check_option", "in_process"]


@dataclass(frozen=True, slots=True)
class Option:
    """One backend-specific profile key."""

    name: str
    kinds: tuple[type, ...]
    """The TOML types it takes (``bool`` is never an ``int`` here)."""
    help: str
    choices: tuple[object, ...] = ()
    minimum: int | None = None

    def describe(self) -> str:
        """What the option takes, for an error message."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        names = {
            str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            dict: "a table", list: "a list",
        }  # fmt: skip
        shown = [k for k in self.kinds if not (k is int and float in self.kinds)]
        what = " or ".join(names[kind] for kind in shown)
        return what if self.minimum is None else f"{what} of at least {self.minimum}"


@dataclass(frozen=True, slots=True)
class ApiSpec:
    name: str
    module: str
    """Module with a ``from_profile(profile, env)`` factory."""
    summary: str
    declared: tuple[Option, ...] = ()
    """Backend-specific profile keys this backend accepts, with their types."""
    needs_url: bool = True
    install_hint: str | None = None
    """What to install when the module's imports fail."""

    @property
    def options(self) -> frozenset[str]:
        """The names of :attr:`declared`."""
        return frozenset(option.name for option in self.declared)

    @property
    def in_process(self) -> bool:
        """Runs in this process (a local function, the embedded model): no server."""
        return not self.needs_url

    def option(self, name: str) -> Option | None:
        return next((option for option in self.declared if option.name == name), None)


def _yields(*styles: str) -> Option:
    return Option(
        "yields",
        (str,),
        "how each piece relates to the last: appended (delta) or the whole answer so far",
        choices=styles,
    )


_TENSOR = (str,)
_VERSION = Option("model_version", (str, int), "the model version to ask for")
_DELTA_OR_CUMULATIVE = ("delta", "cumulative", "auto")
_MODULE: Final = "tokentide.backends"
_SPECS: Final = (
    ApiSpec(
        "openai",
        f"{_MODULE}.openai",
        "OpenAI-compatible chat completions (SSE)",
        (
            Option(
                "continue_answers",
                (str, bool),
                "how the chat asks the server to go on from a partial answer",
                choices=("flag", "prefill", "off", False),
            ),
        ),
    ),
    ApiSpec("openai-completions", f"{_MODULE}.openai", "OpenAI-compatible text completions (SSE)"),
    ApiSpec("tgi", f"{_MODULE}.tgi", "Hugging Face TGI /generate_stream and /generate"),
    ApiSpec(
        "anthropic",
        f"{_MODULE}.anthropic",
        "Anthropic Messages API (SSE)",
        (Option("anthropic_version", (str,), "the anthropic-version header"),),
    ),
    ApiSpec(
        "triton-http",
        f"{_MODULE}.triton_http",
        "Triton HTTP generate_stream / generate",
        (
            _VERSION,
            Option("input_tensor", (str, int), "the prompt's input tensor"),
            Option("output_tensor", (str, int), "the answer's output tensor"),
            _yields(*_DELTA_OR_CUMULATIVE),
        ),
    ),
    ApiSpec(
        "substrate",
        f"{_MODULE}.substrate",
        "Substrate-style graph streams (node events)",
        (
            Option("graph", (dict, str), "the graph to run: a table, or JSON text"),
            Option("node", (str,), "the node whose output is the answer"),
        ),
    ),
    ApiSpec(
        "muna",
        f"{_MODULE}.muna",
        "Muna-style remote prediction streams",
        (
            Option("tag", (str,), "the predictor's tag"),
            Option("input_name", (str,), "the predictor's prompt input"),
            Option("acceleration", (str,), "where the prediction runs"),
            _yields(*_DELTA_OR_CUMULATIVE),
        ),
    ),
    ApiSpec(
        "ollama",
        f"{_MODULE}.ollama",
        "Ollama native /api/chat (NDJSON)",
        (Option("keep_alive", (str, int, float), 'how long the model stays loaded ("5m", 300)'),),
    ),
    ApiSpec(
        "triton-grpc",
        f"{_MODULE}.triton_grpc",
        "Triton / KServe v2 gRPC ModelStreamInfer",
        (
            _VERSION,
            Option("input_tensor", _TENSOR, "the prompt's input tensor"),
            Option("output_tensor", _TENSOR, "the answer's output tensor"),
            _yields("delta", "cumulative"),
            Option("decoupled", (bool,), "whether the model streams (decoupled)"),
            Option("tls", (bool,), "TLS on the channel"),
            Option("ca_file", (str,), "a CA bundle to trust"),
            Option("metadata", (dict,), "gRPC metadata: header names to values"),
            Option("stream_param", (str,), "the request parameter that asks to stream"),
            Option("max_tokens_tensor", (str,), "the input tensor for max_tokens"),
        ),
        install_hint='pip install "tokentide[grpc]"',
    ),
    ApiSpec(
        "local",
        f"{_MODULE}.local",
        "A Python function in this process (eager or generator)",
        (
            Option("target", (str,), 'the function, as "module:function" or "file.py:function"'),
            _yields(*_DELTA_OR_CUMULATIVE),
        ),
        needs_url=False,
    ),
    ApiSpec(
        "llamacpp",
        f"{_MODULE}.llamacpp",
        "A GGUF model run in-process by llama.cpp",
        (
            Option("model_path", (str,), "the GGUF file"),
            Option("n_threads", (int,), "threads for generation", minimum=1),
            Option("n_ctx", (int,), "the context length", minimum=16),
            Option("chat_format", (str,), "a llama-cpp-python chat format name"),
            Option("extra_buffers", (bool,), "llama.cpp's extra buffer types"),
        ),
        needs_url=False,
        install_hint='pip install "tokentide[local]"',
    ),
)
_BY_NAME: Final = {spec.name: spec for spec in _SPECS}
API_NAMES: tuple[str, ...] = tuple(spec.name for spec in _SPECS)


def api_spec(api: str) -> ApiSpec:
    try:
        return _BY_NAME[api]
    except KeyError:
        raise ConfigError(
            f"Unknown api {api!r}.", hint=f"Known apis: {', '.join(API_NAMES)}."
        ) from None


def check_option(spec: ApiSpec, name: str, value: object, where: Callable[[], str]) -> None:
    """Refuse an option value of the wrong type or outside its choices; ``where()``
    says where in the file (only called when something is wrong)."""
    option = spec.option(name)
    if option is None:
        return
    kinds = tuple(k for k in option.kinds if k is not float) + (
        (int, float) if float in option.kinds else ()
    )
    is_bool = isinstance(value, bool)
    fits = (bool in option.kinds) if is_bool else isinstance(value, kinds)
    if fits and option.choices and value not in option.choices:
        fits = False
    if fits and option.minimum is not None and isinstance(value, int) and value < option.minimum:
        fits = False
    if fits and isinstance(value, str) and not value.strip():
        fits = False
    if not fits:
        raise ConfigError(
            f"{where()}{name} must be {option.describe()}, not {value!r}.",
            hint=f"{name}: {option.help} (api {spec.name!r}).",
        )


def in_process(api: str) -> bool:
    """Whether ``api`` runs in this process (False for an unknown api)."""
    spec = _BY_NAME.get(api)
    return spec is not None and spec.in_process
