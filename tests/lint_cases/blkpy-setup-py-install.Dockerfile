# Pattern from yasuomaidana/Python-and-Rust-Practice (blkpy-cli/dockerfile): the
# project's own `setup.py install` in the image stage. Like `pip install .` it compiles
# only if the project has C extensions, which the Dockerfile does not show.
# expect: none
FROM python:3.12-alpine
COPY setup.py pkg/ ./
RUN pip install -r requirements.txt
RUN python setup.py install
