// What a buyer sees when something is wrong, and the whole price before paying: every
// checkout refusal is the buy page again with what was typed, each message beside its field
// and a summary at the top; the browser catches what it can first; shipping and the total
// show for the chosen country before the gateway; other dead ends are pages in the store's
// look, while programs keep getting problem+json.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ADDRESS,
  APPROVE,
  buyerEmail,
  checkPage,
  expectVisible,
  fillAndBuy,
  onTestpay,
  openBuyPage,
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

/** Lets the form through as a browser without validation would send it. */
async function withoutBrowserChecks(page) {
  await page.evaluate(() => {
    document.getElementById('buy-form').noValidate = true;
    for (const input of document.querySelectorAll('input')) input.removeAttribute('maxlength');
  });
}

/** Submits the form and gives the answer to the POST. */
async function submit(page) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/checkout') && r.request().method() === 'POST'),
    page.getByRole('button', { name: /continue to payment/i }).click(),
  ]);
  await page.waitForLoadState();
  return response;
}

/** The message shown for a field: the element its `aria-describedby` names first. */
async function messageFor(page, id) {
  const field = page.locator(`#${id}`);
  assert.equal(await field.getAttribute('aria-invalid'), 'true', `#${id} is not marked invalid`);
  const described = (await field.getAttribute('aria-describedby')) ?? '';
  const errorId = described.split(/\s+/).find((d) => d.endsWith('-error'));
  assert.ok(errorId, `#${id} is not described by its error (aria-describedby="${described}")`);
  return (await page.locator(`#${errorId}`).innerText()).trim();
}

async function orderCount() {
  const mails = await (await fetch(env.stack.url('/dev/outbox.json'))).json();
  return mails.length;
}

test('a refused form comes back with what was typed and every message beside its field', { timeout: 60_000 }, async (t) => {
  const page = await env.newPage();
  try {
    await openBuyPage(page, env.stack, 'rust-book');
    const longName = 'Ann '.repeat(40).trim();
    await withoutBrowserChecks(page);
    await page.getByLabel('Email', { exact: true }).fill('ann@localhost');
    await page.getByLabel('Name', { exact: true }).fill(longName);
    await page.getByLabel('Recipient').fill('Ann Lee');
    await page.getByLabel('Street and number').fill('');
    await page.getByLabel('City').fill('Berlin');
    await page.getByLabel('Postal code').fill('10115');
    const response = await submit(page);
    assert.equal(response.status(), 400);
    assert.match(response.headers()['content-type'], /text\/html/);

    const summary = page.locator('#error-summary');
    await expectVisible(summary.getByRole('heading', { name: /check the form/i }), 'the error summary');
    assert.match(await messageFor(page, 'email'), /email address/i);
    assert.match(await messageFor(page, 'name'), /at most 100/i);
    assert.match(await messageFor(page, 'address_line1'), /street and number/i);
    // The summary links to each field, in the form's order.
    const links = await summary.getByRole('link').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.deepEqual(links, ['#email', '#name', '#address_line1']);
    // What was typed is still there.
    assert.equal(await page.getByLabel('Email', { exact: true }).inputValue(), 'ann@localhost');
    assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), longName);
    assert.equal(await page.getByLabel('City').inputValue(), 'Berlin');
    assert.equal(await page.getByLabel('Postal code').inputValue(), '10115');
    await checkPage(t, page, 'buy-refused');
  } finally {
    await page.context().close();
  }
});

test('the browser catches a bad email and over-long fields before sending', { timeout: 30_000 }, async () => {
  const page = await env.newPage();
  try {
    await openBuyPage(page, env.stack, 'rust-course');
    const email = page.getByLabel('Email', { exact: true });
    assert.equal(await email.getAttribute('type'), 'email');
    assert.equal(await page.getByLabel('Name', { exact: true }).getAttribute('maxlength'), '100');
    await email.fill('ann@localhost');
    await page.getByLabel('Name', { exact: true }).fill('Ann');
    await page.getByRole('button', { name: /continue to payment/i }).click();
    assert.equal(await email.evaluate((el) => el.validity.valid), false);
    assert.match(new URL(page.url()).pathname, /^\/buy\/rust-course$/);
  } finally {
    await page.context().close();
  }
});

test('a course is bought once per order: no quantity field, and more is refused on the page', { timeout: 30_000 }, async () => {
  const page = await env.newPage();
  try {
    await openBuyPage(page, env.stack, 'rust-course');
    assert.equal(await page.getByLabel('Quantity').count(), 0);
    await withoutBrowserChecks(page);
    await page.locator('input[name=quantity]').evaluate((el) => {
      el.value = '2';
    });
    await page.getByLabel('Email', { exact: true }).fill(buyerEmail('twice'));
    await page.getByLabel('Name', { exact: true }).fill('Ann');
    const before = await orderCount();
    const response = await submit(page);
    assert.equal(response.status(), 422);
    await expectVisible(page.locator('#error-summary').getByText(/bought once per order/i), 'the once-per-order message');
    assert.equal(await orderCount(), before);
  } finally {
    await page.context().close();
  }
});

test('shipping and the total show for the chosen country before paying, and on the card page', { timeout: 60_000 }, async (t) => {
  const page = await env.newPage();
  try {
    await openBuyPage(page, env.stack, 'rust-book');
    const country = page.getByLabel('Country');
    assert.ok(await country.getByRole('option', { name: 'Austria', exact: true }).count());
    await country.selectOption({ label: 'Austria' });
    assert.equal((await page.locator('#summary-shipping').innerText()).trim(), '€4.90');
    assert.equal((await page.locator('#summary-total').innerText()).trim(), '€34.80');
    await country.selectOption({ label: 'France' });
    await page.getByLabel('Quantity').fill('2');
    assert.equal((await page.locator('#summary-subtotal').innerText()).trim(), '€59.80');
    assert.equal((await page.locator('#summary-shipping').innerText()).trim(), '€14.90');
    assert.equal((await page.locator('#summary-total').innerText()).trim(), '€74.70');

    await fillAndBuy(page, {
      email: buyerEmail('france'),
      name: 'Jean Dupont',
      address: { ...ADDRESS, country: 'FR', countryName: 'France' },
    });
    await onTestpay(page);
    const card = await page.locator('main').innerText();
    assert.match(card, /Shipping to France\s*€14\.90/);
    assert.match(card, /€74\.70/);
    await checkPage(t, page, 'testpay-with-shipping');
    await payOnTestpay(page, APPROVE);
    await expectVisible(page.getByRole('heading', { name: /order confirmed/i }), 'the confirmation');
    assert.doesNotMatch(await page.locator('main').innerText(), /access details/i);
  } finally {
    await page.context().close();
  }
});

test('a destination no rate covers is refused on the page before an order exists', { timeout: 30_000 }, async (t) => {
  const page = await env.newPage();
  try {
    await openBuyPage(page, env.stack, 'rust-book');
    await page.getByLabel('Quantity').fill('4');
    await page.getByLabel('Country').selectOption({ label: 'France' });
    assert.match(await page.locator('#summary-shipping').innerText(), /choose fewer/i);
    await page.getByLabel('Email', { exact: true }).fill(buyerEmail('heavy'));
    await page.getByLabel('Name', { exact: true }).fill('Jean');
    await page.getByLabel('Recipient').fill('Jean');
    await page.getByLabel('Street and number').fill('1 rue de Rivoli');
    await page.getByLabel('City').fill('Paris');
    const response = await submit(page);
    assert.equal(response.status(), 422);
    assert.match(await messageFor(page, 'address_country'), /France.*fewer units/i);
    assert.equal(await page.getByLabel('Quantity').inputValue(), '4');
    assert.equal(await page.getByLabel('Country').inputValue(), 'FR');
    await checkPage(t, page, 'buy-cannot-ship');
  } finally {
    await page.context().close();
  }
});

test('an unpaid order waits for its payment, with the pay link and no reloading', { timeout: 30_000 }, async (t) => {
  const page = await env.newPage();
  try {
    await openBuyPage(page, env.stack, 'rust-course');
    await fillAndBuy(page, { email: buyerEmail('unpaid'), name: 'Ann' });
    await onTestpay(page);
    // The buyer leaves the card page and opens the order page from the gateway's back link.
    const token = await waitFor('the order token', async () => {
      const html = await page.content();
      return html.match(/\/orders\/([A-Za-z0-9_-]{20,})/)?.[1];
    }).catch(() => null);
    assert.ok(token, 'the card page links back to the order');
    await page.goto(env.stack.url(`/orders/${token}`));
    await expectVisible(page.getByRole('heading', { name: /waiting for your payment/i }), 'the waiting heading');
    await expectVisible(page.getByRole('link', { name: /go to payment/i }), 'the pay link');
    assert.equal(await page.locator('meta[http-equiv=refresh]').count(), 0);
    await checkPage(t, page, 'order-unpaid');
  } finally {
    await page.context().close();
  }
});

test('a used-up download link and an unknown address are pages; programs get problems', { timeout: 90_000 }, async (t) => {
  const page = await env.newPage();
  try {
    await openBuyPage(page, env.stack, 'rust-book-pdf');
    await fillAndBuy(page, { email: buyerEmail('pdf'), name: 'Ann' });
    await payOnTestpay(page, APPROVE);
    const link = page.getByRole('link', { name: /download/i });
    await expectVisible(link, 'the download link');
    await expectVisible(page.getByText(/5 of 5 downloads left/i), 'the downloads left');
    const url = await link.getAttribute('href');
    for (let i = 0; i < 5; i++) {
      const r = await fetch(url, { redirect: 'manual' });
      assert.equal(r.status, 302);
    }
    await page.reload();
    await expectVisible(page.getByText(/link has ended/i), 'the ended download on the order page');
    const token = tokenOf(page);
    assert.ok(token);

    const used = await page.goto(url);
    assert.equal(used.status(), 410);
    await expectVisible(page.getByRole('heading', { name: /download limit/i }), 'the limit page');
    await checkPage(t, page, 'download-used-up');
    const problem = await fetch(url);
    assert.equal(problem.status, 410);
    assert.equal(problem.headers.get('content-type'), 'application/problem+json');

    const unknown = await page.goto(env.stack.url('/no/such/page'));
    assert.equal(unknown.status(), 404);
    await expectVisible(page.getByRole('heading', { name: /not found/i }), 'the not-found page');
    const programs = await fetch(env.stack.url('/no/such/page'));
    assert.equal(programs.status, 404);
    assert.equal(programs.headers.get('content-type'), 'application/problem+json');
  } finally {
    await page.context().close();
  }
});

test('more units than are left are refused beside the quantity, keeping what was typed', { timeout: 30_000 }, async (t) => {
  // Another buyer holds a few books unpaid.
  const held = await fetch(env.stack.url('/checkout'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      items: [{ sku: 'rust-book', quantity: 3 }],
      email: buyerEmail('holder'),
      name: 'Bo',
      address: { name: 'Bo', line1: 'Hauptstr. 2', city: 'Berlin', country: 'DE' },
    }),
  });
  assert.equal(held.status, 201);
  const page = await env.newPage();
  try {
    await openBuyPage(page, env.stack, 'rust-book');
    await withoutBrowserChecks(page);
    await page.getByLabel('Quantity').fill('100');
    await page.getByLabel('Email', { exact: true }).fill(buyerEmail('many'));
    await page.getByLabel('Name', { exact: true }).fill('Ann');
    await page.getByLabel('Recipient').fill('Ann Lee');
    await page.getByLabel('Street and number').fill('Hauptstr. 1');
    await page.getByLabel('City').fill('Berlin');
    const response = await submit(page);
    assert.equal(response.status(), 409);
    const message = await messageFor(page, 'quantity');
    const left = Number(message.match(/^Only (\d+) left: choose \1 or fewer\.$/)?.[1]);
    assert.ok(left > 0 && left <= 97, message);
    assert.equal(await page.getByLabel('Quantity').inputValue(), '100');
    assert.equal(await page.getByLabel('Street and number').inputValue(), 'Hauptstr. 1');
    await checkPage(t, page, 'buy-too-many');
  } finally {
    await page.context().close();
  }
});

test('testpay refuses an expired card beside its field and keeps what was typed', { timeout: 30_000 }, async (t) => {
  const page = await env.newPage();
  try {
    await openBuyPage(page, env.stack, 'ferrite-pro');
    await fillAndBuy(page, { email: buyerEmail('expired-card'), name: 'Ann' });
    await onTestpay(page);
    await page.getByLabel(/card number/i).fill(APPROVE);
    await page.getByLabel(/expiry/i).fill('01/20');
    await page.getByLabel(/cvc/i).fill('987');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: /^\s*pay\b/i }).click(),
    ]);
    assert.equal(response.status(), 400);
    await expectVisible(page.getByText(/this card has expired/i), 'the expired-card message');
    const exp = page.getByLabel(/expiry/i);
    assert.equal(await exp.inputValue(), '01/20');
    assert.equal(await exp.getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByLabel(/cvc/i).inputValue(), '987');
    await checkPage(t, page, 'testpay-expired-card');
    await exp.fill('12/39');
    await page.getByRole('button', { name: /^\s*pay\b/i }).click();
    await page.waitForURL(/\/orders\/[^/.]+$/);
    await expectVisible(page.getByRole('heading', { name: /order confirmed/i }), 'the confirmation');
  } finally {
    await page.context().close();
  }
});
