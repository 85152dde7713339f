// Addresses that lead nowhere get the store's not-found page.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkPage, expectVisible, setUp, visit } from './lib.mjs';

let env;
before(async () => {
  env = await setUp();
});
after(async () => {
  await env?.stop();
});

for (const [path, name] of [
  ['/orders/nonsense', 'not-found-order'],
  ['/buy/nope', 'not-found-product'],
]) {
  test(`${path} shows the not-found page`, { timeout: 60_000 }, async (t) => {
    const page = await env.newPage();
    try {
      const response = await page.goto(env.stack.url(path));
      assert.equal(response.status(), 404, `${path} answered ${response.status()}`);
      assert.match(response.headers()['content-type'] ?? '', /text\/html/);
      await expectVisible(
        page.getByRole('heading', { level: 1, name: /not found/i }),
        'the "Not found" heading',
      );
      await checkPage(t, page, name);
    } finally {
      await page.context().close();
    }
  });
}

// The checks themselves: a page that scrolls sideways and breaks axe rules must fail visit().
test('visit() reports sideways scrolling and serious axe violations', { timeout: 60_000 }, async () => {
  const page = await env.newPage();
  try {
    await page.setContent(`<!doctype html><html lang="en"><head><title>broken</title>
      <meta name="viewport" content="width=device-width, initial-scale=1"></head>
      <body><main><h1>Broken on purpose</h1>
      <div style="width: 1400px">too wide</div>
      <p style="color: #ccc; background: #fff">low contrast text</p>
      <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
      </main></body></html>`);
    await assert.rejects(visit(page, 'visit-selftest'), (error) => {
      assert.match(error.message, /at 1280 px scrolls sideways/);
      assert.match(error.message, /at 390 px scrolls sideways/);
      assert.match(error.message, /color-contrast/);
      assert.match(error.message, /image-alt/);
      return true;
    });
  } finally {
    await page.context().close();
  }
});
