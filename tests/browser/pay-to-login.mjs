// Prints how long a buyer waits in a real browser from pressing "Pay" on testpay's card page
// to the login details on the order page, over several purchases on a dev stack of its own.
// A figure, not a test: `node tests/browser/pay-to-login.mjs [purchases]` (after `make browser`
// has installed Chromium and the npm packages and built the binary).

import { APPROVE, buyerEmail, fillAndBuy, futureExpiry, onTestpay, openBuyPage, setUp } from './lib.mjs';

const purchases = Number(process.argv[2] ?? 10);
const env = await setUp();
const waits = [];
try {
  for (let i = 0; i < purchases; i++) {
    const page = await env.newPage();
    await openBuyPage(page, env.stack, 'rust-course');
    await fillAndBuy(page, { email: buyerEmail('timing'), name: 'Ann' });
    await onTestpay(page);
    await page.getByLabel(/card number/i).fill(APPROVE);
    await page.getByLabel(/expiry/i).fill(futureExpiry());
    await page.getByLabel(/cvc/i).fill('123');
    const started = performance.now();
    await page.getByRole('button', { name: /^\s*pay\b/i }).click();
    await page.getByText(/^Password:/).first().waitFor({ timeout: 30_000 });
    waits.push(performance.now() - started);
    await page.context().close();
  }
} finally {
  await env.stop();
}
waits.sort((a, b) => a - b);
const at = (p) => waits[Math.min(waits.length - 1, Math.floor((p / 100) * waits.length))];
console.log(
  `pay → login on screen, ${waits.length} purchases: p50 ${at(50).toFixed(0)} ms, ` +
    `p90 ${at(90).toFixed(0)} ms, max ${waits[waits.length - 1].toFixed(0)} ms`,
);
