// Paying other ways: a declined card, then "Try again" with a good one; and a bank transfer,
// whose order page shows the bank details and the payment reference.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  APPROVE,
  DECLINE,
  buyerEmail,
  checkPage,
  compactText,
  expectVisible,
  fillAndBuy,
  mailsTo,
  onTestpay,
  openBuyPage,
  orderJson,
  payOnTestpay,
  setUp,
  tokenOf,
  waitFor,
} from './lib.mjs';

let env;
before(async () => {
  env = await setUp();
});
after(async () => {
  await env?.stop();
});

test('a declined card, then "Try again" with a card that is approved', { timeout: 90_000 }, async (t) => {
  const { stack } = env;
  const page = await env.newPage();
  try {
    const email = buyerEmail('declined');
    await openBuyPage(page, stack, 'rust-course');
    await fillAndBuy(page, { email, name: 'Ann Lee' });
    await payOnTestpay(page, DECLINE);
    const token = tokenOf(page);

    const tryAgain = page.getByRole('link', { name: /try again/i });
    await expectVisible(tryAgain, 'the "Try again" link of the declined order');
    assert.equal((await orderJson(stack, token)).state, 'declined');
    await checkPage(t, page, 'order-declined');

    await tryAgain.click();
    await onTestpay(page);
    await checkPage(t, page, 'testpay-retry');
    await payOnTestpay(page, APPROVE);
    assert.equal(tokenOf(page), token, 'the retry returns to the same order');

    const order = await waitFor('the retried order to be fulfilled', async () => {
      const o = await orderJson(stack, token);
      return o.status === 'fulfilled' ? o : null;
    });
    const { username, password } = order.lines[0].access;
    await expectVisible(page.getByText(username, { exact: true }), 'the username after the retry');
    await expectVisible(page.getByText(password, { exact: true }), 'the password after the retry');
    assert.equal(
      await page.getByRole('link', { name: /try again/i }).count(),
      0,
      'a paid order still offers "Try again"',
    );
    await checkPage(t, page, 'order-retried');

    const mails = await mailsTo(stack, email);
    assert.ok(mails.some((m) => m.text.includes(password)), 'the buyer was mailed the login');
  } finally {
    await page.context().close();
  }
});

test('a bank transfer shows the IBAN and the payment reference', { timeout: 90_000 }, async (t) => {
  const { stack } = env;
  const page = await env.newPage();
  try {
    const email = buyerEmail('transfer');
    await openBuyPage(page, stack, 'ferrite-pro');
    await fillAndBuy(page, { email, name: 'Ann Lee', bankTransfer: true });
    // No gateway: straight to the order page.
    await page.waitForURL(/\/orders\/[^/.]+$/);
    const token = tokenOf(page);

    await expectVisible(page.getByText(/IBAN/), 'the IBAN label');
    await waitFor('the IBAN on the order page', async () =>
      (await compactText(page)).includes('DE89370400440532013000'),
    );
    const reference = (await page.locator('body').innerText()).match(/\bNS[-A-Z0-9]{4,}\b/)?.[0];
    assert.ok(reference, 'the order page shows a payment reference starting with NS');
    const order = await orderJson(stack, token);
    assert.equal(order.state, 'awaiting_transfer');
    assert.equal(order.status, 'awaiting_transfer');
    await checkPage(t, page, 'order-transfer');

    const mails = await mailsTo(stack, email);
    assert.ok(
      mails.some((m) => m.text.replace(/\s+/g, '').includes(reference)),
      `the buyer was mailed the reference ${reference}`,
    );
  } finally {
    await page.context().close();
  }
});
