// The planning board (/rooms/{room}, web/board.js) in a real browser: two people co-edit one
// objective title at once and both keep every keystroke; a KR created on one page shows on the
// other; a check-in with an @mention picked from the completion produces a `mention`; comments
// thread; alignment to another room's objective; a viewer's board has no editing control and
// the server refuses what a forged page sends; axe; screenshots at three sizes in two languages.

import WebSocket from 'ws'
import {
  assertNoErrors, assertNoSerious, axe, command, done, env, launch, newPage, roomView, screenshot, step
} from './harness.mjs'

const { url, tokens } = env()
const room = 'acme.sales.2026-Q3'
const parentRoom = 'acme.all.2026-Q3'
const TIMEOUT = 15000

// ---- REST and /live from Node, with Bearer tokens ----



/** A /live socket of `who`: `next(pred)` waits for a message. */
function live (who, r) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/live/${r}?token=${tokens[who]}`)
  const messages = []
  const waiters = []
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString())
    messages.push(m)
    for (const w of [...waiters]) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m) }
  })
  return {
    ws,
    next: (pred, what) => new Promise((resolve, reject) => {
      const found = messages.find(pred)
      if (found) return resolve(found)
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT)
      waiters.push({ pred, resolve: (m) => { clearTimeout(timer); resolve(m) } })
    })
  }
}

// ---- setup: a cycle, an objective with a KR here, a parent objective in another room ----

let objectiveId, krId, parentId
await step('seed the rooms', async () => {
  await command('boss', room, { type: 'cycle.set', starts: '2026-07-01', ends: '2026-09-30' })
  await command('boss', parentRoom, { type: 'cycle.set', starts: '2026-07-01', ends: '2026-09-30' })
  parentId = (await command('boss', parentRoom, { type: 'objective.create', title: 'Company: 30% more revenue' })).created_id
  objectiveId = (await command('ann', room, { type: 'objective.create', title: 'Win 40 new accounts', owner: 'ann' })).created_id
  krId = (await command('ann', room, {
    type: 'kr.create', objective: objectiveId, title: 'Sign 40 contracts', owner: 'wang',
    metric: { kind: 'increase', start: 0, target: 40, unit: 'deals' }
  })).created_id
  await command('wang', room, { type: 'checkin.create', key_result: krId, value: 8, confidence: 6, comment: 'first deals' })
})

const browser = await launch()
const ann = await newPage(browser, { user: 'ann' })
const wang = await newPage(browser, { user: 'wang' })
const boardUrl = `${url}/rooms/${room}`
const titleOf = (page, id) => page.locator(`[data-testid=objective][data-id="${id}"] [data-testid=title]`)

await step('both boards go live with the title bound to its Y.Text', async () => {
  await Promise.all([ann.goto(boardUrl), wang.goto(boardUrl)])
  for (const page of [ann, wang]) {
    await page.locator('#conn.live').waitFor({ timeout: TIMEOUT })
    await page.locator(`[data-testid=objective][data-id="${objectiveId}"] [data-testid=title][data-bound="1"]`).waitFor({ timeout: TIMEOUT })
    const v = await titleOf(page, objectiveId).inputValue()
    if (v !== 'Win 40 new accounts') throw new Error(`title shows ${JSON.stringify(v)}`)
  }
})

await step('two people type into the same title at once: every keystroke survives', async () => {
  const a = 'AAAAAAAAAAAA'
  const b = 'bbbbbbbbbbbb'
  for (const page of [ann, wang]) {
    await titleOf(page, objectiveId).click()
    await page.keyboard.press('Control+End')
  }
  await Promise.all([ann.keyboard.type(a, { delay: 25 }), wang.keyboard.type(b, { delay: 25 })])
  const ok = (v) => v.startsWith('Win 40 new accounts') &&
    [...v].filter((c) => c === 'A').length === a.length &&
    [...v].filter((c) => c === 'b').length === b.length &&
    v.length === 'Win 40 new accounts'.length + a.length + b.length
  let values = []
  const deadline = Date.now() + TIMEOUT
  while (Date.now() < deadline) {
    values = await Promise.all([titleOf(ann, objectiveId).inputValue(), titleOf(wang, objectiveId).inputValue()])
    if (values[0] === values[1] && ok(values[0])) break
    await ann.waitForTimeout(100)
  }
  if (!(values[0] === values[1] && ok(values[0]))) throw new Error(`the pages show ${JSON.stringify(values)}`)
  // Each typist's own run stays in order: its caret followed its own text.
  if (!values[0].includes(a) && !values[0].replace(/b/g, '').endsWith(a)) throw new Error(`ann's keystrokes out of order: ${values[0]}`)
  let served
  while (Date.now() < deadline + TIMEOUT) {
    served = (await roomView(room)).okr.objectives.find((o) => o.id === objectiveId).title
    if (served === values[0]) break
    await ann.waitForTimeout(100)
  }
  if (served !== values[0]) throw new Error(`GET /api/rooms says ${JSON.stringify(served)}, the pages ${JSON.stringify(values[0])}`)
  console.log(`  title: ${served}`)
})

await step('the awareness marker shows who is editing', async () => {
  // wang's caret is still in the title: ann's page marks the objective.
  await ann.locator(`[data-testid=objective][data-id="${objectiveId}"] > [data-testid=editing]`).filter({ hasText: 'wang' }).waitFor({ timeout: TIMEOUT })
})

let newKr
await step('a KR created on one page shows on the other', async () => {
  const card = ann.locator(`[data-testid=objective][data-id="${objectiveId}"]`)
  await card.locator('[data-testid=add-kr]').click()
  const form = card.locator('[data-testid=kr-form]')
  await form.locator('[name=title]').fill('Keep churn below 3%')
  await form.locator('[name=kind]').selectOption('stay_below')
  await form.locator('[name=threshold]').fill('3')
  await form.locator('[name=unit]').fill('%')
  await form.locator('[type=submit]').click()
  const rows = `[data-testid=objective][data-id="${objectiveId}"] [data-testid=kr]`
  await wang.waitForFunction((sel) => [...document.querySelectorAll(sel)].some((li) => {
    const input = li.querySelector('[data-testid=kr-title]')
    return input.value === 'Keep churn below 3%' && input.dataset.bound === '1'
  }), rows, { timeout: TIMEOUT })
  newKr = await wang.evaluate((sel) => [...document.querySelectorAll(sel)]
    .find((li) => li.querySelector('[data-testid=kr-title]').value === 'Keep churn below 3%').dataset.id, rows)
  // The creator's caret lands in the new KR's title, ready to refine it.
  await ann.waitForFunction((id) => document.activeElement?.closest('[data-testid=kr]')?.dataset.id === id, newKr, { timeout: TIMEOUT })
})

await step('a check-in with @wa completed to @wang produces a mention for wang', async () => {
  const watcher = live('boss', room)
  await watcher.next((m) => m.type === 'snapshot', 'snapshot')
  const row = ann.locator(`[data-testid=kr][data-id="${krId}"]`)
  await row.locator('[data-testid=checkin] > summary').click()
  const form = row.locator('[data-testid=checkin-form]')
  await form.locator('[name=value]').fill('12')
  await form.locator('[data-testid=confidence]').fill('8')
  const comment = form.locator('[data-testid=checkin-comment]')
  await comment.click()
  await ann.keyboard.type('blocked on legal, @wa')
  const option = form.locator('[data-testid=mention-option][data-user=wang]')
  await option.waitFor({ timeout: TIMEOUT })
  const expanded = await comment.getAttribute('aria-expanded')
  if (expanded !== 'true') throw new Error(`aria-expanded is ${expanded}`)
  await ann.keyboard.press('Enter')
  await ann.keyboard.type('please check')
  const text = await comment.inputValue()
  if (text !== 'blocked on legal, @wang please check') throw new Error(`comment is ${JSON.stringify(text)}`)
  await form.locator('[type=submit]').click()
  await form.locator('[data-testid=checkin-result].ok').waitFor({ timeout: TIMEOUT })
  const mention = await watcher.next((m) => m.type === 'mention' && m.user === 'wang', 'a mention of wang')
  if (mention.author !== 'ann') throw new Error(`mention: ${JSON.stringify(mention)}`)
  const ci = (await roomView(room)).okr.checkins.find((c) => c.id === mention.source.checkin)
  if (JSON.stringify(ci.mentions) !== '["wang"]' || ci.confidence !== 8 || ci.value !== 12) throw new Error(`check-in: ${JSON.stringify(ci)}`)
  watcher.ws.close()
})

await step('the KR history chart shows its check-ins', async () => {
  await ann.locator(`[data-testid=kr][data-id="${krId}"] svg[data-testid=history] circle`).first().waitFor({ timeout: TIMEOUT })
})

await step('comments thread: a reply shows under its comment on the other page', async () => {
  const card = ann.locator(`[data-testid=objective][data-id="${objectiveId}"]`)
  const comments = card.locator(':scope > .row-actions > [data-testid=comments]')
  await comments.locator(':scope > summary').click()
  await comments.locator(':scope > form [data-testid=comment-text]').fill('Who owns the legal review? @wang')
  await comments.locator(':scope > form [type=submit]').click()
  await comments.locator(':scope > form [data-testid=comment-result].ok').waitFor({ timeout: TIMEOUT })
  const wcard = wang.locator(`[data-testid=objective][data-id="${objectiveId}"]`)
  const wcomments = wcard.locator(':scope > .row-actions > [data-testid=comments]')
  await wcomments.locator(':scope > summary').click()
  await wcomments.locator('[data-testid=comment] [data-testid=reply]').first().click()
  await wang.keyboard.type('I do, by Friday')
  await wcomments.locator(':scope > form [type=submit]').click()
  await wcomments.locator(':scope > form [data-testid=comment-result].ok').waitFor({ timeout: TIMEOUT })
  await comments.locator('[data-testid=comment] .replies [data-testid=comment]').filter({ hasText: 'I do, by Friday' }).waitFor({ timeout: TIMEOUT })
})

await step('align to an objective of another room of the org and cycle', async () => {
  const card = ann.locator(`[data-testid=objective][data-id="${objectiveId}"]`)
  await card.locator('[data-testid=align]').click()
  const pick = ann.locator(`[data-testid=align-dialog] [data-testid=align-pick][data-room="${parentRoom}"][data-id="${parentId}"]`)
  await pick.click({ timeout: TIMEOUT })
  await ann.locator('[data-testid=align-result].ok').waitFor({ timeout: TIMEOUT })
  await ann.locator('#align-close').click()
  await card.locator('[data-testid=parents]').filter({ hasText: 'Company: 30% more revenue' }).waitFor({ timeout: TIMEOUT })
  const o = (await roomView(room)).okr.objectives.find((x) => x.id === objectiveId)
  if (!o.aligned_to.some((r) => r.room === parentRoom && r.objective === parentId)) throw new Error(`aligned_to: ${JSON.stringify(o.aligned_to)}`)
})

await step('reorder by keyboard: move the new KR up', async () => {
  const row = ann.locator(`[data-testid=kr][data-id="${newKr}"]`)
  await row.locator('[data-testid=move-up]').focus()
  await ann.keyboard.press('Enter')
  await wang.waitForFunction(([o, k]) => document.querySelector(`[data-testid=objective][data-id="${o}"] [data-testid=kr]`)?.dataset.id === k,
    [objectiveId, newKr], { timeout: TIMEOUT })
})

await step('edit a KR\'s metric inline; archive it and undo', async () => {
  const row = ann.locator(`[data-testid=kr][data-id="${newKr}"]`)
  await row.locator('[data-testid=settings] > summary').click()
  const form = row.locator('[data-testid=settings] form')
  await form.locator('[name=threshold]').fill('2')
  await form.locator('[name=why]').fill('tighter after Q2')
  await form.locator('[data-testid=settings-save]').click()
  await form.locator('[data-testid=result].ok').waitFor({ timeout: TIMEOUT })
  let k = (await roomView(room)).okr.key_results.find((x) => x.id === newKr)
  if (k.metric.threshold !== 2) throw new Error(`metric: ${JSON.stringify(k.metric)}`)
  // Saving again without a change sends nothing.
  await form.locator('[data-testid=settings-save]').click()
  await form.locator('[data-testid=result]').filter({ hasText: 'nothing changed' }).waitFor({ timeout: TIMEOUT })
  // Archiving is an admin's: an editor has no archive button, the admin has.
  if (await ann.locator('[data-testid=archive]').count()) throw new Error('an editor sees an archive button')
  const boss = await newPage(browser, { user: 'boss' })
  await boss.goto(boardUrl)
  await boss.locator(`[data-testid=kr][data-id="${newKr}"] [data-testid=archive]`).click({ timeout: TIMEOUT })
  await wang.locator(`[data-testid=kr][data-id="${newKr}"]`).waitFor({ state: 'detached', timeout: TIMEOUT })
  await boss.locator('[data-testid=board-result] button').click()
  await wang.locator(`[data-testid=kr][data-id="${newKr}"]`).waitFor({ timeout: TIMEOUT })
  k = (await roomView(room)).okr.key_results.find((x) => x.id === newKr)
  if (k.archived) throw new Error('still archived after undo')
})

await step('no serious accessibility violation on the editor\'s board', async () => {
  await ann.keyboard.press('Escape')
  assertNoSerious(await axe(ann))
})

await step('a viewer sees no editing controls, and a forged command is refused', async () => {
  const viewer = await newPage(browser, { user: 'screen' })
  await viewer.goto(boardUrl)
  await viewer.locator('#conn.live').waitFor({ timeout: TIMEOUT })
  await viewer.locator(`[data-testid=objective][data-id="${objectiveId}"] [data-testid=kr]`).first().waitFor({ timeout: TIMEOUT })
  const controls = await viewer.evaluate(() => [...document.querySelectorAll(
    'main input, main textarea, main form, main [contenteditable], [data-testid=add-objective]:not([hidden]), [data-testid=add-kr], [data-testid=archive], [data-testid=move-up], [data-testid=checkin], [data-testid=align], [data-testid=reply]'
  )].filter((e) => !e.closest('[hidden]')).map((e) => e.outerHTML.slice(0, 80)))
  if (controls.length) throw new Error(`a viewer sees editing controls: ${controls.join(' | ')}`)
  const answer = await viewer.evaluate(([r, o]) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/live/${r}`)
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data)
      if (m.type === 'snapshot') {
        ws.send(JSON.stringify({ id: 'forged', type: 'kr.create', objective: o, title: 'forged', metric: { kind: 'percent' } }))
      } else if (m.id === 'forged') resolve(m)
    }
    ws.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason}`))
    setTimeout(() => reject(new Error('no answer')), 10000)
  }), [room, objectiveId])
  if (answer.type !== 'error' || answer.code !== 'forbidden') throw new Error(`the forged command got ${JSON.stringify(answer)}`)
  assertNoSerious(await axe(viewer))
  await screenshot(viewer, 'board-viewer-1366x768-en')
  assertNoErrors(viewer)
})

await step('screenshots at 1920×1080, 1366×768 and 390×844 in English and Chinese', async () => {
  for (const lang of ['en', 'zh']) {
    const page = await newPage(browser, { user: 'ann', lang, viewport: { width: 1920, height: 1080 } })
    await page.goto(`${boardUrl}?lang=${lang}`)
    await page.locator('#conn.live').waitFor({ timeout: TIMEOUT })
    await page.locator(`[data-testid=kr][data-id="${krId}"] svg[data-testid=history] circle`).first().waitFor({ timeout: TIMEOUT })
    for (const [w, h] of [[1920, 1080], [1366, 768], [390, 844]]) {
      await page.setViewportSize({ width: w, height: h })
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
      if (overflow > 0) throw new Error(`${w}x${h} ${lang}: the page scrolls sideways by ${overflow} px`)
      await screenshot(page, `board-${w}x${h}-${lang}`)
    }
    // On a phone the check-in form opens and its answer is in view.
    const row = page.locator(`[data-testid=kr][data-id="${krId}"]`)
    await row.locator('[data-testid=checkin] > summary').click()
    await row.locator('[data-testid=checkin-form] [name=value]').fill('14')
    await row.locator('[data-testid=checkin-form] [type=submit]').click()
    const result = row.locator('[data-testid=checkin-result].ok')
    await result.waitFor({ timeout: TIMEOUT })
    await page.waitForFunction((sel) => {
      const r = document.querySelector(sel).getBoundingClientRect()
      return r.top >= 0 && r.bottom <= innerHeight
    }, `[data-testid=kr][data-id="${krId}"] [data-testid=checkin-result]`, { timeout: TIMEOUT })
    await screenshot(page, `board-390x844-${lang}-checkin`)
    if (lang === 'zh') assertNoSerious(await axe(page))
    assertNoErrors(page)
  }
})

await step('no page errors', async () => {
  assertNoErrors(ann)
  assertNoErrors(wang)
})

await done()
