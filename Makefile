# The two commands of the README: `make demo` and `make test`.
PY ?= python3
PIP = $(PY) -m pip install --disable-pip-version-check -q

.PHONY: install test test-fast demo demo-data demo-train bench

install:
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'
	# Inception-v3 of the FID/KID/PR metrics; --no-deps: its CLIP part needs torchvision, which does not
	# install beside this torch (synthhist.metrics.inception imports only the Inception module).
	$(PIP) --no-deps torch-fidelity==0.4.0

# Two pytest-xdist workers (the CI machines have 2 cores), a test file per worker at a time: ~7 min instead of ~21.
PYTEST = $(PY) -m pytest -q -ra -n 2 --dist loadfile

test: install
	$(PYTEST)

test-fast:
	$(PYTEST) -m "not slow"

# Offline demo (experiment/demo/README.md). `demo`: the main job on the bundled demo models (a few minutes on CPU).
DEMO_OUT ?= demo-output

demo: install
	SEEDS=0-63 PY=$(PY) sh experiment/demo/explain.sh $(DEMO_OUT) demo demo

demo-data:
	$(PY) -m synthhist.demo.data experiment/demo/data

# The bundled models' recipe from scratch on the demo data, then the main job on them (experiment/demo/train.sh;
# experiment/demo/README.md gives the time). DEMO_KIMG=7 trains the GAN for 7 kimg over its four stages: a quick run.
DEMO_KIMG ?=

demo-train: install demo-data
	PY=$(PY) $(if $(DEMO_KIMG),DEMO_KIMG=$(DEMO_KIMG)) sh experiment/demo/train.sh $(DEMO_OUT)/train
