"""JupyterLab in headless Chromium, driven like a learner would (used by test_browser.py).

``JupyterLab`` starts a server on 127.0.0.1 (no token, its own settings, workspaces and Jupyter folders);
``Lab`` is a headless Chromium on it (selenium, with Debian's chromedriver: Selenium Manager never runs)
that opens notebooks, runs them from the Run menu, waits until they are done and reads their outputs.
Every wait polls with a timeout; none relies on a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMEDRIVER_NAMES = ("chromedriver",)
# The only console error a page of this curriculum may log: the Open-in-Colab badge image of cell 1,
# which cannot load offline.
ALLOWED_CONSOLE_ERRORS = ("colab-badge.svg",)
LAB_SETTINGS = {
    # Every cell stays in the page (the default windowing removes cells that are out of view).
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No news or update checks (no network), no extension manager (it queries PyPI).
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
    # The tests never write the notebooks they open.
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def find_chromium() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or the reason why there are none."""
    chromium = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    driver = next((p for p in map(shutil.which, CHROMEDRIVER_NAMES) if p), None)
    if chromium and driver:
        return chromium, driver
    missing = [name for name, path in (("chromium", chromium), ("chromium-driver", driver)) if not path]
    return (f"{' and '.join(missing)} missing (.ci/setup installs {'them' if len(missing) > 1 else 'it'} with "
            f"apt-get when run as root with BROWSER=1, as `make test` and `make test-browser` do); install with: "
            f"sudo apt-get install -y chromium chromium-driver")


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); else fail after ``timeout`` s.
    An AssertionError of ``condition`` fails at once (a cell failed: no use waiting)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as error:  # noqa: BLE001 - a page in flux: stale elements, a script error
            last_error = error
        if time.monotonic() > deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server for ``root`` on 127.0.0.1, without a token, with its own Jupyter folders.

    ``env`` holds JUPYTER_DATA_DIR (the notebook notary's secret and signatures: whoever signs notebooks
    for this server must use the same one), JUPYTER_CONFIG_DIR and JUPYTER_RUNTIME_DIR.
    """

    def __init__(self, root: Path, home: Path):
        self.root, self.home = Path(root), Path(home)
        self.env = dict(os.environ)
        for name in ("data", "config", "runtime"):
            (self.home / name).mkdir(parents=True, exist_ok=True)
            self.env[f"JUPYTER_{name.upper()}_DIR"] = str(self.home / name)
        self.log_path = self.home / "jupyterlab.log"
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 90) -> "JupyterLab":
        settings = self.home / "settings"
        for name, value in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(value))
        port = _free_port()
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
                   "--ServerApp.password=", f"--ServerApp.root_dir={self.root}",
                   f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
                   "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.log_path, "w")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        log.close()

        def up():
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/api/status", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(up, timeout, "JupyterLab to answer")
        return self

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # JupyterLab shuts its kernels down on SIGTERM
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def sessions(self, notebook_path: str | None = None) -> list[dict]:
        sessions = self.get("/api/sessions")
        return [s for s in sessions if notebook_path is None or s.get("path") == notebook_path]

    def delete(self, path: str, xsrf: str) -> None:
        """A DELETE on the REST API: needs the `_xsrf` cookie of the browser, and the same value as header."""
        request = urllib.request.Request(self.url + path, method="DELETE",
                                         headers={"X-XSRFToken": xsrf, "Cookie": f"_xsrf={xsrf}"})
        with urllib.request.urlopen(request, timeout=30):
            pass


class Lab:
    """Headless Chromium on a JupyterLab server (selenium)."""

    def __init__(self, server: JupyterLab, chromium: str, chromedriver: str, artifacts: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.server = server
        self.artifacts = Path(artifacts)
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--no-first-run", "--no-default-browser-check", "--mute-audio",
                         "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1000",
                         f"--user-data-dir={server.home / 'chromium-profile'}"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # The driver's path given explicitly: Selenium Manager (which would download one) never runs.
        service = Service(executable_path=chromedriver, log_output=str(server.home / "chromedriver.log"))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_script_timeout(60)
        self.console: list[dict] = []
        self.path = ""

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.quit()

    # ---------------------------------------------------------------------------------------- pages
    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def open(self, path: str, workspace: str, timeout: float = 120) -> None:
        """Open the notebook at ``path`` (relative to the server's root) in a fresh tab and workspace, and
        wait until it is shown with its kernel idle."""
        self._fresh_tab()
        self.path = path
        self.drain_console()
        self.console = []  # console_errors() reads this page's
        url = f"{self.server.url}/lab/workspaces/{workspace}/tree/{urllib.parse.quote(path)}"
        self.driver.get(url)
        wait_for(lambda: self.js("return document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length"),
                 timeout, f"{path} to show its cells")
        wait_for(lambda: self.kernel_state() == "idle", timeout, f"the kernel of {path} to start")

    def _fresh_tab(self) -> None:
        """Close the current tab, with a new one open: leaving a page by loading another would make
        JupyterLab ask about unsaved changes (headless Chromium blocks that question, with a console
        error). WebDriver closes a window without asking; the tests never save what they ran."""
        if self.driver.current_url in ("about:blank", "data:,"):
            return
        old = self.driver.current_window_handle
        self.driver.switch_to.new_window("tab")
        new = self.driver.current_window_handle
        self.driver.switch_to.window(old)
        self.driver.close()
        self.driver.switch_to.window(new)

    def close(self, timeout: float = 60) -> None:
        """Shut the notebook's kernel down (each holds torch in memory), through the REST API with the
        browser's `_xsrf` cookie, and wait until its session is gone."""
        cookie = self.driver.get_cookie("_xsrf")
        assert cookie, "JupyterLab set no _xsrf cookie"
        for session in self.server.sessions(self.path):
            self.server.delete(f"/api/sessions/{session['id']}", cookie["value"])
        wait_for(lambda: not self.server.sessions(self.path), timeout, f"the kernel of {self.path} to shut down")

    @contextlib.contextmanager
    def notebook(self, path: str, workspace: str, artifacts: str):
        """Open a notebook; on a failure inside, save a screenshot (and the page text) and name them in
        the error; in any case shut its kernel down at the end."""
        with self.notebook_failures(artifacts):
            self.open(path, workspace)
            yield

    @contextlib.contextmanager
    def notebook_failures(self, artifacts: str):
        """For notebooks opened inside: on a failure, save a screenshot (and the page text) and name them
        in the error; in any case shut the kernel of the notebook open last down at the end."""
        try:
            yield
        except BaseException as error:
            saved = self.screenshot(artifacts)
            with contextlib.suppress(Exception):
                self.close()
            if saved and isinstance(error, (AssertionError, TimeoutError)):
                raise type(error)(f"{error}\nartifacts: {', '.join(map(str, saved))}") from error
            raise
        self.close()

    def kernel_state(self) -> str | None:
        sessions = self.server.sessions(self.path)
        return sessions[0]["kernel"]["execution_state"] if sessions and sessions[0].get("kernel") else None

    def text(self) -> str:
        return self.js("return document.body.innerText")

    def screenshot(self, name: str) -> list[Path]:
        """Screenshot (where the test was, e.g. at the widget it operated), page text and server log of the
        moment, under the artifacts folder."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        saved = []
        with contextlib.suppress(Exception):
            png = self.artifacts / f"{name}.png"
            self.driver.save_screenshot(str(png))
            saved.append(png)
        with contextlib.suppress(Exception):
            page = self.artifacts / f"{name}.txt"
            page.write_text(self.text(), encoding="utf-8")
            saved.append(page)
        with contextlib.suppress(Exception):
            log = self.artifacts / f"{name}.jupyterlab.log"
            log.write_text(self.server.log_tail(400), encoding="utf-8")
            saved.append(log)
        return saved

    # ---------------------------------------------------------------------------------------- running
    def run_all(self) -> None:
        """Run → Run All Cells, from the menu bar, as a learner does."""
        from selenium.webdriver.common.by import By

        menu = wait_for(lambda: next(e for e in self.driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
                                     if e.text.strip() == "Run"), 30, "the Run menu")
        menu.click()
        item = wait_for(lambda: self.driver.find_element(By.CSS_SELECTOR, 'li.lm-Menu-item[data-command="runmenu:run-all"]'),
                        30, "Run All Cells in the Run menu")
        item.click()
        # Started: some code cell is queued or running ([*]) or done.
        wait_for(lambda: any(p != "[ ]:" for p in self.prompts()) or self.kernel_state() == "busy", 60,
                 "the run to start")

    def prompts(self) -> list[str]:
        return self.js("return [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]"
                       ".map(p => p.innerText.trim())")

    def wait_until_done(self, timeout: float, on_poll: Callable[[], None] | None = None) -> None:
        """Until no prompt shows [*] and the kernel is idle twice in a row; a Python error stops the wait."""
        idle_polls = 0

        def done():
            nonlocal idle_polls
            if on_poll:
                on_poll()
            errors = self.python_errors()
            if errors:
                raise AssertionError(f"a cell of {self.path} failed:\n{errors[0][:3000]}")
            running = any("*" in p for p in self.prompts())
            idle_polls = idle_polls + 1 if not running and self.kernel_state() == "idle" else 0
            return idle_polls >= 2

        wait_for(done, timeout, f"{self.path} to finish running", interval=0.5)
        unrun = [i for i, p in enumerate(self.prompts()) if not any(ch.isdigit() for ch in p)]
        assert not unrun, f"code cells {unrun} of {self.path} did not run: prompts {self.prompts()}"

    # ---------------------------------------------------------------------------------------- reading
    def cell(self, needle: str):
        """The cell whose source contains ``needle`` (a WebElement)."""
        script = ("return [...document.querySelectorAll('.jp-Notebook .jp-Cell')].find("
                  "c => (c.querySelector('.jp-InputArea-editor')?.innerText || '').includes(arguments[0]))")
        return wait_for(lambda: self.js(script, needle), 30, f"the cell with {needle!r}")

    def widget(self, cell, selector: str = ".widget-vbox", timeout: float = 60):
        """The first widget view matching ``selector`` in the outputs of ``cell``, once rendered."""
        return wait_for(lambda: self.js("return arguments[0].querySelector('.jp-OutputArea ' + arguments[1])",
                                        cell, selector), timeout, f"a rendered {selector} widget")

    def python_errors(self) -> list[str]:
        """Texts of the outputs that show a Python error (a traceback)."""
        return self.js("return [...document.querySelectorAll('.jp-OutputArea-output')]"
                       ".map(o => o.innerText).filter(t => t.includes('Traceback (most recent call last)'))")

    def drain_console(self) -> list[dict]:
        entries = self.driver.get_log("browser")
        self.console += entries
        return entries

    def console_errors(self) -> list[str]:
        """Console errors since the notebook was opened, except the allowed ones."""
        self.drain_console()
        return [e["message"] for e in self.console if e.get("level") == "SEVERE"
                and not any(allowed in e.get("message", "") for allowed in ALLOWED_CONSOLE_ERRORS)]

    def audio_states(self, root=None) -> list[dict]:
        """readyState, duration and source of every <audio> element (of ``root``, else of the page)."""
        return self.js("""
            const root = arguments[0] || document;
            return [...root.querySelectorAll('audio')].map(a => ({
                ready: a.readyState, duration: a.duration, error: a.error ? a.error.code : null,
                src: (a.currentSrc || a.src || (a.querySelector('source') || {}).src || '').slice(0, 80)}));
        """, root)

    def wait_playable(self, root=None, count: int = 1, timeout: float = 60) -> list[dict]:
        """Until ``root`` holds at least ``count`` audio players, each with its metadata loaded and a
        duration > 0 (a stripped or empty player never gets there)."""
        def playable():
            states = self.audio_states(root)
            ok = len(states) >= count and all(s["ready"] >= 1 and s["duration"] and s["duration"] > 0
                                              and s["error"] is None for s in states)
            return states if ok else None

        try:
            return wait_for(playable, timeout, f"{count} playable audio player(s)")
        except TimeoutError as error:
            raise AssertionError(f"{error}: {self.audio_states(root)}") from None

    def play(self, audio) -> float:
        """Play an <audio> element until its time advances; returns the time reached (s)."""
        result = self.driver.execute_async_script("""
            const [audio, done] = arguments;
            audio.currentTime = 0;
            audio.play().then(() => {
                const t0 = performance.now();
                const check = () => audio.currentTime > 0.05 ? (audio.pause(), done(audio.currentTime))
                    : performance.now() - t0 > 20000 ? done(-1) : setTimeout(check, 50);
                check();
            }, e => done('play() refused: ' + e));
        """, audio)
        assert isinstance(result, (int, float)) and result > 0, f"the player did not play: {result}"
        return float(result)
