"""Real headless Chromium for tests, driven over the DevTools protocol on loopback: a page is loaded, its console
errors and uncaught exceptions collected, expressions evaluated in it and screenshots taken. The websocket client
is a minimal one of our own (text frames, client-masked, as RFC 6455 asks), so no browser download and no extra
package is needed: Debian's `chromium` is enough."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class WebSocket:
    """A blocking websocket client: enough of RFC 6455 for the DevTools protocol (text frames, pings answered)."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        parsed = urlparse(url)
        self.sock = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parsed.path} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the browser closed the websocket during its handshake")
            response += chunk
        head, self._buffer = response.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"no websocket upgrade: {head[:200]!r}")

    def _frame(self) -> tuple[int, bytes] | None:
        """The first whole frame in the buffer (its first byte and payload), taken out of it; None if incomplete."""
        if len(self._buffer) < 2:
            return None
        length, offset = self._buffer[1] & 0x7F, 2
        if length == 126:
            if len(self._buffer) < 4:
                return None
            length, offset = struct.unpack(">H", self._buffer[2:4])[0], 4
        elif length == 127:
            if len(self._buffer) < 10:
                return None
            length, offset = struct.unpack(">Q", self._buffer[2:10])[0], 10
        if len(self._buffer) < offset + length:
            return None
        first, payload = self._buffer[0], self._buffer[offset : offset + length]
        self._buffer = self._buffer[offset + length :]
        return first, payload

    def send(self, text: str) -> None:
        payload = text.encode()
        header = bytearray([0x81])
        if len(payload) < 126:
            header.append(0x80 | len(payload))
        elif len(payload) < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(payload))
        mask = os.urandom(4)
        self.sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self) -> str:
        """The next text message. A socket time-out leaves the buffer whole, so a later call carries on."""
        message = b""
        while True:
            frame = self._frame()
            if frame is None:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("the browser closed the websocket")
                self._buffer += chunk
                continue
            first, payload = frame
            opcode = first & 0x0F
            if opcode == 0x9:  # ping: answer it and keep reading
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("the browser closed the websocket")
            message += payload
            if first & 0x80:
                return message.decode()

    def close(self) -> None:
        self.sock.close()


class Page:
    """One browser tab: navigate, evaluate, screenshot; console errors and exceptions are kept in `errors`."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.errors: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._note(message)

    def _note(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        self.events.append(message)
        if method == "Runtime.exceptionThrown":
            self.errors.append(f"exception: {json.dumps(params.get('exceptionDetails', {}))[:500]}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(f"console.{params.get('type')}: {json.dumps(params.get('args', []))[:500]}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}")

    def pump(self, seconds: float) -> None:
        """Take in the browser's events for `seconds` (console messages arrive on their own)."""
        deadline = time.monotonic() + seconds
        self.ws.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    self._note(json.loads(self.ws.receive()))
                except TimeoutError:
                    continue
        finally:
            self.ws.sock.settimeout(30)

    def goto(self, url: str, timeout: float = 30) -> None:
        """Load `url` and wait for its load event (and a moment for deferred scripts and their errors)."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(m.get("method") == "Page.loadEventFired" for m in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load in {timeout} s")
            self.pump(0.2)
        self.pump(0.5)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        """Evaluate `expression` until it is truthy (its value), or fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            self.pump(0.25)
        raise TimeoutError(f"{expression} stayed false for {timeout} s")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextmanager
def chromium(profile: Path, width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A headless Chromium on a loopback DevTools port (its own profile in `profile`) and one page in it."""
    binary = chromium_path()
    assert binary is not None, "chromium is not installed"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a stale one names a port no browser listens on
    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools server")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        target = next(t for t in targets if t.get("type") == "page")
        ws = WebSocket(target["webSocketDebuggerUrl"])
        try:
            page = Page(ws)
            page.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
            yield page
        finally:
            ws.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
