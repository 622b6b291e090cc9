"""A real browser against the running server: headless Chromium loads `/`, starts a long job and
cancels it from the page once progress shows (its partial image lands in the gallery), then submits
a prompt, waits for the image, and checks that the gallery shows it with its settings; keeps a
screenshot.

    python web_page_test.py --url http://127.0.0.1:PORT [--screenshot out.png]
"""
import argparse
import re
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--screenshot")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--width", type=int, default=1100, help="window width (390 for a phone)")
    ap.add_argument("--height", type=int, default=1250)
    ap.add_argument("--api-key", help="the server's key: the page must say it needs one, then work once it is entered")
    args = ap.parse_args()

    opts = Options()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={args.width},{args.height}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=opts)
    try:
        driver.get(args.url + "/")
        wait = WebDriverWait(driver, 60)
        if args.api_key:
            wait.until(lambda d: d.find_element(By.ID, "model").text == "API key needed")
            driver.find_element(By.CSS_SELECTOR, "details summary").click()
            key = driver.find_element(By.ID, "apikey")
            key.send_keys(args.api_key)
            key.send_keys(Keys.TAB)  # change event: stored, capabilities reloaded with the key
        # Capabilities fill the model's defaults in.
        wait.until(lambda d: d.find_element(By.ID, "steps").get_attribute("value") != "")
        assert "model:" in driver.find_element(By.ID, "model").text, driver.find_element(By.ID, "model").text
        # A long job, cancelled from the page once the progress bar moves: the page says so and keeps
        # the partial image.
        driver.find_element(By.ID, "prompt").send_keys("a long job to cancel")
        steps = driver.find_element(By.ID, "steps")
        steps.clear()
        steps.send_keys("1000")
        driver.find_element(By.ID, "generate").click()
        # The first progress event is step 0 (the job started); wait for a real step.
        wait.until(lambda d: re.match(r"Step [1-9]", d.find_element(By.ID, "status").text))
        bar, top = driver.execute_script("const b = document.getElementById('bar'); return [b.value, b.max]")
        status = driver.find_element(By.ID, "status").text
        assert float(bar) > 0, f"progress bar at {bar!r} of {top!r} while the status shows {status!r}"
        assert "ETA" in driver.find_element(By.ID, "status").text, driver.find_element(By.ID, "status").text
        wait.until(lambda d: d.find_element(By.ID, "cancel").is_enabled())
        driver.find_element(By.ID, "cancel").click()
        wait.until(lambda d: d.find_element(By.ID, "status").text == "Cancelled.")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery .card img")) == 1)
        assert not driver.find_element(By.ID, "cancel").is_enabled(), "Cancel still enabled after the job ended"
        driver.find_element(By.ID, "prompt").clear()

        prompt = "a yellow circle in the bottom right corner on a black background"
        driver.find_element(By.ID, "prompt").send_keys(prompt)
        seed = driver.find_element(By.ID, "seed")
        seed.clear()
        seed.send_keys("42")
        steps = driver.find_element(By.ID, "steps")
        steps.clear()
        steps.send_keys("20")
        driver.find_element(By.ID, "generate").click()
        t0 = time.time()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery .card img")) == 2)
        card = driver.find_element(By.CSS_SELECTOR, "#gallery .card img")  # newest first
        status = driver.find_element(By.ID, "status").text
        assert status.startswith("Done: seed 42"), status
        src = card.get_attribute("src")
        assert src.startswith("data:image/png;base64,") and len(src) > 200, src[:80]
        meta = driver.find_element(By.CSS_SELECTOR, "#gallery .card .meta").text
        assert prompt in meta and "seed 42" in meta and "20 steps" in meta, meta
        # The image really rendered (natural size from the PNG).
        w = driver.execute_script("return arguments[0].naturalWidth", card)
        assert w > 0, w
        preview = driver.find_element(By.ID, "preview").get_attribute("src")
        assert preview.startswith("data:image/png;base64,"), preview[:40]
        # "Use settings" puts them back in the form.
        driver.find_element(By.ID, "prompt").clear()
        driver.find_element(By.CSS_SELECTOR, "#gallery .card .actions button").click()
        assert driver.find_element(By.ID, "prompt").get_attribute("value") == prompt
        # No horizontal scrolling at this width (phone-sized screens included).
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"page is {overflow}px wider than the window"
        if args.screenshot:
            driver.save_screenshot(args.screenshot)
        print(f"browser: image in the gallery after {time.time() - t0:.2f} s ({w}px), width {args.width}: ok")
    finally:
        driver.quit()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"browser test failed: {e}", file=sys.stderr)
        sys.exit(1)
