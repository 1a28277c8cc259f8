"""Opens the listening page in headless Chromium, so `make bench` knows it renders and every player plays.

    python bench/listen_check.py [--page bench/listen]

Serves the folder on localhost, waits until each <audio> has data to play (readyState >= 2) and its
play() resolves with time advancing, counts the spectrograms that decoded, and saves screenshot.png
beside the page. Skips (exit 0) when chromium or playwright is absent; fails when any player does not.
"""
from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"]
TIMEOUT_MS = 20000

# Per player: load, wait for data, play 300 ms, pause. Sequential, so one slow file cannot hide behind others.
PROBE = """async (timeout) => {
  const out = [];
  for (const a of document.querySelectorAll('audio')) {
    const r = {src: a.getAttribute('src'), loaded: false, played: false, error: null};
    try {
      a.preload = 'auto';
      if (a.readyState < 2) {
        await new Promise((ok, bad) => {
          a.addEventListener('canplay', ok, {once: true});
          a.addEventListener('error', () => bad(new Error('media error ' + (a.error && a.error.code))), {once: true});
          setTimeout(() => bad(new Error('no data after ' + timeout + ' ms')), timeout);
          a.load();
        });
      }
      r.loaded = a.readyState >= 2;
      await a.play();
      await new Promise(ok => setTimeout(ok, 300));
      r.played = !a.paused && a.currentTime > 0;
      a.pause();
    } catch (e) { r.error = String(e); }
    out.push(r);
  }
  const imgs = [...document.querySelectorAll('img')];
  return {players: out, images: imgs.length, imagesOk: imgs.filter(i => i.complete && i.naturalWidth > 0).length};
}"""


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without a log line per request (some hundred per check)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


def serve(folder: Path) -> ThreadingHTTPServer:
    """A localhost server of ``folder`` on a free port, in a daemon thread (file:// would hide HTTP faults)."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def probe(chromium: str, url: str, shot: Path) -> dict:
    """Load ``url`` in headless Chromium, screenshot it at 1280 x 2000, then probe every player."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True,
                                                        args=FLAGS, viewport={"width": 1280, "height": 2000})
        page = browser.new_page()
        page.goto(url, wait_until="load")
        page.screenshot(path=str(shot))
        result = page.evaluate(PROBE, TIMEOUT_MS)
        browser.close()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--page", type=Path, default=Path(__file__).resolve().parent / "listen")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("listen_check: skipped, no chromium on PATH (Debian: apt-get install chromium)")
        return 0
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("listen_check: skipped, playwright is not installed (pip install -e '.[bench]')")
        return 0
    if not (args.page / "index.html").is_file():
        print(f"listen_check: no {args.page / 'index.html'}: run bench/listen.py first")
        return 1
    server = serve(args.page)
    shot = args.page / "screenshot.png"
    try:
        r = probe(chromium, f"http://127.0.0.1:{server.server_port}/index.html", shot)
    finally:
        server.shutdown()
    players = r["players"]
    loaded, played = sum(p["loaded"] for p in players), sum(p["played"] for p in players)
    print(f"listen_check: {loaded}/{len(players)} players loaded, {played}/{len(players)} played, "
          f"{r['imagesOk']}/{r['images']} spectrograms shown; screenshot {shot}")
    for p in players:
        if not (p["loaded"] and p["played"]):
            print(f"  failed: {p['src']}: {p['error'] or 'no playback'}")
    return 0 if players and loaded == played == len(players) and r["imagesOk"] == r["images"] else 1


if __name__ == "__main__":
    sys.exit(main())
