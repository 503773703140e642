# The two commands of the README:  make demo   and   make test
LANGUAGE ?= tr
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test test-unit test-notebooks test-slow test-browser test-colab test-lowest test-newest lock clean

setup:
	@bash .ci/setup

demo: setup  ## run all six notebooks on the built-in synthetic corpus with the tiny model (CPU)
	$(VENV)/bin/xlsr demo --language $(LANGUAGE)

test:  ## every test tier: unit, notebooks, slow, browser, colab (set-up adds the optional LM decoder and Chromium), then lowest
	@LM=1 BROWSER=1 bash .ci/setup
	$(PY) -m pytest -ra --durations=15
	@bash .ci/lowest

test-unit: setup
	$(PY) -m pytest -ra -m "not notebooks and not slow and not browser and not colab"

test-notebooks: setup
	$(PY) -m pytest -ra -m notebooks

test-slow: setup
	$(PY) -m pytest -ra -m slow

test-colab: setup  ## the Colab rehearsal: the six notebooks as Run all with a stand-in google.colab (Drive's quota and bin, a disconnect)
	$(PY) -m pytest -ra -s -m colab

test-browser:  ## the notebooks in JupyterLab in headless Chromium, widgets operated (set-up adds Chromium)
	@BROWSER=1 bash .ci/setup
	$(PY) -m pytest -ra -m browser

test-lowest:  ## the unit and notebook tiers on the lowest versions that pyproject.toml declares (.venv-lowest)
	@bash .ci/lowest

test-newest:  ## the unit and notebook tiers on the newest releases (.venv-newest, made anew): run it at a session's start
	@rm -rf .venv-newest
	@VENV=.venv-newest LOCK= LM=1 bash .ci/setup
	.venv-newest/bin/python -m pytest -ra -m "not slow and not browser and not colab"

lock:  ## xlsr_helpers/data/constraints.txt from the newest releases (.venv-newest, made anew); then `make test`, and commit it if it passes
	@rm -rf .venv-newest
	@VENV=.venv-newest LOCK= LM=1 bash .ci/setup
	@{ sed -n '/^#/p' xlsr_helpers/data/constraints.txt; .venv-newest/bin/python -m pip freeze --exclude-editable | grep -v '^xlsr'; } > xlsr_helpers/data/constraints.txt.new
	@mv xlsr_helpers/data/constraints.txt.new xlsr_helpers/data/constraints.txt
	@git diff --stat xlsr_helpers/data/constraints.txt || true

clean:
	rm -rf runs
