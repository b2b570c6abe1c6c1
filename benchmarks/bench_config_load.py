"""Loading a large config file: seconds to read and check 1,000 and 4,000 profiles.

Run::

    .venv/bin/python benchmarks/bench_config_load.py
    .venv/bin/python benchmarks/bench_config_load.py --src /tmp/oldtree/src   # another checkout

Each profile is a realistic ~240-byte table (api, url, model, key variable, system
prompt, temperature, max_tokens, a timeout, a header), so 4,300 profiles make a 1 MB
file.  The file is written once per size into a temporary directory (mode 0600); the
figure is the best of ``--repeat`` calls of ``load_settings`` (after a warm-up on a
10-profile file), in one process.  ``--src`` puts another source tree first on ``sys.path``, so the code
before and after a change can be measured in one run, on the same machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

PROFILE = """\
[profiles.server-{i:05d}]
api = "openai"
url = "http://10.0.{a}.{b}:8000/v1"
model = "meta-llama/Llama-3.1-8B-Instruct"
api_key_env = "TEAM_{i:05d}_KEY"
system = "Answer briefly and cite sources."
temperature = 0.2
max_tokens = 512
first_token_timeout = 60
headers = {{ "X-Team" = "team-{i:05d}" }}

"""


def config_text(profiles: int) -> str:
    head = 'default = "server-00000"\n\n'
    return head + "".join(PROFILE.format(i=i, a=i // 250, b=i % 250 + 1) for i in range(profiles))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", help="source tree to import tokentide from")
    parser.add_argument("--sizes", default="1000,4000", help="profile counts (comma-separated)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if args.src:
        sys.path.insert(0, args.src)
    import tokentide
    from tokentide.config.load import load_settings

    print(f"tokentide from {Path(tokentide.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.toml"
        warm.write_text(config_text(10), encoding="utf-8")
        warm.chmod(0o600)
        load_settings(warm)  # warm-up: imports, regex caches
        for size in map(int, args.sizes.split(",")):
            path = Path(tmp) / f"config-{size}.toml"
            path.write_text(config_text(size), encoding="utf-8")
            path.chmod(0o600)
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                settings = load_settings(path)
                best = min(best, time.perf_counter() - start)
            assert len(settings.profiles) == size
            kib = path.stat().st_size / 1024
            print(f"{size:>6} profiles ({kib:,.0f} KiB): {best:.3f} s  (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
