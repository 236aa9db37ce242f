// The real-browser harness for scenario scripts (tests/interop/browser/NAME.test.mjs), run by
// tests/browser.rs in Debian's headless Chromium through playwright-core.
//
// A scenario is a plain ES module with top-level `await`:
//
//   import { env, launch, newPage, step, screenshot, axe, assertNoSerious, done } from './harness.mjs'
//
//   const { url } = env()
//   const browser = await launch()
//   const page = await newPage(browser, { user: 'ann' })
//   await step('the room list renders', async () => {
//     await page.goto(`${url}/`)
//     await page.locator('h1').waitFor()
//   })
//   await step('no serious accessibility violation', async () => assertNoSerious(await axe(page)))
//   await done()
//
// `step` runs one named part; when it throws, the harness prints the error (and every page's
// captured console and page errors), closes every browser it launched and exits 1, which fails
// the Rust test (with a screenshot of every open page, FAILED-{scenario}-{n}.png in the
// artifacts). `done()` closes them and exits 0. Every wait is playwright's own waiting on a
// selector or condition: never a fixed sleep.
//
// Run by hand (a server started with --jwt-secret; tokens minted with `okrhub token`):
//
//   OKRHUB_URL=http://127.0.0.1:4680 OKRHUB_TOKENS='{"ann":"eyJ…"}' \
//     node tests/interop/browser/smoke.test.mjs
//
// Environment: OKRHUB_URL (http://127.0.0.1:PORT), OKRHUB_TOKENS (JSON object name → JWT),
// OKRHUB_ARTIFACTS (screenshots; default target/browser-artifacts, created if missing),
// CHROMIUM (the browser; default /usr/bin/chromium), OKRHUB_SCENARIO_TIMEOUT_MS (the whole
// scenario; default 170000), OKRHUB_DRIVER=1 (set by tests/browser.rs: stdin closing means the
// driver is gone, so the scenario stops and closes its browsers).

import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

/** Every browser `launch()` opened and not yet closed. */
const browsers = new Set()
/** Every page `newPage()` made (for the error report). */
const pages = []
let finished = false

// ---------------------------------------------------------------------------------------------
// Environment

let cachedEnv = null

/**
 * The server under test and where artifacts go.
 * @returns {{url: string, tokens: Record<string, string>, artifacts: string}}
 */
export function env () {
  if (cachedEnv) return cachedEnv
  const url = (process.env.OKRHUB_URL ?? '').replace(/\/+$/, '')
  if (!url) throw new Error('OKRHUB_URL is not set (http://127.0.0.1:PORT of a running okrhub)')
  let tokens = {}
  if (process.env.OKRHUB_TOKENS) {
    try {
      tokens = JSON.parse(process.env.OKRHUB_TOKENS)
    } catch (e) {
      throw new Error(`OKRHUB_TOKENS is not a JSON object: ${e.message}`)
    }
  }
  const artifacts = resolve(process.env.OKRHUB_ARTIFACTS ?? join(here, '../../../target/browser-artifacts'))
  mkdirSync(artifacts, { recursive: true })
  cachedEnv = { url, tokens, artifacts }
  return cachedEnv
}

// ---------------------------------------------------------------------------------------------
// Browser and pages

/**
 * Launches headless Chromium (`$CHROMIUM`, else Debian's /usr/bin/chromium).
 * @returns {Promise<import('playwright-core').Browser>}
 */
export async function launch () {
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium'
  let browser
  try {
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] })
  } catch (e) {
    throw new Error(`cannot launch ${executablePath} (install Debian's chromium: ` +
      `apt-get install -y chromium): ${e.message}`)
  }
  browsers.add(browser)
  browser.on('disconnected', () => browsers.delete(browser))
  return browser
}

/**
 * A page in a fresh context (own cookies and storage).
 *
 * - `user`: a name in OKRHUB_TOKENS; the context gets the `okrhub_token` cookie for the server's
 *   host (HttpOnly, SameSite=Strict, path /), exactly what `/login?token=` sets. Without it the
 *   page is anonymous.
 * - `lang`: 'en' or 'zh' → the browser locale 'en-US' or 'zh-CN' (navigator.language,
 *   Accept-Language).
 * - `bypassCSP`: turn off the pages' Content-Security-Policy (only for scripts a scenario injects
 *   with `page.addScriptTag`; `axe()` does not need it).
 *
 * `page.okrErrors` collects, as strings, every console error and uncaught page error; assert it
 * empty with `assertNoErrors(page)`.
 *
 * @param {import('playwright-core').Browser} browser
 * @param {{user?: string, lang?: 'en'|'zh', viewport?: {width: number, height: number},
 *          bypassCSP?: boolean}} [options]
 * @returns {Promise<import('playwright-core').Page & {okrErrors: string[]}>}
 */
export async function newPage (browser, { user, lang = 'en', viewport = { width: 1366, height: 768 }, bypassCSP = false } = {}) {
  const { url, tokens } = env()
  const locale = String(lang).toLowerCase().startsWith('zh') ? 'zh-CN' : 'en-US'
  const context = await browser.newContext({ locale, viewport, bypassCSP })
  if (user !== undefined && user !== null) {
    const token = tokens[user]
    if (!token) {
      throw new Error(`no token for user ${JSON.stringify(user)} in OKRHUB_TOKENS (has: ${Object.keys(tokens).join(', ') || 'none'})`)
    }
    await context.addCookies([{
      name: 'okrhub_token',
      value: token,
      domain: new URL(url).hostname,
      path: '/',
      httpOnly: true,
      secure: false,
      sameSite: 'Strict',
      // Max-Age until the token expires, as /login sets it.
      expires: tokenExpiry(token)
    }])
  }
  const page = await context.newPage()
  page.okrErrors = []
  page.okrUser = user ?? null
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return
    const loc = msg.location()
    const where = loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''
    page.okrErrors.push(`console.error: ${msg.text()}${where}`)
  })
  page.on('pageerror', (err) => {
    page.okrErrors.push(`pageerror: ${err.stack || err.message || String(err)}`)
  })
  pages.push(page)
  return page
}

/** The token's `exp` (unix seconds), or -1 (a session cookie) when it cannot be read. */
function tokenExpiry (token) {
  try {
    const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).exp
    return Number.isFinite(exp) ? exp : -1
  } catch {
    return -1
  }
}

/**
 * Throws when the page logged a console error or threw an uncaught error.
 * @param {{okrErrors: string[]}} page
 * @param {(e: string) => boolean} [ignore] errors for which this returns true are allowed
 */
export function assertNoErrors (page, ignore = () => false) {
  const errors = (page.okrErrors ?? []).filter((e) => !ignore(e))
  if (errors.length) {
    throw new Error(`page ${page.url()} had ${errors.length} error(s):\n  ${errors.join('\n  ')}`)
  }
}

/**
 * A full-page PNG at `${artifacts}/${name}.png`; prints and returns the path.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @returns {Promise<string>}
 */
export async function screenshot (page, name) {
  const path = join(env().artifacts, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  console.log(`  screenshot ${path}`)
  return path
}

// ---------------------------------------------------------------------------------------------
// Accessibility

let axeSource = null

/**
 * Runs axe-core on the page and returns its violations (axe's `Result[]`: id, impact, help,
 * helpUrl, nodes[].target …).
 *
 * axe.min.js is evaluated as a string with `page.evaluate`: that goes through the DevTools
 * protocol, which the page's strict Content-Security-Policy does not apply to, so it works on
 * every context. (`page.addScriptTag({content})` would be an inline script, which the CSP
 * blocks unless the context was made with `bypassCSP: true`.)
 *
 * @param {import('playwright-core').Page} page
 * @param {object} [runOptions] merged into axe.run's options (e.g. `{runOnly: ['wcag2aa']}`)
 * @param {string|object} [context] axe's context (default the whole document)
 * @returns {Promise<Array<{id: string, impact: string|null, help: string, helpUrl: string,
 *                          nodes: Array<{target: string[], html: string, failureSummary?: string}>}>>}
 */
export async function axe (page, runOptions = {}, context = null) {
  if (axeSource === null) {
    axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')
  }
  const present = await page.evaluate(() => typeof window.axe === 'object' && window.axe !== null)
  if (!present) {
    // A string is evaluated as a script (not a function call); axe's UMD wrapper sets window.axe.
    await page.evaluate(`${axeSource}\n;void 0`)
    const ok = await page.evaluate(() => typeof window.axe === 'object' && window.axe !== null)
    if (!ok) throw new Error('axe-core did not load in the page')
  }
  const result = await page.evaluate(
    ([ctx, opts]) => window.axe.run(ctx ?? document, { ...opts, resultTypes: ['violations'] }),
    [context, runOptions]
  )
  return result.violations
}

/** One line per violation and its nodes: for logs and errors. */
export function formatViolations (violations) {
  return violations.map((v) =>
    `${v.id} [${v.impact}] ${v.help} (${v.helpUrl})\n` +
    v.nodes.map((n) => `      ${JSON.stringify(n.target)}${n.failureSummary ? ` — ${n.failureSummary.replace(/\s+/g, ' ')}` : ''}`).join('\n')
  ).join('\n')
}

/**
 * Throws listing every 'serious' or 'critical' violation (id, impact, help, nodes' targets).
 * @param {Awaited<ReturnType<typeof axe>>} violations
 */
export function assertNoSerious (violations) {
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  if (bad.length) {
    throw new Error(`${bad.length} serious or critical accessibility violation(s):\n  ${formatViolations(bad)}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Runner

function log (line) {
  process.stdout.write(`${line}\n`)
}

/** Closes every browser launched here (never throws). */
async function closeAll () {
  await Promise.all([...browsers].map((b) => b.close().catch(() => {})))
  browsers.clear()
}

async function fail (what, err) {
  if (finished) return
  finished = true
  log(`✗ ${what}`)
  console.error(err && err.stack ? err.stack : String(err))
  for (const page of pages) {
    if (page.okrErrors && page.okrErrors.length) {
      console.error(`errors captured on ${page.okrUser ?? 'anonymous'}'s page ${safeUrl(page)}:\n  ${page.okrErrors.join('\n  ')}`)
    }
  }
  await failureScreenshots()
  await closeAll()
  process.exit(1)
}

/** On failure: a screenshot of every open page, `FAILED-{scenario}-{n}.png`. */
async function failureScreenshots () {
  const scenario = basename(process.argv[1] ?? 'scenario').replace(/\.test\.mjs$|\.mjs$/, '')
  let n = 0
  for (const page of pages) {
    n += 1
    if (page.isClosed()) continue
    try {
      const path = join(env().artifacts, `FAILED-${scenario}-${n}.png`)
      await page.screenshot({ path, fullPage: true, timeout: 5000 })
      console.error(`screenshot of ${page.okrUser ?? 'anonymous'}'s page at failure: ${path}`)
    } catch {}
  }
}

function safeUrl (page) {
  try { return page.url() } catch { return '?' }
}

/**
 * Runs one named step: prints it, awaits `fn`, prints its time. On failure prints the error and
 * the pages' captured errors, closes every browser and exits 1.
 * @template T
 * @param {string} name
 * @param {() => Promise<T>|T} fn
 * @returns {Promise<T>}
 */
export async function step (name, fn) {
  const t0 = performance.now()
  log(`▶ ${name}`)
  try {
    const value = await fn()
    log(`✓ ${name} (${Math.round(performance.now() - t0)} ms)`)
    return value
  } catch (err) {
    await fail(`${name} (after ${Math.round(performance.now() - t0)} ms)`, err)
  }
}

/** Ends the scenario successfully: closes every browser and exits 0. */
export async function done () {
  if (finished) return
  finished = true
  await closeAll()
  log('OK')
  process.exit(0)
}

process.on('unhandledRejection', (err) => { fail('unhandled rejection', err) })
process.on('uncaughtException', (err) => { fail('uncaught exception', err) })

const scenarioTimeout = Number(process.env.OKRHUB_SCENARIO_TIMEOUT_MS ?? 170000)
setTimeout(() => {
  fail('scenario timeout', new Error(`the scenario did not finish within ${scenarioTimeout} ms`))
}, scenarioTimeout).unref()

// ---------------------------------------------------------------------------------------------
// Talking to the driver (stdin lines)

const stdinWaiters = []
let stdinReading = false

function readStdin () {
  if (stdinReading) return
  stdinReading = true
  let buffered = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk) => {
    buffered += chunk
    let nl
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).replace(/\r$/, '')
      buffered = buffered.slice(nl + 1)
      const i = stdinWaiters.findIndex((w) => w.line === line)
      if (i >= 0) stdinWaiters.splice(i, 1)[0].resolve()
    }
  })
  process.stdin.on('end', () => {
    const err = new Error('stdin closed: the driver (tests/browser.rs) is gone')
    for (const w of stdinWaiters.splice(0)) w.reject(err)
    if (process.env.OKRHUB_DRIVER === '1') fail('driver gone', err)
  })
}

if (process.env.OKRHUB_DRIVER === '1') readStdin()

/**
 * Restarts the server under test on the same port and data dir: prints `OKRHUB:RESTART` on
 * stdout, then waits for the line `OKRHUB:RESTARTED` on stdin. tests/browser.rs shuts the
 * server down gracefully (every room flushed), starts it again and then answers; open pages
 * see their connections drop and reconnect on their own. Only under the driver (or anything
 * speaking the same two lines).
 * @param {number} [timeoutMs]
 */
export async function restartServer (timeoutMs = 60000) {
  readStdin()
  const answered = new Promise((resolve, reject) => {
    stdinWaiters.push({ line: 'OKRHUB:RESTARTED', resolve, reject })
  })
  log('OKRHUB:RESTART')
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no OKRHUB:RESTARTED on stdin within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    await Promise.race([answered, timeout])
  } finally {
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers

/**
 * The p-th percentile (0–100) of `values` by nearest rank: percentile(v, 50) is the median,
 * percentile(v, 100) the maximum.
 * @param {number[]} values
 * @param {number} p
 * @returns {number}
 */
export function percentile (values, p) {
  if (!values.length) throw new Error('percentile of no values')
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile ${p} is not in 0..100`)
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1]
}

// ---------------------------------------------------------------------------------------------
// The server, as any REST client (scenarios seed rooms and check what was stored this way)

/**
 * POSTs `body` (a command) to `room` as `user` (a name in OKRHUB_TOKENS); its JSON answer, or
 * an error with the status and body.
 */
export async function command (user, room, body) {
  const { url, tokens } = env()
  const r = await fetch(`${url}/api/rooms/${room}/commands`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[user]}` },
    body: JSON.stringify(body)
  })
  const text = await r.text()
  if (!r.ok) throw new Error(`${user} ${body.type} on ${room}: HTTP ${r.status} ${text}`)
  return JSON.parse(text)
}

/** `GET /api/rooms/{room}` as `user` (an admin by default, who reads everything). */
export async function roomView (room, user = 'boss') {
  const { url, tokens } = env()
  const r = await fetch(`${url}/api/rooms/${room}`, { headers: { authorization: `Bearer ${tokens[user]}` } })
  if (!r.ok) throw new Error(`GET ${room}: HTTP ${r.status} ${await r.text()}`)
  return r.json()
}

/**
 * The quarter `offset` quarters from the one `date` is in (UTC): `{year, quarter, cycle,
 * starts, ends}`, `cycle` as `2026-Q4`, the days as `YYYY-MM-DD` (inclusive).
 */
export function quarterOf (date = new Date(), offset = 0) {
  const index = date.getUTCFullYear() * 4 + Math.floor(date.getUTCMonth() / 3) + offset
  const year = Math.floor(index / 4)
  const quarter = (index % 4) + 1
  const pad = (n) => String(n).padStart(2, '0')
  const last = new Date(Date.UTC(year, quarter * 3, 0)).getUTCDate()
  return {
    year,
    quarter,
    cycle: `${year}-Q${quarter}`,
    starts: `${year}-${pad(quarter * 3 - 2)}-01`,
    ends: `${year}-${pad(quarter * 3)}-${pad(last)}`
  }
}
