/**
 * A real headless browser for page tests: Debian's Chromium (/usr/bin/chromium, installed by .ci/run;
 * CHROMIUM_PATH overrides) driven by playwright-core, which never downloads a browser of its own.
 * Launched with autoplay allowed and audio muted, closed by the test context's `after`.
 */
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export async function launchBrowser(t: { after: (fn: () => Promise<void>) => void }): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
  });
  t.after(async () => {
    await browser.close().catch(() => undefined);
  });
  return browser;
}
