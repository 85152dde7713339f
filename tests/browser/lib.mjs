// Shared helpers of the browser tests: a dev stack on a free loopback port with a fresh data
// folder, Chromium through playwright-core, and `visit()`, which checks the current page at a
// desktop and a phone width (full-page screenshot, no horizontal scroll, no serious or
// critical axe-core violation).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axe = require('axe-core');

/** The repository's root (holds store.toml). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TARGET = process.env.CARGO_TARGET_DIR
  ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR)
  : path.join(ROOT, 'target');
/** Where `visit()` saves its screenshots. */
export const SHOTS = path.join(TARGET, 'browser');
const NIGHTSHIFT = process.env.NIGHTSHIFT_BIN || path.join(TARGET, 'debug', 'nightshift');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const APPROVE = '4242 4242 4242 4242';
export const DECLINE = '4000 0000 0000 0002';
/** The widths every page is checked at: a desktop and a phone. */
export const WIDTHS = [1280, 390];
const HEIGHT = 800;

/** A card expiry (MM/YY) two years from now. */
export function futureExpiry() {
  const now = new Date();
  const month = String(now.getMonth() + 1).padStart(2, '0');
  const year = String((now.getFullYear() + 2) % 100).padStart(2, '0');
  return `${month}/${year}`;
}

/** A loopback port nobody listens on right now. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

const running = new Set();
// A test process that dies without running its `after` hook still takes its stacks along.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    for (const child of running) child.kill('SIGKILL');
    process.exit(128 + os.constants.signals[signal]);
  });
}

/**
 * Starts `nightshift dev` from the repository root on a free loopback port with a fresh
 * data folder and the sample store.toml. Resolves once it announced its URL and answers
 * HTTP. `stop()` ends it and removes the data folder.
 */
export async function startStack() {
  if (!fs.existsSync(NIGHTSHIFT)) {
    throw new Error(`${NIGHTSHIFT} is missing: run \`cargo build --locked -p nightshift\` first`);
  }
  let lastError;
  // Another process may take the free port between our probe and the stack's bind: try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nightshift-browser-'));
    try {
      return await spawnStack(await freePort(), dataDir);
    } catch (error) {
      fs.rmSync(dataDir, { recursive: true, force: true });
      lastError = error;
    }
  }
  throw lastError;
}

async function spawnStack(port, dataDir) {
  const child = spawn(
    NIGHTSHIFT,
    ['dev', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--config', 'store.toml'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  let log = '';
  const keep = (chunk) => {
    log += chunk;
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = once(child, 'exit');

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };

  // Ready: the stack printed "… on http://127.0.0.1:<port>" and answers a request.
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`nightshift dev exited (${child.exitCode ?? child.signalCode}):\n${log}`);
      }
      if (log.includes(` on ${base}`)) {
        try {
          const response = await fetch(`${base}/dev/outbox.json`);
          if (response.ok) break;
        } catch {
          // not listening yet
        }
      }
      if (Date.now() > deadline) throw new Error(`nightshift dev did not start in 30 s:\n${log}`);
      await sleep(50);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  // The first lines of the stack's error log entries, to explain a 500.
  const errors = () =>
    log
      .split('\n')
      .filter((line) => / ERROR /.test(line))
      .map((line) => `    ${line.slice(0, 300)}`)
      .slice(-5)
      .join('\n');
  return { base, dataDir, url: (p) => `${base}${p}`, log: () => log, errors, stop };
}

/** Chromium from the system (playwright cannot download its own browsers here). */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A dev stack and a browser for one test file. Call in `before`; call `stop()` in `after`
 * (it stops both, whatever failed).
 */
export async function setUp() {
  const stack = await startStack();
  let browser;
  try {
    browser = await launchBrowser();
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return {
    stack,
    browser,
    /** A fresh browser context's page at the desktop width, reaching only the dev stack. */
    async newPage() {
      const context = await browser.newContext({
        viewport: { width: WIDTHS[0], height: HEIGHT },
        acceptDownloads: true,
      });
      context.setDefaultTimeout(15_000);
      // Hermetic: nothing but the dev stack (the sample store's logo lives on example.com).
      await context.route('**/*', (route) => {
        const { hostname } = new URL(route.request().url());
        return hostname === '127.0.0.1' ? route.continue() : route.abort('blockedbyclient');
      });
      return context.newPage();
    },
    async stop() {
      const results = await Promise.allSettled([browser.close(), stack.stop()]);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

/**
 * Checks the current page at each of `WIDTHS`: saves a full-page screenshot to
 * `target/browser/<name>-<width>.png`, asserts that the page does not scroll sideways, and
 * runs axe-core, asserting no violation of impact `serious` or `critical`. Every width is
 * checked before it throws one error listing all problems. Leaves the viewport at the
 * desktop width.
 */
export async function visit(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const original = page.viewportSize();
  const problems = [];
  try {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: HEIGHT });
      await settle(page);
      const file = path.join(SHOTS, `${name}-${width}.png`);
      await page.screenshot({ path: file, fullPage: true });

      const overflow = await page.evaluate(horizontalOverflow);
      if (overflow.scrollWidth > overflow.clientWidth) {
        problems.push(
          `${name} at ${width} px scrolls sideways: document.documentElement.scrollWidth ` +
            `${overflow.scrollWidth} > clientWidth ${overflow.clientWidth} ` +
            `(${overflow.scrollWidth - overflow.clientWidth} px too wide)` +
            (overflow.culprits.length
              ? `; elements reaching past the right edge:\n${overflow.culprits
                  .map((c) => `    ${c}`)
                  .join('\n')}`
              : ''),
        );
      }

      const violations = (await runAxe(page)).filter(
        (v) => v.impact === 'serious' || v.impact === 'critical',
      );
      if (violations.length) {
        problems.push(
          `${name} at ${width} px has ${violations.length} serious/critical axe violation(s):\n` +
            violations.map(describeViolation).join('\n'),
        );
      }
    }
  } finally {
    if (original) await page.setViewportSize(original);
  }
  if (problems.length) {
    const error = new Error(`${problems.join('\n')}\n  (screenshots: ${SHOTS}/${name}-*.png)`);
    error.name = 'PageCheckError';
    throw error;
  }
}

async function settle(page) {
  await page.waitForLoadState('load');
  // Two frames, so layout reflects the new viewport before we measure.
  await page.evaluate(
    () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))),
  );
}

// Runs in the page: the document's widths, and the outermost-but-deepest elements whose box
// ends past the viewport's right edge (what makes it scroll).
function horizontalOverflow() {
  const root = document.documentElement;
  const limit = root.clientWidth;
  const describe = (el) => {
    const r = el.getBoundingClientRect();
    let label = el.tagName.toLowerCase();
    if (el.id) label += `#${el.id}`;
    if (el.classList.length) label += `.${[...el.classList].join('.')}`;
    const chain = [];
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      chain.unshift(p.tagName.toLowerCase() + (p.classList.length ? `.${[...p.classList].join('.')}` : ''));
    }
    const text = (el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60);
    return `${[...chain, label].join(' > ')} right edge ${Math.round(r.right)} px, width ${Math.round(r.width)} px${text ? ` "${text}"` : ''}`;
  };
  const all = [...document.body.querySelectorAll('*')];
  // Elements wider than their parent's content box: what breaks out of the layout.
  const breaking = all.filter((el) => {
    const parent = el.parentElement;
    if (!parent || parent === document.documentElement) return false;
    const style = getComputedStyle(parent);
    const inner =
      parent.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return parent.clientWidth > 0 && el.getBoundingClientRect().width > inner + 0.5;
  });
  const past = all.filter((el) => el.getBoundingClientRect().right > limit + 0.5);
  // The innermost ones past the edge: an element whose children also overflow is explained by them.
  const innermost = past.filter((el) => !past.some((other) => other !== el && el.contains(other)));
  const widthOfParent = (el) => {
    const style = getComputedStyle(el.parentElement);
    return Math.round(
      el.parentElement.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
    );
  };
  return {
    scrollWidth: root.scrollWidth,
    clientWidth: limit,
    culprits: [
      ...breaking
        .slice(0, 6)
        .map((el) => `wider than its parent's ${widthOfParent(el)} px content box: ${describe(el)}`),
      ...innermost.slice(0, 6).map((el) => `past the right edge: ${describe(el)}`),
    ],
  };
}

async function runAxe(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
    await page.evaluate(axe.source);
  }
  const results = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ['violations'] }),
  );
  return results.violations;
}

function describeViolation(v) {
  const nodes = v.nodes
    .map(
      (n) =>
        `      - ${n.target.join(' ')}: ${n.html}\n` +
        (n.failureSummary || '')
          .split('\n')
          .map((line) => `          ${line}`)
          .join('\n'),
    )
    .join('\n');
  return `  [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n${nodes}`;
}

/** `visit()` as its own subtest, so a failing page check is reported and the flow goes on. */
export function checkPage(t, page, name) {
  return t.test(`page ${name}`, () => visit(page, name));
}

/** Polls `fn` until it returns a truthy value (up to `timeout` ms); returns that value. */
export async function waitFor(what, fn, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await sleep(100);
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** The order token of an order page's URL. */
export function tokenOf(page) {
  const match = new URL(page.url()).pathname.match(/^\/orders\/([^/.]+)$/);
  if (!match) throw new Error(`not on an order page: ${page.url()}`);
  return match[1];
}

/** The order's JSON (`/orders/{token}.json`). */
export async function orderJson(stack, token) {
  const response = await fetch(stack.url(`/orders/${token}.json`));
  if (!response.ok) throw new Error(`order json answered ${response.status}`);
  return response.json();
}

/** The mails sent to `email` (polls `/dev/outbox.json` until there is at least one). */
export async function mailsTo(stack, email) {
  return waitFor(`a mail to ${email} in the outbox`, async () => {
    const mails = await (await fetch(stack.url('/dev/outbox.json'))).json();
    const mine = mails.filter((m) => (m.to || []).some((to) => to.includes(email)));
    return mine.length ? mine : null;
  });
}

let buyers = 0;
/** A buyer email unique to this run. */
export function buyerEmail(label) {
  buyers += 1;
  return `${label}-${process.pid}-${buyers}@example.com`;
}

/** A shipping address in Germany (where the sample store ships). */
export const ADDRESS = {
  recipient: 'Ann Lee',
  street: 'Hauptstr. 1',
  postalCode: '10115',
  city: 'Berlin',
  country: 'DE',
  countryName: 'Germany',
};

/**
 * Opens `/buy/{sku}` and checks it answered 200 with a heading. Returns the response.
 */
export async function openBuyPage(page, stack, sku) {
  const response = await page.goto(stack.url(`/buy/${sku}`));
  if (response.status() !== 200) {
    throw new Error(
      `/buy/${sku} answered ${response.status()}: ${(await response.text()).slice(0, 300)}` +
        (stack.errors() ? `\n  the dev stack logged:\n${stack.errors()}` : ''),
    );
  }
  await page.getByRole('heading', { level: 1 }).waitFor();
  return response;
}

/**
 * Fills the buy page's form by its labels and presses the buy button. `address` fills the
 * shipping address; `bankTransfer` picks the "Bank transfer" payment radio.
 */
export async function fillAndBuy(page, { email, name, address, bankTransfer = false }) {
  await page.getByLabel(/^\s*e-?mail/i).fill(email);
  await page.getByLabel(/^\s*(your |full )?name\b/i).fill(name);
  if (address) {
    await page.getByLabel(/recipient/i).fill(address.recipient);
    await page.getByLabel(/street/i).fill(address.street);
    await page.getByLabel(/postal code|postcode|zip/i).fill(address.postalCode);
    await page.getByLabel(/city|town/i).fill(address.city);
    const country = page.getByLabel(/country/i);
    if ((await country.evaluate((el) => el.tagName)) === 'SELECT') {
      const byName = await country
        .getByRole('option', { name: address.countryName, exact: true })
        .count();
      await country.selectOption(byName ? { label: address.countryName } : { value: address.country });
    } else {
      await country.fill(address.country);
    }
  }
  if (bankTransfer) await page.getByRole('radio', { name: /bank transfer/i }).check();
  // The form's submit button ("Buy now", "Continue to payment", …).
  await page.getByRole('button', { name: /^\s*(buy\b|continue|pay\b|place order|check ?out)/i }).click();
}

/** Waits for testpay's card page. */
export async function onTestpay(page) {
  await page.waitForURL(/\/testpay\/sessions\//);
  await page.getByLabel(/card number/i).waitFor();
}

/** Pays on testpay's card page with `card`; resolves on the order page it returns to. */
export async function payOnTestpay(page, card) {
  await onTestpay(page);
  await page.getByLabel(/card number/i).fill(card);
  await page.getByLabel(/expiry|expiration/i).fill(futureExpiry());
  await page.getByLabel(/cvc|cvv|security code/i).fill('123');
  await page.getByRole('button', { name: /^\s*pay\b/i }).click();
  await page.waitForURL(/\/orders\/[^/.]+$/);
}

/** A link (by role) whose href is exactly `href`. */
export function linkTo(page, href) {
  return page.getByRole('link').and(page.locator(`[href="${CSS.escape(href)}"]`));
}

// A minimal CSS.escape for attribute values in double quotes.
const CSS = { escape: (s) => s.replace(/["\\]/g, '\\$&') };

/** Waits until `locator`'s first match is visible; `what` names it in the error. */
export async function expectVisible(locator, what, timeout = 15_000) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch (error) {
    throw new Error(`${what} is not visible: ${error.message.split('\n')[0]}`);
  }
}

/** The page's visible text with all whitespace removed (for IBANs and the like). */
export async function compactText(page) {
  return (await page.locator('body').innerText()).replace(/\s+/g, '');
}
