// tests/browser/console.mjs - the operator console in a real browser (Debian's
// Chromium, headless, driven by playwright-core) against the real stack, through one
// web server. Run by tests/integration/test_console.py once per server; prints one TAP
// line per step and exits non-zero at the first failing step.
//
// Environment: CONSOLE_BASE (http://127.0.0.1:PORT), ADMIN_TOKEN, SHOT_DIR (screenshots
// go there), PLAYWRIGHT_CORE (path of the playwright-core package the build installed),
// CHROMIUM [/usr/bin/chromium].
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const base = process.env.CONSOLE_BASE;
const token = process.env.ADMIN_TOKEN;
const shots = process.env.SHOT_DIR;
mkdirSync(shots, { recursive: true });

const tag = Math.random().toString(36).slice(2, 10);
const userBase = Date.now() * 1000;
let step = 0;
const problems = [];

function ok(name) { console.log('ok ' + ++step + ' - ' + name); }

async function within(ms, what, fn) {
  const t0 = Date.now();
  let last;
  for (;;) {
    last = await fn();
    if (last === true) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(what + ' not seen within ' + ms + ' ms (last: ' +
      JSON.stringify(last) + ')');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function claim(couponId, userId) {
  const r = await fetch(base + '/api/coupons/' + couponId + '/issue', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  await r.arrayBuffer();
  return r.status;
}

// A checkout call on one issuance (what: 'redemption' or 'hold'); throws unless it
// answers `want`. Returns the answer's document (null for a 204).
async function checkout(method, couponId, userId, what, body, want) {
  const r = await fetch(base + '/api/coupons/' + couponId + '/issues/' + userId + '/' + what, {
    method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const doc = r.status === 204 ? null : await r.json();
  if (r.status !== want)
    throw new Error(method + ' ' + what + ' of user ' + userId + ' answered ' + r.status + ' ' +
      JSON.stringify(doc) + ', not ' + want);
  return doc;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1500 } });
  // Chromium logs every 4xx the API answers as "Failed to load resource": expected here
  // (a wrong token, a wrong field). Anything else is a script error or a CSP violation.
  const expected4xx = /^Failed to load resource: the server responded with a status of 4\d\d/;
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected4xx.test(m.text()))
      problems.push('console: ' + m.text());
  });
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation',
    (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI)));
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  const text = (sel) => page.locator(sel).innerText();

  // 1. A wrong token: a clear message, and the token form again.
  await page.goto(base + '/console/');
  await page.fill('#token', 'not-the-token-' + tag);
  await page.click('#token-form button');
  await within(2000, 'the refusal message', async () =>
    /admin token was refused/.test(await text('#auth-msg')) || (await text('#auth-msg')));
  if (!(await page.locator('#auth').isVisible())) throw new Error('token form not shown again');
  if (await page.evaluate(() => sessionStorage.getItem('couponAdminToken')) !== null)
    throw new Error('a refused token stays in sessionStorage');
  await page.screenshot({ path: join(shots, '1-wrong-token.png') });
  ok('a wrong token shows "' + (await text('#auth-msg')) + '"');

  // 2. The right token, typed once: the campaign list; kept in sessionStorage only.
  await page.fill('#token', token);
  await page.click('#token-form button');
  await page.locator('#list').waitFor({ state: 'visible', timeout: 5000 });
  if (await page.evaluate(() => sessionStorage.getItem('couponAdminToken')) !== token)
    throw new Error('token not in sessionStorage');
  if (await page.evaluate(() => localStorage.length) !== 0)
    throw new Error('something written to localStorage');
  ok('the admin token opens the campaign list');

  // 3. A wrong field: the API's own message next to that field.
  const title = 'Browser sale ' + tag;
  await page.fill('#create-form [name=title]', title);
  await page.fill('#create-form [name=totalQuantity]', '0');
  await page.click('#create-form button[type=submit]');
  const slot = '#create-form .field-error[data-for=totalQuantity]';
  await within(2000, 'the totalQuantity message', async () =>
    (await text(slot)) === 'totalQuantity must be an integer in 1..1000000000000' ||
    (await text(slot)));
  if ((await page.getAttribute('#create-form [name=totalQuantity]', 'aria-invalid')) !== 'true')
    throw new Error('the field is not marked invalid');
  if ((await text('#create-form .field-error[data-for=title]')) !== '')
    throw new Error('a message next to a field that was right');
  await page.screenshot({ path: join(shots, '2-field-error.png') });
  ok('totalQuantity=0 shows "' + (await text(slot)) + '" next to the field');

  // 4. Create through the form: the campaign's page opens.
  await page.fill('#create-form [name=totalQuantity]', '500');
  await page.click('#create-form button[type=submit]');
  await page.waitForURL(/#\/coupons\/\d+$/, { timeout: 5000 });
  const id = /#\/coupons\/(\d+)$/.exec(page.url())[1];
  await within(3000, 'the campaign page', async () => (await text('#c-title')) === title);
  await within(3000, 'zero issued', async () => (await text('#s-issued')) === '0');
  ok('the form created campaign ' + id);

  // 5. 30 claims through the API: numbers and chart within 2 s.
  for (let i = 1; i <= 30; i++) {
    const st = await claim(id, userBase + i);
    if (st !== 201) throw new Error('claim ' + i + ' answered ' + st);
  }
  const tookMs = await within(2000, 'issued 30 and 30 claims on the chart', async () => {
    const got = [await text('#s-issued'), await text('#s-remaining'),
      await page.getAttribute('#claims-chart', 'data-total')];
    return (got[0] === '30' && got[1] === '470' && got[2] === '30') || got;
  });
  await page.screenshot({ path: join(shots, '3-after-30-claims.png') });
  ok('30 claims: issued 30, remaining 470 and 30 on the chart after ' + tookMs + ' ms');

  // 6. PATCH the title through the form.
  const renamed = title + ' (extended)';
  await page.fill('#patch-form [name=title]', renamed);
  await page.click('#patch-form button[type=submit]');
  await within(2000, 'the new title', async () =>
    ((await text('#c-title')) === renamed && (await text('#patch-form .form-ok')) === 'Saved.') ||
    (await text('#c-title')));
  const doc = await (await fetch(base + '/api/coupons/' + id)).json();
  if (doc.title !== renamed) throw new Error('the API still says ' + doc.title);
  ok('the title changed through the form (the API agrees)');

  // 7. A PATCH the API refuses: its message next to the field.
  await page.fill('#patch-form [name=totalQuantity]', '10');
  await page.click('#patch-form button[type=submit]');
  const pslot = '#patch-form .field-error[data-for=totalQuantity]';
  await within(2000, 'the refusal of a total below issued', async () =>
    /totalQuantity 10 is below the 30 already issued/.test(await text(pslot)) ||
    (await text(pslot)));
  await page.fill('#patch-form [name=totalQuantity]', '500');
  ok('totalQuantity below issued shows "' + (await text(pslot)) + '"');

  // 8. A user's issuance.
  await page.fill('#lookup-form [name=userId]', String(userBase + 7));
  await page.click('#lookup-form button');
  await within(2000, 'the issuance', async () =>
    /^(ISSUED|PERSISTED)$/.test(await text('#l-status')) || (await text('#l-status')));
  const seq = Number(await text('#l-sequence'));
  if (!(seq >= 1 && seq <= 30)) throw new Error('sequence ' + seq);
  ok('user lookup: ' + (await text('#l-status')) + ', sequence ' + seq);

  // 9. Checkout through the API, seen on the campaign's page once the checkout applier
  //    wrote it to MariaDB: users 1-4 redeemed; 5-7 held for 10 minutes; 8 held for 1 s
  //    (it lapses: not held); 9 held, then released; 10 held, then its order redeems it
  //    (redeemed, no longer held). Exactly 5 redeemed and 3 held, and so it stays.
  const order = (i) => 'console-' + tag + '-' + i;
  for (let i = 1; i <= 4; i++)
    await checkout('POST', id, userBase + i, 'redemption', { orderId: order(i) }, 201);
  for (let i = 5; i <= 7; i++)
    await checkout('POST', id, userBase + i, 'hold', { orderId: order(i), ttlSeconds: 600 }, 201);
  const lapsing = await checkout('POST', id, userBase + 8, 'hold',
    { orderId: order(8), ttlSeconds: 1 }, 201);
  await checkout('POST', id, userBase + 9, 'hold', { orderId: order(9), ttlSeconds: 600 }, 201);
  await checkout('DELETE', id, userBase + 9, 'hold', { orderId: order(9) }, 204);
  await checkout('POST', id, userBase + 10, 'hold', { orderId: order(10), ttlSeconds: 600 },
    201);
  await checkout('POST', id, userBase + 10, 'redemption', { orderId: order(10) }, 201);
  const lapsedAt = Date.parse(lapsing.holdExpiresAt);
  if (!(lapsedAt > 0)) throw new Error('holdExpiresAt ' + lapsing.holdExpiresAt);
  const cards = async () => [await text('#s-redeemed'), await text('#s-held')];
  const appliedMs = await within(5000, 'redeemed 5 and held 3 after the lapse', async () => {
    const got = await cards();
    return (Date.now() > lapsedAt && got[0] === '5' && got[1] === '3') || got;
  });
  await new Promise((r) => setTimeout(r, 1500)); // rounds of the applier and of the page
  const later = await cards();
  if (later[0] !== '5' || later[1] !== '3')
    throw new Error('redeemed/held moved on to ' + later.join('/'));
  await page.screenshot({ path: join(shots, '4-checkout.png') });
  ok('checkout: redeemed 5 and held 3 on the page ' + appliedMs + ' ms after the last change');

  // 10. The sale goes on for a few seconds (with duplicates: 409s in the answers chart).
  let u = 100;
  for (let s = 0; s < 6; s++) {
    const n = [8, 20, 35, 25, 14, 6][s];
    const batch = [];
    for (let i = 0; i < n; i++) batch.push(claim(id, userBase + ++u));
    for (let i = 0; i < Math.floor(n / 4); i++) batch.push(claim(id, userBase + 1 + i));
    await Promise.all(batch);
    await new Promise((r) => setTimeout(r, 1000));
  }
  await within(2000, 'the later claims', async () =>
    (await page.getAttribute('#claims-chart', 'data-total')) === String(30 + u - 100) ||
    (await page.getAttribute('#claims-chart', 'data-total')));
  const answers = Number(await page.getAttribute('#answers-chart', 'data-total'));
  if (!(answers >= 30 + u - 100)) throw new Error('answers chart total ' + answers);
  await page.screenshot({ path: join(shots, '5-campaign-mid-sale.png'), fullPage: true });
  ok('mid-sale: ' + (30 + u - 100) + ' claims and ' + answers + ' answers on the charts');

  // 11. The list shows the campaign's live and checkout numbers; the token never reached
  //     a URL.
  await page.goto(base + '/console/#/');
  const row = page.locator('#campaigns tr[data-id="' + id + '"]');
  await row.waitFor({ timeout: 5000 });
  const issued = await row.locator('td.issued').innerText();
  if (issued !== String(30 + u - 100)) throw new Error('list says issued ' + issued);
  const checkedOut = [await row.locator('td.redeemed').innerText(),
    await row.locator('td.held').innerText()];
  if (checkedOut.join('/') !== '5/3') throw new Error('list says redeemed/held ' +
    checkedOut.join('/'));
  await page.screenshot({ path: join(shots, '6-list.png') });
  if (page.url().includes(token)) throw new Error('the token is in the URL');
  ok('the list shows issued ' + issued + ', redeemed 5 and held 3 for campaign ' + id);

  if (problems.length) throw new Error('browser errors: ' + problems.join(' | '));
  ok('no script error and no CSP violation in the browser');
} catch (e) {
  failed = true;
  console.log('not ok ' + ++step + ' - ' + e.message);
  if (problems.length) console.log('# browser: ' + problems.join(' | '));
} finally {
  await browser.close();
}
console.log('1..' + step);
process.exit(failed ? 1 : 0);
