# masterocr: `make demo` and `make test` set up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint setup clean fonts line-onnx

setup: $(STAMP)

# constraints.txt: the exact versions tested (pyproject.toml has compatible ranges)
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m masterocr.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# the line model's int8 ONNX graphs (11 MB; weights/ ships without them to stay under 45 MB); a wheel user
# writes them with `masterocr export --checkpoint line --int8 --out master_line_int8`
line-onnx: $(STAMP)
	$(BIN)/python scripts/ship_onnx.py --model line

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# Debian font packages for the synthetic renderer (needs root; a no-op with a message otherwise)
fonts:
	bash scripts/install_fonts.sh
