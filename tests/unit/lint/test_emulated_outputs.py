"""PA003 on npm and Python work: what leaves a stage decides whether it could run
natively, and a project's own `setup.py install` is not a source build."""

from __future__ import annotations

from polyarch.lint import lint
from polyarch.platforms import parse_platforms

TWO = parse_platforms("linux/amd64,linux/arm64")

NPM_STAGE = """\
FROM node:20-alpine AS build
WORKDIR /client
COPY . .
RUN npm ci && npm run build
"""


def pa003(text: str) -> list[tuple[str, int]]:
    return [(f.severity, f.line) for f in lint(text, platforms=TWO) if f.rule == "PA003"]


def test_npm_output_of_any_name_beside_node_modules_is_reported() -> None:
    text = NPM_STAGE + "FROM nginx:1.27\nCOPY --from=build /client/build /client/scripts /srv/\n"
    assert pa003(text) == [("warning", 4)]
    [f] = [f for f in lint(text, platforms=TWO) if f.rule == "PA003"]
    assert "/client/scripts" in f.message and "/client/build" in f.message


def test_npm_output_that_holds_the_install_directory_is_not_reported() -> None:
    for src in ("/client", "/", "/client/*", ".", "/client/"):
        text = NPM_STAGE + f"FROM nginx:1.27\nCOPY --from=build {src} /srv/\n"
        assert pa003(text) == [], src


def test_npm_output_taken_into_a_stage_that_runs_node_is_not_reported() -> None:
    # A workspace package (its own node_modules) installed or run where it lands.
    for tail in ("RUN npm install -g /opt/cli\n", 'ENTRYPOINT ["node", "/opt/cli/index.js"]\n'):
        text = NPM_STAGE + "FROM node:20-slim\nCOPY --from=build /client/packages/cli /opt/cli\n" \
            + tail
        assert pa003(text) == [], tail



def test_npm_output_run_by_node_that_installs_nothing_is_not_reported() -> None:
    # The Node stage installs no packages: what it runs (a Next.js standalone build)
    # brings its node_modules from the npm stage, built for the target there.
    run = 'CMD ["node", "/srv/server.js"]\n'
    text = NPM_STAGE + "FROM node:20-slim\nCOPY --from=build /client/.next/standalone /srv\n" + run
    assert pa003(text) == []
    # A Node stage that installs its own packages takes only the build output.
    text = NPM_STAGE + "FROM node:20-slim\nWORKDIR /srv\nCOPY package*.json ./\n" \
        "RUN npm ci --omit=dev\nCOPY --from=build /client/dist /srv/dist\n" + run
    assert pa003(text) == [("warning", 4)]


def test_npm_output_through_a_stage_built_from_it_needs_an_output_name() -> None:
    # `test` runs the installed code; what it writes is not proven independent of it.
    text = NPM_STAGE + "FROM build AS test\nRUN npm test > /tmp/report.txt\n" \
        "FROM scratch\nCOPY --from=test /tmp/report.txt /\n"
    assert pa003(text) == []


def test_setup_py_install_is_no_source_build_but_build_ext_is() -> None:
    base = "FROM python:3.12\nCOPY . /src\nWORKDIR /src\n"
    for cmd in ("python setup.py install", "python3 setup.py build", "python setup.py develop",
                "python setup.py bdist_wheel"):
        assert pa003(base + f"RUN {cmd}\n") == [], cmd
    assert pa003(base + "RUN python setup.py build_ext --inplace\n") == [("warning", 4)]
    assert pa003(base + "RUN pip install --no-binary :all: psycopg2==2.9.9\n") == [("warning", 4)]
