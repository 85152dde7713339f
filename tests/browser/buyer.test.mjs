// A buyer buys each product of the sample store by card, as in a browser: the buy page, its
// form, testpay's card page, and back to the order page until the access details show; the
// buyer's mail; and the PDF's download link.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import {
  ADDRESS,
  APPROVE,
  buyerEmail,
  checkPage,
  expectVisible,
  fillAndBuy,
  linkTo,
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

const PRODUCTS = [
  { sku: 'rust-course', name: 'Rust from Zero', kind: 'course' },
  { sku: 'mentoring-cohort', name: 'Rust Mentoring Cohort', kind: 'course' },
  { sku: 'rust-book', name: 'The Rust Field Guide (paperback)', kind: 'shipment' },
  { sku: 'rust-book-pdf', name: 'The Rust Field Guide (PDF)', kind: 'download' },
  { sku: 'ferrite-pro', name: 'Ferrite Pro', kind: 'license_key' },
];

for (const product of PRODUCTS) {
  test(`buys ${product.sku} by card and sees its access details`, { timeout: 90_000 }, async (t) => {
    const { stack } = env;
    const page = await env.newPage();
    try {
      const email = buyerEmail(product.sku);

      await openBuyPage(page, stack, product.sku);
      await expectVisible(
        page.getByRole('heading', { level: 1, name: product.name }),
        `the product's name as the buy page's heading`,
      );
      await checkPage(t, page, `buy-${product.sku}`);

      await fillAndBuy(page, {
        email,
        name: 'Ann Lee',
        address: product.kind === 'shipment' ? ADDRESS : undefined,
      });
      await onTestpay(page);
      await checkPage(t, page, `testpay-${product.sku}`);

      await payOnTestpay(page, APPROVE);
      const token = tokenOf(page);
      const order = await waitFor(`order ${product.sku} to be paid and fulfilled`, async () => {
        const o = await orderJson(stack, token);
        return ['fulfilled', 'awaiting_shipment'].includes(o.status) ? o : null;
      });
      const line = order.lines.find((l) => l.sku === product.sku);
      assert.ok(line, `the order holds ${product.sku}: ${JSON.stringify(order)}`);
      const access = line.access;

      // The order page shows the details (it may refresh itself until they are there).
      let inMail = [];
      switch (product.kind) {
        case 'course':
          assert.ok(access?.username && access?.password, `course access: ${JSON.stringify(line)}`);
          await expectVisible(page.getByText(access.username, { exact: true }), 'the username');
          await expectVisible(page.getByText(access.password, { exact: true }), 'the password');
          await expectVisible(linkTo(page, access.login_url), 'the login link');
          inMail = [access.username, access.password];
          break;
        case 'license_key':
          assert.ok(access?.key, `licence access: ${JSON.stringify(line)}`);
          await expectVisible(page.getByText(access.key, { exact: true }), 'the licence key');
          inMail = [access.key];
          break;
        case 'download':
          assert.ok(access?.url, `download access: ${JSON.stringify(line)}`);
          await expectVisible(
            linkTo(page, access.url).and(page.getByRole('link', { name: /download/i })),
            'the download link',
          );
          inMail = [access.url];
          break;
        case 'shipment':
          assert.equal(order.status, 'awaiting_shipment');
          await expectVisible(page.getByText(/will ship/i), 'the "will ship" note');
          await expectVisible(page.getByText(ADDRESS.street), 'the shipping address');
          for (const step of [/paid/i, /shipped/i, /delivered/i]) {
            await expectVisible(
              page.getByRole('listitem').filter({ hasText: step }),
              `the shipping step ${step}`,
            );
          }
          break;
      }
      await checkPage(t, page, `order-${product.sku}`);

      // The buyer got a mail, with the same details.
      const mails = await mailsTo(stack, email);
      for (const detail of inMail) {
        assert.ok(
          mails.some((m) => `${m.text}\n${m.html}`.includes(detail)),
          `a mail to ${email} holds ${detail}: ${JSON.stringify(mails.map((m) => m.subject))}`,
        );
      }

      if (product.kind === 'download') {
        await t.test('the download link downloads the file', async () => {
          // By hand, without following redirects: the link answers a redirect to the file…
          const first = await page.request.get(access.url, { maxRedirects: 0 });
          assert.ok(
            [200, 302, 303, 307].includes(first.status()),
            `the download link answered ${first.status()}`,
          );
          const file = first.status() === 200 ? first : await page.request.get(
            new URL(first.headers().location, access.url).href,
          );
          assert.equal(file.status(), 200, `the file answered ${file.status()}`);
          assert.equal((await file.body()).subarray(0, 5).toString('latin1'), '%PDF-');
          // …and clicking it in the page saves the PDF.
          const [download] = await Promise.all([
            page.waitForEvent('download'),
            linkTo(page, access.url).first().click(),
          ]);
          assert.equal(await download.failure(), null, 'the download failed');
          assert.match(download.suggestedFilename(), /\.pdf$/i);
          const bytes = await readFile(await download.path());
          assert.equal(bytes.subarray(0, 5).toString('latin1'), '%PDF-', 'the file is a PDF');
        });
      }
    } finally {
      await page.context().close();
    }
  });
}
