# The README's two commands: `make run` and `make test`. Both set up what is missing first.
.PHONY: setup run test lint bench render clean package package-test package-root-test

DEMO := layouts/demo_plant/demo_plant.json
VENV := .venv/bin

setup:
	@bash .ci/bootstrap.sh

# Opens the viewer on the demo plant, live: embedded broker + virtual plant. Without a display
# it runs under Xvfb (nothing to see; use `make render` for a picture).
run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(VENV)/twin-viewer demo; \
	else \
		echo "No display: running the viewer under Xvfb. Stop it with Ctrl+C."; \
		xvfb-run -a -s "-screen 0 1920x1080x24" $(VENV)/twin-viewer demo; \
	fi

lint: setup
	$(VENV)/ruff check .

test: setup lint
	@bash tests/tools/install.sh
	$(VENV)/python -m pytest -q

bench: setup
	$(VENV)/python benchmarks/scene_load.py

# The self-contained Linux bundle (PyInstaller), its .tar.gz and, where dpkg-deb exists, a .deb.
package: setup
	@bash packaging/build.sh

# Starts the built bundle: --version and an off-screen render of the demo plant (slow; not in `make test`).
package-test: package
	@bash packaging/smoke_test.sh

# The built bundle in a minimal Debian root without Python (root, debootstrap and Debian's mirror; not in CI).
package-root-test: package
	@bash packaging/minimal_root_test.sh

render: setup
	$(VENV)/twin-viewer render $(DEMO) --out out/demo_plant.png
	@echo "wrote out/demo_plant.png"

clean:
	rm -rf .venv build dist *.egg-info .pytest_cache .ruff_cache out
