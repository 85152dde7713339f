// Writes ../fixtures/stripe_signatures.json: Stripe-Signature headers made by Stripe's own
// Node library, and its verdict on each case, for the Rust verifier's golden tests.
//   npm ci && node make-vectors.js
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const Stripe = require('stripe');

const stripe = new Stripe('sk_test_vectors_only');
const TOLERANCE = 300;
const now = Math.floor(Date.now() / 1000);

function secret() {
  return 'whsec_' + crypto.randomBytes(24).toString('base64url');
}

function header(payload, secret, timestamp) {
  return stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}

// What Stripe's library says: "ok", or the kind of its refusal.
function verdict(payload, header, secret) {
  try {
    stripe.webhooks.constructEvent(payload, header, secret, TOLERANCE);
    return 'ok';
  } catch (e) {
    if (/timestamp outside the tolerance/i.test(e.message)) return 'stale';
    if (/unable to extract timestamp and signatures/i.test(e.message)) return 'malformed';
    return 'bad_signature';
  }
}

const payloads = [
  JSON.stringify({ id: 'evt_1', object: 'event', type: 'checkout.session.completed', data: { object: { id: 'cs_test_a1', client_reference_id: 'ord_00112233445566778899', amount_total: 4900, currency: 'eur', payment_status: 'paid', status: 'complete' } } }),
  JSON.stringify({ id: 'evt_2', type: 'checkout.session.expired', data: { object: { id: 'cs_test_b2', metadata: { order_id: 'ord_aabbccddeeff00112233' } } } }, null, 2),
  '{"id":"evt_3","type":"charge.refunded","data":{"object":{"description":"Caf\u00e9 \u2014 \u65e5\u672c"}}}\n',
];

const cases = [];
for (const payload of payloads) {
  const s = secret();
  const h = header(payload, s, now);
  cases.push({ name: 'signed by stripe', payload, secret: s, header: h, expected: verdict(payload, h, s) });

  const old = secret();
  const rotated = `${header(payload, old, now)},${header(payload, s, now).split(',')[1]}`;
  cases.push({ name: 'two v1, only the second matches', payload, secret: s, header: rotated, expected: verdict(payload, rotated, s) });

  const changed = payload.replace('evt_', 'evt-');
  cases.push({ name: 'one changed byte in the body', payload: changed, secret: s, header: h, expected: verdict(changed, h, s) });

  const stale = header(payload, s, now - 1000);
  cases.push({ name: 'older than the tolerance', payload, secret: s, header: stale, expected: verdict(payload, stale, s) });

  const recent = header(payload, s, now - 100);
  cases.push({ name: 'within the tolerance', payload, secret: s, header: recent, expected: verdict(payload, recent, s) });

  const wrong = secret();
  cases.push({ name: 'another secret', payload, secret: wrong, header: h, expected: verdict(payload, h, wrong) });

  const noV1 = h.split(',')[0];
  cases.push({ name: 'no v1', payload, secret: s, header: noV1, expected: verdict(payload, noV1, s) });
}

const out = {
  generated_by: `stripe-node ${JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules', 'stripe', 'package.json'))).version}, tests/stripe-vectors/make-vectors.js`,
  now,
  tolerance: TOLERANCE,
  cases,
};
const file = path.join(__dirname, '..', 'fixtures', 'stripe_signatures.json');
fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
console.log(`wrote ${cases.length} cases to ${file}`);
