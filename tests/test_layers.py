"""Layers point one way: domain <- storage <- Scrapy adapters <- the CLI.

Read from the source's own import statements (including imports inside
functions), so a new upward arrow fails here before anyone has to find it.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Lower number = lower layer. A module may import its own layer and below.
LAYERS = {
    "finews.core": 0,
    "finews.storage": 1,
    "finews.replica": 1,  # the stand-in site: the domain only
    "crawler": 2,
    "pipelines": 3,
    "finews.serve": 3,  # finews serve: storage, replica (the renderer) and domain; no Scrapy
    "finews.cli": 4,
}
# Third-party packages a layer must not use.
FORBIDDEN = {
    "finews.core": {"scrapy", "twisted", "pymongo", "bson", "itemadapter", "redis", "scrapy_redis"},
    "finews.storage": {"scrapy", "twisted", "itemadapter", "redis", "scrapy_redis"},
    "finews.replica": {"scrapy", "twisted", "pymongo", "bson", "itemadapter"},
    "finews.serve": {"scrapy", "twisted", "itemadapter", "redis", "scrapy_redis"},
}


def layer_of(module: str) -> str | None:
    matches = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return max(matches, key=len) if matches else None


def modules():
    for folder in ("finews", "crawler", "pipelines"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            yield name, path


def imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_every_module_belongs_to_a_layer():
    assert [name for name, _ in modules() if name != "finews" and layer_of(name) is None] == []


def test_no_module_imports_from_a_layer_above_it():
    upward = []
    for name, path in modules():
        own = layer_of(name)
        if own is None:
            continue
        for target in imports(path):
            other = layer_of(target)
            if other is not None and LAYERS[other] > LAYERS[own]:
                upward.append(f"{name} -> {target}")
    assert upward == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_do_not_use_the_frameworks_above_them(layer):
    misused = [f"{name} -> {target}" for name, path in modules() if layer_of(name) == layer
               for target in imports(path) if target.split(".")[0] in FORBIDDEN[layer]]
    assert misused == []


@pytest.mark.slow  # a process of its own, or a scale: kept out of the fast suite's time
def test_reading_commands_do_not_load_scrapy(mongo_uri, db_name, tmp_path):
    """``finews export``, ``stats`` and ``replay`` read or write the database
    without the crawler: none of them imports Scrapy or Twisted."""
    script = (
        "import sys\n"
        "from finews.cli import main\n"
        "codes = []\n"
        "for argv in (['stats'], ['export', '--format', 'jsonl', sys.argv[1]], ['replay']):\n"
        "    try:\n"
        "        codes.append(main(argv))\n"
        "    except SystemExit as done:\n"
        "        codes.append(done.code)\n"
        "print(codes, sorted(m for m in ('scrapy', 'twisted') if m in sys.modules))\n"
    )
    env = {"MONGO_URI": mongo_uri, "MONGO_DATABASE": db_name, "FINEWS_DATA_DIR": str(tmp_path / "var"),
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "posts.jsonl")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[0, 0, 0] []"


# Each host of the original site, spelled in one module (docstrings and
# comments aside): the mirror's in finews.core.pages, the share host's in
# finews.core.feeds. Everything else imports the constant.
HOSTS = {"finews.withounder.com": "finews.core.pages", "finews.zning.me": "finews.core.pages",
         "finews.zning.xyz": "finews.core.feeds"}


def _code_strings(path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_the_site_hosts_are_spelled_once():
    spelled = sorted(f"{name}: {host}" for name, path in modules() for text in _code_strings(path)
                     for host, home in HOSTS.items() if host in text and name != home)
    assert spelled == []


def test_lower_layers_do_not_name_upper_modules_by_string():
    """A class named in a string (a Scrapy setting's value) is an import in
    disguise: finews.core once set ``crawler.scheduler.SharedScheduler``."""
    named = sorted(f"{name}: {text}" for name, path in modules() if LAYERS.get(layer_of(name), 0) < LAYERS["crawler"]
                   for text in _code_strings(path) if text.startswith(("crawler.", "pipelines.", "finews.cli.")))
    assert named == []
