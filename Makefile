# The two commands of the README: `make demo` and `make test`. Both set themselves up.
.PHONY: demo test install lint bench clean

install:
	@bash scripts/bootstrap.sh

# two workers: the suite starts its own servers per worker, and this machine kind has two cores
test: install
	.venv/bin/python -m pytest -n 2 --dist loadscope

demo: install
	.venv/bin/streetlight up

# style (ruff), the package rules (import-linter, [tool.importlinter]), types (mypy, [tool.mypy])
lint: install
	.venv/bin/ruff check streetlight gateway lwm2m controller telemetry simulators api runtime ops benchmarks tests
	.venv/bin/lint-imports --no-cache
	.venv/bin/mypy

bench: install
	.venv/bin/streetlight bench all

clean:
	rm -rf .venv var build *.egg-info .pytest_cache tests/artifacts
