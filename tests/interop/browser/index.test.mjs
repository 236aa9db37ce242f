// The start page (/) in a real browser: who I am; the rooms ann may read (GET /api/rooms),
// grouped by cycle, each linking to its board and screen, and none of another org; creating a
// room from the form (cycle.set) opens its board; errors are shown; signing out; the anonymous
// page explains how to sign in; no serious axe violation; screenshots at three sizes in en and zh.

import {
  assertNoErrors, assertNoSerious, axe, command, done, env, formatViolations, launch, newPage, quarterOf, screenshot, step
} from './harness.mjs'

const { url, tokens } = env()

const { cycle, starts, ends } = quarterOf()
const last = quarterOf(new Date(), -1)
const lastCycle = last.cycle
const quarters = { [cycle]: { starts, ends }, [lastCycle]: last }

const ours = [`acme.sales.${cycle}`, `acme.eng.${cycle}`, `acme.sales.${lastCycle}`]
// Another org's room, seeded by zed (an admin of org globex; tests/browser.rs mints the token).
if (!tokens.zed) throw new Error('OKRHUB_TOKENS lacks zed, the other org\'s admin')
const foreignUser = 'zed'

await step('seed rooms as boss, and one of another org as zed', async () => {
  for (const room of ours) {
    const q = quarters[room.split('.')[2]]
    await command('boss', room, { type: 'cycle.set', kind: 'quarter', starts: q.starts, ends: q.ends })
    await command('boss', room, { type: 'objective.create', title: `Objective of ${room}`, visibility: 'public' })
  }
  await command(foreignUser, `globex.sales.${cycle}`, { type: 'cycle.set', starts, ends })
  // It exists (its own org lists it), so its absence from ann's list below means something.
  const theirs = await (await fetch(`${url}/api/rooms`, { headers: { authorization: `Bearer ${tokens.zed}` } })).json()
  if (!theirs.rooms.some((r) => r.room === `globex.sales.${cycle}`)) throw new Error(`zed does not see globex.sales.${cycle}`)
})

const browser = await launch()
const ann = await newPage(browser, { user: 'ann', viewport: { width: 1366, height: 768 } })

await step('ann sees who she is and the rooms she may read, grouped by cycle', async () => {
  await ann.goto(`${url}/`)
  await ann.locator('body[data-ready="1"]').waitFor({ state: 'attached' })
  await ann.locator('[data-testid=whoami]', { hasText: 'ann' }).waitFor()
  await ann.locator('[data-testid=signout]').waitFor({ state: 'visible' })
  for (const room of ours) await ann.locator(`[data-testid=room][data-room="${room}"]`).waitFor()
  const listed = await ann.locator('[data-testid=room]').evaluateAll((es) => es.map((e) => e.dataset.room))
  console.log(`  listed: ${listed.join(', ')}`)
  const foreign = listed.filter((r) => !r.startsWith('acme.'))
  if (foreign.length) throw new Error(`ann sees another org's rooms: ${foreign}`)
  // Grouped: the current cycle's group holds both of its rooms, the last cycle's the other.
  const groups = await ann.locator('[data-testid=cycle-group]').evaluateAll((gs) => gs.map((g) => ({
    cycle: g.dataset.cycle, rooms: [...g.querySelectorAll('[data-testid=room]')].map((r) => r.dataset.room)
  })))
  const current = groups.find((g) => g.cycle === cycle)
  if (!current || !current.rooms.includes(`acme.sales.${cycle}`) || !current.rooms.includes(`acme.eng.${cycle}`)) {
    throw new Error(`no cycle group ${cycle} with both rooms: ${JSON.stringify(groups)}`)
  }
  if (groups.findIndex((g) => g.cycle === cycle) > groups.findIndex((g) => g.cycle === lastCycle)) {
    throw new Error(`cycles are not newest first: ${groups.map((g) => g.cycle)}`)
  }
  const sales = ann.locator(`[data-testid=room][data-room="acme.sales.${cycle}"]`)
  const board = await sales.locator('[data-testid=board-link]').getAttribute('href')
  const screen = await sales.locator('[data-testid=screen-link]').getAttribute('href')
  if (board !== `/rooms/acme.sales.${cycle}` || screen !== `/rooms/acme.sales.${cycle}/screen`) {
    throw new Error(`links: board ${board}, screen ${screen}`)
  }
})

await step('axe: no serious violation on the signed-in page', async () => {
  const violations = await axe(ann)
  if (violations.length) console.log(`  axe (all impacts):\n  ${formatViolations(violations)}`)
  assertNoSerious(violations)
})

await step('the form shows a bad team name as an error, sending nothing', async () => {
  const form = ann.locator('[data-testid=create-form]')
  await form.locator('input[name=team]').fill('bad team!')
  await form.locator('button[type=submit]').click()
  await ann.locator('[data-testid=create-result].error').waitFor()
  console.log(`  error: ${await ann.locator('[data-testid=create-result]').textContent()}`)
})

await step('the cycle id fills in kind and dates', async () => {
  const form = ann.locator('[data-testid=create-form]')
  await form.locator('input[name=cycle]').fill('2027-H2')
  const got = await form.evaluate((f) => [f.elements.kind.value, f.elements.starts.value, f.elements.ends.value])
  if (JSON.stringify(got) !== JSON.stringify(['half', '2027-07-01', '2027-12-31'])) throw new Error(`2027-H2 gave ${got}`)
  await form.locator('input[name=cycle]').fill('2026-Q1')
  const q1 = await form.evaluate((f) => [f.elements.kind.value, f.elements.starts.value, f.elements.ends.value])
  if (JSON.stringify(q1) !== JSON.stringify(['quarter', '2026-01-01', '2026-03-31'])) throw new Error(`2026-Q1 gave ${q1}`)
})

await step('the index at 1920×1080, 1366×768 and 390×844 in en and zh', async () => {
  for (const lang of ['en', 'zh']) {
    for (const [width, height] of [[1920, 1080], [1366, 768], [390, 844]]) {
      const p = await newPage(browser, { user: 'ann', lang, viewport: { width, height } })
      await p.goto(`${url}/`)
      await p.locator(`[data-testid=room][data-room="acme.sales.${cycle}"]`).waitFor()
      const raw = await p.evaluate(() => /\bindex\.[a-z_.]+\b/.exec(document.body.innerText)?.[0] ?? null)
      if (raw) throw new Error(`untranslated key ${raw} in ${lang}`)
      if (width === 390) assertNoSerious(await axe(p))
      await screenshot(p, `index-${width}x${height}-${lang}`)
      assertNoErrors(p)
      await p.context().close()
    }
  }
})

await step('boss creates a room from the form and lands on its board', async () => {
  const boss = await newPage(browser, { user: 'boss', viewport: { width: 1366, height: 768 } })
  await boss.goto(`${url}/`)
  await boss.locator('body[data-ready="1"]').waitFor({ state: 'attached' })
  const form = boss.locator('[data-testid=create-form]')
  const org = await form.locator('input[name=org]').inputValue()
  if (org !== 'acme') throw new Error(`the org field says ${JSON.stringify(org)}, not the session's acme`)
  await form.locator('input[name=team]').fill('design')
  await form.locator('input[name=cycle]').fill(cycle)
  await Promise.all([
    boss.waitForURL(`${url}/rooms/acme.design.${cycle}`),
    form.locator('button[type=submit]').click()
  ])
  const r = await fetch(`${url}/api/rooms/acme.design.${cycle}`, { headers: { authorization: `Bearer ${tokens.boss}` } })
  const view = await r.json()
  if (view.okr?.cycle?.starts !== starts || view.okr?.cycle?.ends !== ends) {
    throw new Error(`the new room's cycle is ${JSON.stringify(view.okr?.cycle)}`)
  }
  // …and it is listed on the start page.
  await boss.goto(`${url}/`)
  await boss.locator(`[data-testid=room][data-room="acme.design.${cycle}"]`).waitFor()
  await boss.context().close()
})

await step('a refused create (ann, an editor, may not set a cycle) is shown as an error', async () => {
  await ann.goto(`${url}/`)
  await ann.locator('body[data-ready="1"]').waitFor({ state: 'attached' })
  const form = ann.locator('[data-testid=create-form]')
  await form.locator('input[name=team]').fill('ops')
  await form.locator('input[name=cycle]').fill(cycle)
  await form.locator('button[type=submit]').click()
  // Either the server lets an editor create a room (then the board opens) or it refuses and
  // the page says why; it must not sit silent.
  await ann.waitForFunction(() => location.pathname.startsWith('/rooms/') ||
    document.querySelector('[data-testid=create-result]')?.classList.contains('error'))
  if (ann.url().includes('/rooms/')) console.log('  the server let ann (editor) create acme.ops')
  else console.log(`  refused: ${await ann.locator('[data-testid=create-result]').textContent()}`)
})

await step('signing out leaves an anonymous page that explains how to sign in', async () => {
  await ann.goto(`${url}/`)
  await ann.locator('[data-testid=signout]').click()
  await ann.locator('[data-testid=signin]').waitFor({ state: 'visible' })
  if (await ann.locator('[data-testid=room]').count()) throw new Error('rooms listed after signing out')
  const text = await ann.locator('[data-testid=signin]').textContent()
  if (!text.includes('/login?token=')) throw new Error(`the sign-in hint says ${JSON.stringify(text)}`)
})

await step('an anonymous page (no cookie) explains how to sign in; axe is clean', async () => {
  const anon = await newPage(browser, { lang: 'zh', viewport: { width: 390, height: 844 } })
  await anon.goto(`${url}/`)
  await anon.locator('[data-testid=signin]').waitFor({ state: 'visible' })
  assertNoSerious(await axe(anon))
  await screenshot(anon, 'index-signed-out-390x844-zh')
  await anon.context().close()
})

await step('no console errors on ann\'s page (the refused create aside)', async () => {
  assertNoErrors(ann, (e) => /403|Forbidden|401/.test(e))
})

await done()
