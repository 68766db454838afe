// A patient's own record in real Chromium, against a running Osler.
//
//   node phr.mjs <base-url> <screenshot-dir> <patient-id> <birth-date>
//
// The end-to-end test `browser::a_patient_uses_their_own_record_in_chromium`
// (tests/e2e/browser.rs) starts `osler demo` with scheduling, the drug reference, prescribing
// and the patient-held record (`phr`) enabled at `main`, registers a patient with an
// appointment, a medication and an allergy, then runs this script. It drives Debian's
// Chromium (OSLER_CHROMIUM, default /usr/bin/chromium) through playwright-core and keeps a
// full-page screenshot of every step in <screenshot-dir> (NN-step.png). Exit status 0 means
// every step behaved.
//
// The steps: reception creates the patient's account from the chart and gets a printable
// activation code; the patient activates it (a wrong birth date is refused first), signs in,
// sees their appointment, medication and allergy, requests an appointment, shares their
// medications, opens the link in a fresh browser (it shows them), revokes it (a fresh browser
// no longer sees them), and sees the view in "Who looked"; reception sees the request on the
// waiting list, marked as the patient's.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const [base, shots, patientId, birthDate] = process.argv.slice(2);
if (!base || !shots || !patientId || !birthDate) {
  console.error('usage: node phr.mjs <base-url> <screenshot-dir> <patient-id> <birth-date>');
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });
for (const f of fs.readdirSync(shots)) if (f.endsWith('.png')) fs.rmSync(path.join(shots, f));

const executablePath = process.env.OSLER_CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

let n = 0;
async function shot(page, name) {
  n += 1;
  const file = path.join(shots, `${String(n).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`  screenshot ${path.basename(file)}`);
}

let current = '';
function step(name) {
  current = name;
  console.log(`step: ${name}`);
}

async function newContext() {
  return browser.newContext({ baseURL: base, viewport: { width: 1280, height: 860 } });
}

async function signIn(context, user, password) {
  const page = await context.newPage();
  await page.goto('/login');
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((u) => !u.pathname.startsWith('/login')),
    page.click('button[type=submit]'),
  ]);
  return page;
}

async function click(page, role, name) {
  await Promise.all([page.waitForLoadState('load'), page.getByRole(role, { name }).first().click()]);
  await page.waitForLoadState('load');
}

const PASSWORD = 'my own long password';
try {
  step('reception creates the patient account from the chart');
  const deskCtx = await newContext();
  const desk = await signIn(deskCtx, 'reception', 'osler-demo-reception');
  await desk.goto(`/patients/${patientId}`);
  await desk.fill('#acct-username', 'marie.phr');
  await click(desk, 'button', 'Create patient account');
  const code = (await desk.locator('#activation-code').innerText()).trim();
  assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  await shot(desk, 'activation-code');

  step('the patient activates it: a wrong birth date first');
  const patientCtx = await newContext();
  const me = await patientCtx.newPage();
  await me.goto('/activate');
  await me.fill('#code', code);
  await me.fill('#birth_date', '1901-01-01');
  await me.fill('#password', PASSWORD);
  await me.fill('#confirm', PASSWORD);
  await click(me, 'button', 'Activate');
  assert.match(await me.locator('[role=alert]').innerText(), /birth date does not match/);
  await shot(me, 'activation-wrong-birth-date');
  await me.fill('#birth_date', birthDate);
  await me.fill('#password', PASSWORD);
  await me.fill('#confirm', PASSWORD);
  await click(me, 'button', 'Activate');
  assert.equal(await me.locator('#activated-username').innerText(), 'marie.phr');
  await shot(me, 'activated');

  step('the patient signs in and sees their appointment, medication and allergy');
  await click(me, 'link', 'Sign in');
  await me.fill('#username', 'marie.phr');
  await me.fill('#password', PASSWORD);
  await Promise.all([me.waitForURL((u) => !u.pathname.startsWith('/login')), me.click('button[type=submit]')]);
  const nav = await me.locator('header.shell nav a').allInnerTexts();
  assert.ok(nav.includes('My health') && nav.includes('Sharing') && nav.includes('Who looked'), `${nav}`);
  assert.ok(!nav.includes('Patients') && !nav.includes('Schedule'), `${nav}`);
  await click(me, 'link', 'My health');
  assert.match(await me.locator('#appointments').innerText(), /2030-01-07 at 09:00 with Dr\. Amelia Lee/);
  assert.match((await me.locator('#medications').innerText()).toLowerCase(), /levothyroxine/);
  assert.match(await me.locator('#allergies').innerText(), /penicillin/);
  await shot(me, 'my-health');

  step('the patient requests an appointment');
  await click(me, 'link', 'Request an appointment');
  await me.fill('#dates', 'any weekday next week');
  await me.selectOption('#times', 'morning');
  await me.fill('#reason', 'thyroid follow-up');
  await shot(me, 'request-form');
  await click(me, 'button', 'Send request');
  assert.match(await me.locator('[role=status]').first().innerText(), /on its way to the clinic/);
  assert.match(await me.locator('#requests').innerText(), /thyroid follow-up/);
  await shot(me, 'requested');

  step('the patient shares their medications and opens the link in a fresh browser');
  await me.goto('/me/shares');
  await me.check('#section-share-medications');
  await me.fill('#days', '7');
  await me.fill('#recipient', 'Dr. Chen');
  await click(me, 'button', 'Create share link');
  const link = await me.locator('#share-link').inputValue();
  assert.match(link, /\/share\/[A-Za-z0-9_-]{43}$/);
  await shot(me, 'share-created');
  const stranger = await (await newContext()).newPage();
  await stranger.goto(link);
  assert.match((await stranger.locator('#medications').innerText()).toLowerCase(), /levothyroxine/);
  assert.match(await stranger.locator('p.notice').innerText(), /as of/);
  await shot(stranger, 'share-opened');

  step('the patient sees the view, revokes the share, and the link stops working');
  await me.goto('/me/access');
  assert.match(await me.locator('#share-views').innerText(), /Dr\. Chen/);
  await shot(me, 'who-looked');
  await me.goto('/me/shares');
  await click(me, 'button', 'Revoke');
  assert.match(await me.locator('#shares').innerText(), /revoked/);
  await shot(me, 'share-revoked');
  const later = await (await newContext()).newPage();
  const res = await later.goto(link);
  assert.equal(res.status(), 404);
  assert.match(await later.locator('h1').innerText(), /not available/);
  assert.equal(await later.locator('#medications').count(), 0);
  await shot(later, 'share-gone');

  step('reception sees the request on the waiting list');
  await desk.goto('/plugins/scheduling/waitlist?list=patient-requests');
  const row = desk.locator('tr', { hasText: 'thyroid follow-up' });
  assert.match(await row.innerText(), /Patient request/);
  await shot(desk, 'waiting-list');

  console.log('all steps passed');
} catch (e) {
  console.error(`FAILED at step: ${current}`);
  console.error(e);
  for (const ctx of browser.contexts()) {
    for (const p of ctx.pages()) {
      try { await shot(p, 'failure'); } catch { /* the page may be gone */ }
    }
  }
  await browser.close();
  process.exit(1);
}
await browser.close();
