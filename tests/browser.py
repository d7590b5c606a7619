"""Open a Snakemake HTML report from disk in a real headless Chromium (Debian's
``chromium-headless-shell`` or ``chromium``; ``make test`` installs the first when run as root
with apt), driven over the DevTools protocol on a pipe (no network port, no extra package):
a screenshot of the page as a reader first sees it, the script errors it raised, and what a
probe run inside the page found (every embedded result fetched, every image decoded, the links
of the rendered page).
"""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["check_report", "chromium"]

_BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")

# Evaluated in the page: fetches every result of the report (Snakemake's global ``results``:
# {path: {mime_type, data_uri, caption, ...}}), decodes the images, lists the rendered links.
_PROBE = """(async () => {
  const found = {results: {}, links: [], app_text: document.getElementById("app").innerText};
  for (const [path, r] of Object.entries(results)) {
    const one = {mime: r.mime_type, caption: (r.caption || "").length, bytes: 0, size: null};
    try { one.bytes = (await (await fetch(r.data_uri)).arrayBuffer()).byteLength; }
    catch (e) { one.error = String(e); }
    if (r.mime_type.startsWith("image/")) {
      const img = new Image();
      img.src = r.data_uri;
      try { await img.decode(); one.size = [img.naturalWidth, img.naturalHeight]; }
      catch (e) { one.error = String(e); }
    }
    found.results[path] = one;
  }
  for (const e of document.querySelectorAll("a[href], img[src], link[href], script[src]")) {
    found.links.push(e.getAttribute("href") || e.getAttribute("src"));
  }
  return found;
})()"""


def chromium() -> str:
    """Path of a Chromium binary, or skip the test naming the package to install."""
    for name in _BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium here (apt-get install chromium-headless-shell; make test does it)")


class _DevTools:
    """A headless Chromium driven over --remote-debugging-pipe (fd 3: commands in, fd 4:
    replies and events out, NUL-terminated JSON)."""

    def __init__(self, browser: str):
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()

        def pipes() -> None:  # in the child: the pipe ends become fds 3 and 4
            read, write = os.dup(commands_r), os.dup(replies_w)  # above 4: safe to move
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=pipes, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(commands_r)
        os.close(replies_w)
        self._buffer, self._id, self.events = b"", 0, []

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._replies, 1 << 20)
            assert chunk, "Chromium closed the DevTools pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """The result of one command (events that arrive meanwhile go to ``events``)."""
        self._id += 1
        command = {"id": self._id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._commands, json.dumps(command).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self._id:
                assert "error" not in message, (method, message["error"])
                return message["result"]
            self.events.append(message)

    def wait_for(self, method: str) -> dict:
        while True:
            for k, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(k)
            self.events.append(self._message())

    def close(self) -> None:
        try:
            self.send("Browser.close")
        finally:
            self.process.wait(timeout=30)
            os.close(self._commands)
            os.close(self._replies)


def check_report(report: Path, screenshot: Path, width: int = 1400, height: int = 1000) -> dict:
    """Open ``report`` from disk, wait for its load event, run the probe, screenshot the page
    (``width`` x ``height`` pixels, PNG) and return {results: {path: {mime, bytes, size (image
    pixels or None), caption (characters), error?}}, links, app_text, errors (uncaught script
    exceptions)}."""
    browser = _DevTools(chromium())
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)
        session = session["sessionId"]
        for domain in ("Page.enable", "Runtime.enable"):
            browser.send(domain, session)
        browser.send("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                     deviceScaleFactor=1, mobile=False)  # fmt: skip
        browser.send("Page.navigate", session, url=report.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        found = browser.send("Runtime.evaluate", session, expression=_PROBE, awaitPromise=True,
                             returnByValue=True)["result"]["value"]  # fmt: skip
        image = browser.send("Page.captureScreenshot", session, format="png")["data"]
        screenshot.write_bytes(base64.b64decode(image))
        found["errors"] = [
            e["params"]["exceptionDetails"].get("text", "")
            + str(e["params"]["exceptionDetails"].get("exception", {}).get("description", ""))
            for e in browser.events
            if e.get("method") == "Runtime.exceptionThrown"
        ]
    finally:
        browser.close()
    return found
