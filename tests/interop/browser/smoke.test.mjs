// The harness itself works: Chromium starts, the token cookie signs the page in, pages render,
// screenshots are real, axe runs under the pages' CSP, and the server restarts under an open
// page, which reconnects.

import { axe, done, env, formatViolations, launch, newPage, percentile, restartServer, screenshot, step } from './harness.mjs'

const { url } = env()
const room = 'acme.sales.2026-Q3'
const browser = await launch()
const page = await newPage(browser, { user: 'ann' })

await step('the room picker renders', async () => {
  await page.goto(`${url}/`)
  await page.locator('h1').first().waitFor({ state: 'visible' })
  await page.waitForFunction(() => document.readyState === 'complete')
  const title = await page.title()
  if (!title.trim()) throw new Error('the page title is empty')
  console.log(`  title: ${title}`)
  await screenshot(page, 'smoke-index')
})

await step('the cookie signs the page in', async () => {
  const session = await page.evaluate(async () => (await fetch('/api/session')).json())
  console.log(`  /api/session: ${JSON.stringify(session)}`)
  if (!JSON.stringify(session).includes('"ann"')) throw new Error('the session is not ann\'s')
})

await step('axe runs on / under its CSP', async () => {
  const violations = await axe(page)
  if (!Array.isArray(violations)) throw new Error(`axe returned ${typeof violations}, not an array`)
  console.log(`  ${violations.length} axe violation(s)${violations.length ? ':\n  ' + formatViolations(violations) : ''}`)
})

await step('the board goes live', async () => {
  await page.goto(`${url}/web/board.html?room=${room}&user=ann`)
  await page.locator('#conn.live').waitFor()
  await screenshot(page, 'smoke-board')
})

await step('the board reconnects after a server restart', async () => {
  // Record in the page whether the connection indicator ever leaves "live".
  await page.evaluate(() => {
    const conn = document.getElementById('conn')
    window.__okrDropped = false
    new MutationObserver(() => {
      if (!conn.classList.contains('live')) window.__okrDropped = true
    }).observe(conn, { attributes: true, attributeFilter: ['class'] })
  })
  await restartServer()
  await page.waitForFunction(
    () => window.__okrDropped && document.getElementById('conn').classList.contains('live'),
    null,
    { timeout: 30000 }
  )
})

await step('percentile', () => {
  const v = [5, 1, 4, 2, 3]
  const got = [percentile(v, 50), percentile(v, 0), percentile(v, 100), percentile(v, 95)]
  if (JSON.stringify(got) !== '[3,1,5,5]') throw new Error(`percentile gave ${got}`)
})

if (page.okrErrors.length) console.log(`  page errors (not asserted yet):\n  ${page.okrErrors.join('\n  ')}`)
await done()
