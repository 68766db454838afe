// A clinic's morning in real Chromium, against a running Osler.
//
//   node clinic.mjs <base-url> <screenshot-dir>
//
// The end-to-end test `browser` (tests/e2e/browser.rs) starts `osler demo` with the
// scheduling, kiosk, drug reference and prescribing plugins enabled at `main`, then runs this
// script. It drives Debian's Chromium (OSLER_CHROMIUM, default /usr/bin/chromium) through
// playwright-core, which never downloads a browser, and keeps a full-page screenshot of every
// step in <screenshot-dir> (NN-step.png). Exit status 0 means every step behaved.
//
// The steps: reception registers a patient (a wrong check digit is flagged before submit and,
// with scripts off, refused by the server), is warned of possible duplicates, finds the patient
// and opens the chart, edits it while someone else saves it (nothing is lost), marks a chart
// inactive; books them by clicking a free slot on the appointment grid (finding them with the
// booking form's patient search) and moves the appointment to another slot (its page keeps
// the move); errors are pages; plugin pages sit in the shell and print without it; the kiosk
// checks the patient in and cannot leave its screen; the physician opens the day sheet,
// follows its link to the chart, records a blood pressure
// (an impossible one is refused), writes and signs a SOAP note, amends it and sees its
// history, and finds both on the chart's panels; prescribes from the chart, overriding a major
// interaction with a reason, and prints the prescription (print media, and a PDF); a plugin whose panels fail shows them
// "unavailable" and, disabled, shows none; the administrator adds a user, changes and
// disables them, and filters the audit trail.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node clinic.mjs <base-url> <screenshot-dir>');
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

const USERS = {
  reception: ['reception', 'osler-demo-reception'],
  physician: ['drlee', 'osler-demo-physician'],
  admin: ['admin', 'osler-demo-admin'],
  kiosk: ['kiosk.main', 'osler-demo-kiosk'],
};

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

function luhnDigit(stem9) {
  for (let d = 0; d <= 9; d++) {
    const s = stem9 + d;
    let sum = 0;
    for (let i = 0; i < s.length; i++) {
      let x = s.charCodeAt(s.length - 1 - i) - 48;
      if (i % 2 === 1) { x *= 2; if (x > 9) x -= 9; }
      sum += x;
    }
    if (sum % 10 === 0) return String(d);
  }
  throw new Error('no check digit');
}
// Numbers of this run, far from the demo's.
const stem = String(500000000 + (Date.now() % 400000000));
const CARD = stem + luhnDigit(stem);
const WRONG = stem + String((Number(luhnDigit(stem)) + 1) % 10);
const stem2 = String(Number(stem) + 7);
const CARD2 = stem2 + luhnDigit(stem2);
const RAY = `ray.${stem.slice(-4)}`;
// A birth date of this run, so that the script can run again against the same server.
const day = Math.floor(Date.now() / 1000) % (28 * 12);
const BORN = `1984-${String(1 + Math.floor(day / 28)).padStart(2, '0')}-${String(1 + (day % 28)).padStart(2, '0')}`;

async function newContext(opts = {}) {
  return browser.newContext({ baseURL: base, viewport: { width: 1280, height: 860 }, ...opts });
}

async function signIn(context, [user, password], expectPath, shotName) {
  const page = await context.newPage();
  await page.goto('/login');
  if (shotName) await shot(page, shotName);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((u) => !u.pathname.startsWith('/login')),
    page.click('button[type=submit]'),
  ]);
  if (expectPath) assert.equal(new URL(page.url()).pathname, expectPath);
  return page;
}

async function submit(page, name) {
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name }).click()]);
  await page.waitForLoadState('load');
}

async function fillPatient(page, p) {
  for (const [field, value] of Object.entries(p)) {
    const el = page.locator(`#${field}`);
    if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(value);
    else await el.fill(value);
  }
}

const okonkwo = {
  prefix: 'Ms', given: 'Adaeze Ngozi', family: 'Okonkwo', preferred: 'Ada',
  birthDate: BORN, gender: 'female',
  phone_home: '416-555-0142', email: 'ada.okonkwo@example.org',
  line1: '45 Harbord Street', line2: 'Unit 2', city: 'Toronto', province: 'ON',
  postal_code: 'm5s1g4', language: 'en', physician: 'Practitioner/drlee',
};

try {
  // ---------------------------------------------------------------------------------------
  step('reception signs in and sees the shell');
  const desk = await newContext();
  // Signed out, a page asks to sign in and comes back to it.
  const page = await desk.newPage();
  await page.goto('/patients?name=lee');
  assert.equal(new URL(page.url()).pathname, '/login');
  await shot(page, 'sign-in');
  await page.fill('#username', USERS.reception[0]);
  await page.fill('#password', USERS.reception[1]);
  await submit(page, 'Sign in');
  assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/patients?name=lee');
  assert.equal(await page.inputValue('#q-name'), 'lee', 'the search asked for is the one shown');
  await page.goto('/');
  await assert.doesNotReject(page.locator('header.shell').waitFor());
  assert.match(await page.locator('header.shell .clinic').innerText(), /Main Street Clinic/);
  assert.match(await page.locator('header.shell .user').innerText(), /Front Desk/);
  const nav = await page.locator('header.shell nav a').allInnerTexts();
  assert.ok(nav.includes('Patients'), `nav: ${nav}`);
  assert.ok(nav.includes('Schedule'), `nav: ${nav}`);
  assert.ok(!nav.includes('Prescribing'), `reception has no prescribing: ${nav}`);
  assert.ok(!nav.includes('Administration'), `nav: ${nav}`);
  await shot(page, 'home-reception');

  // ---------------------------------------------------------------------------------------
  step('registration: a wrong check digit is flagged before submit');
  await page.getByRole('link', { name: 'Register a new patient' }).first().click();
  await page.waitForURL('**/patients/new');
  await fillPatient(page, okonkwo);
  await page.fill('#hcn', WRONG.slice(0, 6));
  assert.match(await page.locator('#hcn-hint').innerText(), /6 of 10 digits/);
  await page.fill('#hcn', WRONG);
  await page.locator('#hcn').blur();
  await page.fill('#hcn_version', 'kt');
  assert.equal(await page.inputValue('#hcn_version'), 'KT', 'the version code is upper-cased');
  assert.match(await page.locator('#hcn-hint').innerText(), /check digit is wrong/);
  assert.equal(await page.locator('#hcn').evaluate((e) => e.validity.valid), false);
  await shot(page, 'register-wrong-check-digit');
  await page.getByRole('button', { name: 'Register patient' }).click();
  await page.waitForTimeout(300);
  assert.equal(new URL(page.url()).pathname, '/patients/new', 'the browser did not submit');

  step('registration: with scripts off, the server refuses the wrong check digit');
  const noScript = await newContext({ javaScriptEnabled: false });
  const plain = await signIn(noScript, USERS.reception, '/');
  await plain.goto('/patients/new');
  await fillPatient(plain, okonkwo);
  await plain.fill('#hcn', WRONG);
  await submit(plain, 'Register patient');
  assert.match(await plain.locator('[role=alert]').first().innerText(), /Nothing was saved/);
  assert.match(await plain.locator('#hcn-error').innerText(), /check digit/);
  assert.equal(await plain.locator('#family').inputValue(), 'Okonkwo', 'what was typed is kept');
  await shot(plain, 'register-refused-by-server');
  await noScript.close();

  step('registration: the right number registers the patient');
  await page.fill('#hcn', CARD);
  await page.locator('#hcn').blur();
  assert.match(await page.locator('#hcn-hint').innerText(), /Check digit is valid/);
  await submit(page, 'Register patient');
  assert.match(new URL(page.url()).pathname, /^\/patients\/[0-9a-f-]{36}$/);
  const chartUrl = new URL(page.url()).pathname;
  const patientId = chartUrl.split('/').pop();
  assert.match(await page.locator('[role=status]').first().innerText(), /Registered with chart number \d+/);
  const chartNumber = (await page.locator('[role=status]').first().innerText()).match(/(\d+)/)[1];
  const banner = page.locator('.patient-banner');
  assert.match(await banner.innerText(), /OKONKWO, Adaeze Ngozi/);
  assert.match(await banner.innerText(), /Female/);
  assert.match(await banner.innerText(), new RegExp(`${CARD.slice(0, 4)} ${CARD.slice(4, 7)} ${CARD.slice(7)} KT`));
  assert.match(await banner.innerText(), new RegExp(`Chart\\s*${chartNumber}`));
  assert.match(await page.locator('main').first().innerText(), /M5S 1G4/);
  assert.match(await page.locator('main').first().innerText(), /Dr\. Amelia Lee/);
  await shot(page, 'chart-after-registration');

  // ---------------------------------------------------------------------------------------
  step('possible duplicates: the same name and birth date');
  await page.goto('/patients/new');
  await fillPatient(page, { given: 'Adaeze', family: 'Okonkwo', birthDate: BORN });
  await page.locator('#birthDate').blur();
  await page.locator('#dup-name').waitFor({ state: 'visible' });
  assert.match(await page.locator('#dup-name').innerText(), /Possible duplicate/);
  await page.fill('#hcn', CARD2);
  await submit(page, 'Register patient');
  assert.match(await page.locator('.warning[role=alert]').innerText(), /Possible duplicate/);
  assert.match(await page.locator('.warning[role=alert]').innerText(), new RegExp(`chart ${chartNumber}`));
  await page.getByRole('button', { name: 'Register anyway' }).waitFor();
  await shot(page, 'register-possible-duplicate');

  step('possible duplicates: the same health card is refused');
  await page.goto('/patients/new');
  await fillPatient(page, { given: 'Someone', family: 'Else', birthDate: '1990-01-01' });
  await page.fill('#hcn', CARD);
  await page.locator('#hcn').blur();
  await page.locator('#dup-card').waitFor({ state: 'visible' });
  assert.match(await page.locator('#dup-card').innerText(), /already registered/);
  await submit(page, 'Register patient');
  assert.match(await page.locator('.error[role=alert]').first().innerText(), new RegExp(`already belongs to chart ${chartNumber}`));
  assert.match(await page.locator('#hcn-error').innerText(), /already registered/);
  await shot(page, 'register-same-card-refused');

  // ---------------------------------------------------------------------------------------
  step('search: find the patient by name, by chart number and by health card');
  await page.goto('/patients');
  await page.fill('#q-name', 'okon ada');
  await submit(page, 'Search');
  const row = page.locator('tbody tr', { hasText: 'OKONKWO, Adaeze Ngozi' }).filter({ hasText: chartNumber });
  assert.equal(await row.count(), 1);
  await shot(page, 'search-by-name');
  await page.goto('/patients');
  await page.fill('#q-number', chartNumber);
  await submit(page, 'Search');
  assert.equal(await page.locator('tbody tr').count(), 1);
  await page.goto(`/patients?number=${CARD.slice(0, 4)}%20${CARD.slice(4)}`);
  assert.equal(await page.locator('tbody tr', { hasText: 'OKONKWO' }).count(), 1);
  assert.match(await page.locator('tbody tr').innerText(), new RegExp(chartNumber));
  await page.locator('tbody tr', { hasText: 'OKONKWO' }).getByRole('link', { name: /OKONKWO/ }).click();
  await page.waitForURL(`**${chartUrl}`);

  // ---------------------------------------------------------------------------------------
  step('a stale edit is explained, not lost');
  const mine = page;
  await mine.goto(`${chartUrl}/edit`);
  const theirs = await desk.newPage();
  await theirs.goto(`${chartUrl}/edit`);
  await theirs.fill('#phone_mobile', '647-555-0199');
  await theirs.fill('#phone_home', '416-555-0100');
  await submit(theirs, 'Save changes');
  assert.match(await theirs.locator('[role=status]').first().innerText(), /Changes saved/);
  await theirs.close();
  await mine.fill('#email', 'adaeze@example.org');
  await mine.fill('#phone_home', '416-555-0177');
  await submit(mine, 'Save changes');
  const warning = await mine.locator('.warning[role=alert]').innerText();
  assert.match(warning, /changed by someone else/);
  assert.equal(await mine.inputValue('#email'), 'adaeze@example.org', 'my change is kept');
  assert.equal(await mine.inputValue('#phone_mobile'), '647-555-0199', 'their change is taken in');
  assert.equal(await mine.inputValue('#phone_home'), '416-555-0177', 'both changed: mine stays');
  assert.match(await mine.locator('.diff').innerText(), /On file now: 416-555-0100/);
  await shot(mine, 'edit-stale-explained');
  await submit(mine, 'Save changes');
  const facts = await mine.locator('main').first().innerText();
  assert.match(facts, /adaeze@example\.org/);
  assert.match(facts, /647-555-0199/);
  assert.match(facts, /416-555-0177/);
  await shot(mine, 'chart-after-merge');

  step('an inactive chart is marked');
  await mine.goto(`${chartUrl}/edit`);
  await mine.uncheck('#active');
  await submit(mine, 'Save changes');
  assert.match(await mine.locator('.patient-banner').innerText(), /INACTIVE CHART/);
  await mine.goto('/patients?name=okonkwo');
  assert.match(await mine.locator('tbody tr', { hasText: 'OKONKWO, Adaeze' }).filter({ hasText: chartNumber }).innerText(), /Inactive/);
  await shot(mine, 'search-inactive-marked');
  await mine.goto(`${chartUrl}/edit`);
  await mine.check('#active');
  await submit(mine, 'Save changes');

  // ---------------------------------------------------------------------------------------
  step('reception sets Dr. Lee\'s hours in the schedule\'s set-up');
  await mine.locator('header.shell nav').getByRole('link', { name: 'Schedule' }).click();
  await mine.waitForURL('**/plugins/scheduling/');
  await mine.getByRole('link', { name: /^Set-up/ }).click();
  await mine.waitForURL('**/plugins/scheduling/setup/hours');
  assert.equal(await mine.inputValue('#h-who'), 'drlee');
  // All day, every day: the script runs at any hour.
  await mine.fill('#d1', '00:00-12:00, 11:00-24:00');
  await submit(mine, 'Save hours');
  assert.match(await mine.locator('.plugin-frame [role=alert]').first().innerText(), /Nothing was saved: Monday: 00:00-12:00 overlaps 11:00-24:00/);
  await shot(mine, 'setup-hours-refused');
  for (let d = 1; d <= 7; d++) await mine.fill(`#d${d}`, '00:00-24:00');
  await submit(mine, 'Save hours');
  assert.match(await mine.locator('.plugin-frame [role=status]').first().innerText(), /Hours saved/);
  assert.equal(await mine.inputValue('#d3'), '00:00-24:00');

  step('reception books the patient by clicking a free slot on the grid');
  await mine.getByRole('link', { name: 'Back to the schedule' }).click();
  await mine.waitForURL('**/plugins/scheduling/');
  const grid = mine.locator('table.grid');
  assert.match(await grid.locator('thead').innerText(), /Dr\. Amelia Lee/);
  assert.ok(await mine.getByRole('link', { name: 'Next day →' }).isVisible());
  assert.ok(await mine.getByRole('link', { name: 'Today' }).isVisible());
  // The site's clock, and a free slot of Dr. Lee's today close enough for the kiosk (it takes
  // check-ins from two hours before an appointment to three after).
  const settings = await (await mine.request.get('/plugins/scheduling/api/settings')).json();
  const nowMin = Number(settings.now.slice(11, 13)) * 60 + Number(settings.now.slice(14, 16));
  const minutes = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
  const free = await mine.locator(`a.slot-free[data-provider=drlee][data-date="${settings.today}"]`)
    .evaluateAll((as) => as.map((a) => a.dataset.start));
  const later = free.filter((t) => minutes(t) >= nowMin + 10 && minutes(t) <= nowMin + 100);
  const earlier = free.filter((t) => minutes(t) < nowMin + 10 && minutes(t) >= nowMin - 150).reverse();
  const slots = later.length >= 2 ? later : earlier;
  assert.ok(slots.length >= 2, `two free slots near ${settings.now}: ${free}`);
  const [bookAt, moveTo] = later.length >= 2 ? [slots[0], slots[1]] : [slots[1], slots[0]];
  await shot(mine, 'appointment-book-grid');
  await mine.locator(`a.slot-free[data-provider=drlee][data-date="${settings.today}"][data-start="${bookAt}"]`).click();
  await mine.waitForURL('**/plugins/scheduling/book?**');
  assert.equal(await mine.inputValue('#start'), bookAt, 'the slot\'s time is filled in');
  assert.equal(await mine.inputValue('#date'), settings.today);
  assert.equal(await mine.inputValue('#provider'), 'drlee');
  await mine.fill('#q', 'okonkwo adaeze');
  await submit(mine, 'Find patient');
  const match = mine.locator('table.matches tbody tr', { hasText: 'Okonkwo, Adaeze Ngozi' }).filter({ hasText: chartNumber });
  assert.equal(await match.count(), 1);
  await shot(mine, 'booking-patient-search');
  await match.getByRole('link', { name: 'Choose' }).click();
  await mine.waitForLoadState('load');
  assert.match(await mine.locator('#chosen-patient').innerText(), /Booking for Okonkwo, Adaeze Ngozi/);
  assert.equal(await mine.inputValue('#start'), bookAt, 'the slot is kept while choosing');
  await mine.fill('#reason', 'Headaches');
  await submit(mine, 'Book');
  assert.match(await mine.locator('.plugin-frame [role=status]').first().innerText(),
    new RegExp(`Booked ${settings.today} ${bookAt}`));
  await shot(mine, 'booked');
  await mine.getByRole('link', { name: 'Schedule' }).last().click();
  await mine.waitForURL('**/plugins/scheduling/?date=**');
  const booked = mine.locator('table.grid .appt', { hasText: 'Okonkwo, Adaeze Ngozi' });
  assert.equal(await booked.count(), 1, 'the grid shows the booking');
  assert.match(await booked.innerText(), /Headaches/);

  step('reception reschedules the appointment; its page keeps the move');
  await booked.getByRole('link', { name: 'details' }).click();
  await mine.waitForURL('**/plugins/scheduling/appointments/**');
  const appointmentUrl = new URL(mine.url()).pathname;
  await mine.getByRole('link', { name: 'Choose a free slot on the schedule' }).click();
  await mine.waitForURL('**move=**');
  assert.match(await mine.locator('.plugin-frame [role=status]').first().innerText(), /Moving Okonkwo, Adaeze Ngozi/);
  await shot(mine, 'reschedule-choose-slot');
  await Promise.all([
    mine.waitForURL(`**${appointmentUrl}?moved=1`),
    mine.getByRole('button', { name: `Move here: ${settings.today} ${moveTo} with Dr. Amelia Lee` }).click(),
  ]);
  assert.match(await mine.locator('.plugin-frame [role=status]').first().innerText(),
    new RegExp(`Moved to ${settings.today} ${moveTo}`));
  const moves = await mine.locator('section[aria-labelledby=moves-h] tbody tr').allInnerTexts();
  assert.equal(moves.length, 1, `${moves}`);
  assert.match(moves[0], new RegExp(`${settings.today} ${bookAt}.*${settings.today} ${moveTo}.*reception`, 's'));
  await shot(mine, 'rescheduled-history');

  // ---------------------------------------------------------------------------------------
  step('errors are pages in the shell');
  let res = await mine.goto('/plugins/no-such-plugin/');
  assert.equal(res.status(), 404);
  assert.match(await mine.locator('h1').innerText(), /Not found/);
  assert.match(await mine.locator('[role=alert]').innerText(), /no-such-plugin/);
  assert.ok(await mine.locator('header.shell nav').isVisible(), 'the shell is there');
  res = await mine.goto('/patients/00000000-0000-0000-0000-000000000000');
  assert.equal(res.status(), 404);
  await mine.goto('/');
  await mine.selectOption('#site-switch', 'north');
  await submit(mine, 'Switch site');
  assert.match(await mine.locator('header.shell .clinic').innerText(), /North York Clinic/);
  res = await mine.goto('/plugins/scheduling/');
  assert.equal(res.status(), 404);
  assert.match(await mine.locator('[role=alert]').innerText(), /No plugin 'scheduling' is enabled at site 'north'/);
  await shot(mine, 'error-plugin-not-at-this-site');
  await mine.selectOption('#site-switch', 'main');
  await submit(mine, 'Switch site');

  // ---------------------------------------------------------------------------------------
  step('plugin pages are framed in the shell and print without it');
  await mine.locator('header.shell nav').getByRole('link', { name: 'Schedule' }).click();
  await mine.waitForURL('**/plugins/scheduling/');
  assert.ok(await mine.locator('header.shell nav').isVisible());
  assert.equal(await mine.locator('header.shell nav a[aria-current=page]').innerText(), 'Schedule');
  assert.match(await mine.locator('.plugin-frame h1').innerText(), /Schedule/);
  await shot(mine, 'plugin-page-in-shell');
  await mine.getByRole('link', { name: 'Dr. Amelia Lee' }).first().click();
  await mine.waitForURL('**/plugins/scheduling/day**');
  await mine.emulateMedia({ media: 'print' });
  assert.equal(await mine.locator('header.shell nav').isVisible(), false, 'no navigation on paper');
  assert.equal(await mine.locator('header.shell .who').isVisible(), false);
  assert.ok(await mine.locator('header.shell .clinic').isVisible(), 'the clinic is on paper');
  await shot(mine, 'day-sheet-print');
  await mine.emulateMedia({ media: 'screen' });

  // ---------------------------------------------------------------------------------------
  step('the kiosk checks the patient in and cannot leave its screen');
  const kioskContext = await newContext();
  const kiosk = await signIn(kioskContext, USERS.kiosk, '/plugins/kiosk/');
  assert.equal(await kiosk.locator('header.shell nav').count(), 0, 'no navigation');
  assert.equal(await kiosk.locator('#site-switch').count(), 0, 'no site switch');
  assert.equal(await kiosk.getByRole('button', { name: 'Sign out' }).count(), 0, 'no sign-out');
  assert.ok(await kiosk.getByLabel('Health card number').isVisible());
  await shot(kiosk, 'kiosk-screen');
  // The patient booked this morning checks in.
  await kiosk.fill('#health-card', CARD);
  await kiosk.fill('#version-code', 'KT');
  await kiosk.fill('#birth-date', BORN);
  await submit(kiosk, 'Check in');
  assert.match(await kiosk.locator('[role=status]', { hasText: 'checked in' }).innerText(),
    new RegExp(`You are checked in for ${moveTo} with Dr\\. Amelia Lee`));
  await shot(kiosk, 'kiosk-checked-in');
  for (const where of ['/', '/patients', `${chartUrl}`, '/admin/users', '/plugins/scheduling/',
    '/plugins/prescribing/', '/kiosk', '/plugins/no-such-plugin/']) {
    await kiosk.goto(where);
    assert.equal(new URL(kiosk.url()).pathname, '/plugins/kiosk/', `${where} leads back to the kiosk`);
  }
  await kioskContext.close();

  // ---------------------------------------------------------------------------------------
  step('the physician opens the day sheet and the chart from it: the encounter panels');
  const clinic = await newContext();
  const doc = await signIn(clinic, USERS.physician, '/');
  await doc.locator('header.shell nav').getByRole('link', { name: 'Schedule' }).click();
  await doc.getByRole('link', { name: 'Dr. Amelia Lee' }).first().click();
  await doc.waitForURL('**/plugins/scheduling/day**');
  const line = doc.locator('table.sheet tbody tr', { hasText: 'Okonkwo, Adaeze Ngozi' });
  assert.match(await line.innerText(), /Here/, 'checked in at the kiosk');
  await shot(doc, 'day-sheet-physician');
  await line.getByRole('link', { name: 'Okonkwo, Adaeze Ngozi' }).click();
  await doc.waitForURL(`**${chartUrl}`);
  const panel = (id) => doc.locator(`section.panel[data-panel=${id}]`);
  // A panel's content is in its own shadow root (locators pierce it; innerText does not).
  const inPanel = (id) => panel(id).locator('main').first().innerText();
  await panel('notes').waitFor();
  assert.match(await inPanel('notes'), /No notes yet/);
  assert.match(await inPanel('measurements'), /No measurements yet/);
  await shot(doc, 'chart-panels-empty');

  step('the physician records a blood pressure; an impossible one is refused');
  await panel('notes').getByRole('link', { name: 'Write a note' }).click();
  await doc.waitForURL(`**/plugins/encounter/patients/${patientId}`);
  assert.match(await doc.locator('.patient-banner').innerText(), /OKONKWO, Adaeze Ngozi/);
  await doc.locator('summary', { hasText: 'Record measurements' }).click();
  await doc.fill('#m-systolic', '120');
  await doc.fill('#m-diastolic', '130');
  await submit(doc, 'Record');
  assert.match(await doc.locator('.plugin-frame [role=alert]').first().innerText(), /diastolic: 130 is not below the systolic 120/);
  assert.equal(await doc.inputValue('#m-diastolic'), '130', 'what was typed is kept');
  await shot(doc, 'measurement-refused');
  await doc.fill('#m-systolic', '138');
  await doc.fill('#m-diastolic', '86');
  await doc.fill('#m-weight', '72.5');
  await doc.fill('#m-height', '168');
  await submit(doc, 'Record');
  const table = await doc.locator('#measurements').innerText();
  assert.match(table, /138\/86/);
  assert.match(table, /25\.7/, 'the BMI, computed');
  await shot(doc, 'measurements-recorded');

  step('the physician writes a SOAP note and signs it');
  await doc.getByRole('link', { name: 'Write a SOAP note instead' }).click();
  await doc.fill('#note-subjective', 'Headaches for two weeks, worse in the morning.');
  await doc.fill('#note-objective', 'BP 138/86. Neurological exam normal.');
  await doc.fill('#note-assessment', 'Tension-type headache; BP above target.');
  await doc.fill('#note-plan', 'Home BP log for two weeks, then review.');
  await submit(doc, 'Save draft');
  assert.match(await doc.locator('.plugin-frame .badge').first().innerText(), /draft/);
  await shot(doc, 'note-draft');
  await submit(doc, 'Sign note');
  assert.match(await doc.locator('.plugin-frame [role=status]').first().innerText(), /Note signed/);
  assert.match(await doc.locator('.plugin-frame .badge').first().innerText(), /signed/);
  assert.equal(await doc.getByRole('button', { name: 'Sign note' }).count(), 0, 'signed: locked');

  step('the physician amends the signed note and sees its history');
  await doc.fill('#amend-reason', 'BP re-measured after rest');
  await doc.fill('#note-objective', 'BP 132/84 after ten minutes of rest. Neurological exam normal.');
  await submit(doc, 'Sign amendment');
  assert.match(await doc.locator('.plugin-frame [role=status]').first().innerText(), /Amendment signed/);
  const history = await doc.locator('section[aria-labelledby=hist-h]').innerText();
  assert.match(history, /Version 2 \(current\)/);
  assert.match(history, /Reason: BP re-measured after rest/);
  assert.match(history, /Version 1/);
  assert.match(history, /BP 138\/86\. Neurological exam normal\./, 'the first version is kept');
  await shot(doc, 'note-amended-history');

  step('the chart shows the note and the measurements');
  await doc.goto(chartUrl);
  assert.match(await inPanel('notes'), /Headaches for two weeks/);
  assert.match(await inPanel('notes'), /amended/);
  assert.match(await inPanel('measurements'), /138\/86 mmHg/);
  assert.match(await inPanel('measurements'), /25\.7/);
  await shot(doc, 'chart-with-panels');

  step('the physician prescribes from the chart, overriding an interaction');
  await panel('medications').getByRole('link', { name: 'Medication list and prescribing' }).click();
  await doc.waitForURL(`**/plugins/prescribing/patients/${patientId}**`);
  const prescribe = async (query, din, sig, extra = {}) => {
    await doc.fill('#q', query);
    await submit(doc, 'Search the drug reference');
    await doc.locator(`input[name=din][value="${din}"]`).check();
    await doc.fill('#p-sig', sig);
    for (const [k, v] of Object.entries(extra)) await doc.fill(k, v);
    await submit(doc, 'Prescribe');
  };
  await prescribe('ibuprofen', '99000031', '1 tab PO TID x 7 days');
  assert.match(await doc.locator('.plugin-frame [role=status]').first().innerText(), /Prescribed Ibuprofen/);
  await prescribe('warf', '99000011', '1 tab PO OD', { '#p-qty': '30 tablets' });
  const checks = await doc.locator('.plugin-frame section[aria-label=Checks]').innerText();
  assert.match(checks, /override reason required/);
  assert.match(checks, /interaction/i);
  assert.match(await doc.locator('.plugin-frame [role=alert]').first().innerText(), /give an override reason/);
  assert.ok(await doc.locator('input[name=din][value="99000011"]').isChecked(), 'the drug stays chosen');
  await shot(doc, 'prescribe-interaction-warning');
  await doc.fill('#p-ov', 'Ibuprofen stops in 7 days; INR check booked');
  await submit(doc, 'Prescribe');
  const done = await doc.locator('.plugin-frame [role=status]').first().innerText();
  assert.match(done, /Prescribed Warfarin/);
  assert.match(done, /Override reason: Ibuprofen stops in 7 days/);
  await shot(doc, 'prescribed-with-override');

  step('the physician prints the prescription');
  await doc.getByRole('link', { name: 'Print active prescriptions' }).click();
  await doc.waitForURL(`**/plugins/prescribing/patients/${patientId}/print`);
  await doc.emulateMedia({ media: 'print' });
  assert.equal(await doc.locator('header.shell nav').isVisible(), false, 'no navigation on paper');
  assert.equal(await doc.locator('header.shell .who').isVisible(), false, 'no user menu on paper');
  const paper = await doc.locator('.plugin-frame main').first().innerText();
  assert.match(paper, /Warfarin/);
  assert.match(paper, /Ibuprofen/);
  assert.match(paper, /OKONKWO|Okonkwo/);
  await shot(doc, 'prescription-print');
  await doc.pdf({ path: path.join(shots, 'prescription.pdf'), format: 'Letter' });
  await doc.emulateMedia({ media: 'screen' });

  step('a failing panel shows "unavailable"; a disabled plugin\'s panels disappear');
  const ops = await newContext();
  const op = await signIn(ops, USERS.admin, '/');
  const toggle = async (label) => {
    await op.goto('/admin/plugins');
    await op.locator('.card', { hasText: 'Faulty panels' }).locator('tr', { hasText: 'Main Street Clinic' })
      .getByRole('button', { name: label }).click();
    await op.waitForLoadState('load');
    assert.match(await op.locator('[role=status]').first().innerText(), /faulty/);
  };
  await toggle('Enable');
  await doc.goto(chartUrl);
  assert.match(await panel('broken').innerText(), /Unavailable: the plugin stopped with an error/);
  assert.match(await panel('slow').innerText(), /Unavailable: it did not answer within \d+ ms/);
  assert.match(await inPanel('notes'), /Headaches for two weeks/, 'the rest renders');
  await shot(doc, 'chart-failing-panels');
  await toggle('Disable');
  await doc.goto(chartUrl);
  assert.equal(await doc.locator('section.panel[data-plugin=faulty]').count(), 0);
  assert.match(await inPanel('notes'), /Headaches for two weeks/);
  await shot(doc, 'chart-plugin-disabled');
  await ops.close();
  await clinic.close();

  // ---------------------------------------------------------------------------------------
  step('the administrator adds a user, changes and disables them');
  const office = await newContext();
  const admin = await signIn(office, USERS.admin, '/');
  await admin.getByRole('link', { name: 'Administration' }).first().click();
  await admin.getByRole('link', { name: /^Users/ }).click();
  await admin.waitForURL('**/admin/users');
  await admin.fill('#username', RAY);
  await admin.fill('#display_name', 'Ray Singh, RN');
  await admin.fill('#password', 'a-long-enough-password');
  await admin.check('input[name=role][value=nurse]');
  await admin.check('input[name=site][value=main]');
  await submit(admin, 'Add user');
  assert.match(await admin.locator('[role=status]').innerText(), new RegExp(`Added ${RAY}`));
  assert.match(await admin.locator('tbody tr', { hasText: RAY }).innerText(), /nurse/);
  await shot(admin, 'admin-user-added');
  await admin.getByRole('link', { name: RAY }).click();
  await admin.check('input[name=site][value=north]');
  await submit(admin, 'Save');
  assert.match(await admin.locator('[role=status]').innerText(), /Saved/);
  await submit(admin, 'Disable');
  assert.match(await admin.locator('[role=status]').innerText(), /disabled/);
  await shot(admin, 'admin-user-disabled');
  // A disabled user cannot sign in.
  const rayContext = await newContext();
  const ray = await rayContext.newPage();
  await ray.goto('/login');
  await ray.fill('#username', RAY);
  await ray.fill('#password', 'a-long-enough-password');
  await submit(ray, 'Sign in');
  assert.match(await ray.locator('[role=alert]').innerText(), /wrong/);
  await rayContext.close();

  step('the administrator filters the audit trail');
  await admin.goto('/admin/audit');
  await submit(admin, 'Verify the whole chain');
  assert.match(await admin.locator('[role=status]').first().innerText(), /The trail is intact/);
  await admin.fill('#a-actor', 'reception');
  await submit(admin, 'Show entries');
  const byReception = await admin.locator('table.audit').innerText();
  assert.match(byReception, /patient\.create/);
  assert.match(byReception, /patient\.search/);
  await admin.goto('/admin/audit');
  await admin.fill('#a-patient', chartNumber);
  await admin.fill('#a-actor', 'reception');
  await submit(admin, 'Show entries');
  const rows = admin.locator('table.audit tbody tr');
  assert.ok((await rows.count()) >= 5, 'create, reads and updates of the chart');
  const actions = await admin.locator('table.audit tbody tr td:nth-child(4)').allInnerTexts();
  assert.ok(actions.includes('patient.create') && actions.includes('patient.update') && actions.includes('patient.read'), `${actions}`);
  for (const title of await admin.locator('table.audit tbody tr td:nth-child(6) a').evaluateAll((as) => as.map((a) => a.title))) {
    assert.equal(title, patientId);
  }
  await shot(admin, 'audit-by-patient-and-user');
  await office.close();
  await desk.close();
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
