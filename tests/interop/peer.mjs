#!/usr/bin/env node
// Reference Yjs peer for the okrhub interop tests.
//
//   node peer.mjs --url ws://127.0.0.1:PORT/sync --room ROOM --name NAME
//                 [--expect a,b] [--expect-keys a,b] [--timeout-ms 20000] [--token JWT]
//
// Connects with the stock y-websocket client, writes one map entry and one
// text insertion, waits until every --expect peer is visible (map key + awareness)
// and every --expect-keys key is in the map (whoever is present),
// then prints ONE JSON line: {"ready":true,"map":{..},"title":"..","awareness":[..],"clientID":N}.
// Afterwards it obeys stdin commands, one per line:
//   dump             -> another {"ready":true,...} line with the current state
//   set KEY VALUE    -> map 'interop' KEY = VALUE (VALUE is the rest of the line), prints {"ok":true}
//   quit / EOF       -> provider.destroy(), exit 0 once the socket is closed
// Only JSON goes to stdout; diagnostics go to stderr.

import { parseArgs } from 'node:util'
import readline from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

let name // set once the CLI is parsed; used in log prefixes
const log = (...args) => console.error(`[peer ${name ?? '?'}]`, ...args)

// Write one JSON line, then exit once it has been flushed (stdout may be a pipe).
const finish = (code, obj) => {
  process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(code))
}
const fail = (err, extra = {}) => {
  if (err?.stack) console.error(err.stack)
  finish(1, { error: String(err?.message ?? err), ...extra })
}

process.on('uncaughtException', (err) => fail(err))
process.on('unhandledRejection', (err) => fail(err))

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    room: { type: 'string' },
    name: { type: 'string' },
    expect: { type: 'string', default: '' },
    'expect-keys': { type: 'string', default: '' },
    token: { type: 'string', default: '' },
    'timeout-ms': { type: 'string', default: '20000' }
  }
})
name = opts.name
for (const k of ['url', 'room', 'name']) {
  if (!opts[k]) throw new Error(`missing required --${k}`)
}
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean)
const expected = list(opts.expect)
const expectedKeys = list(opts['expect-keys'])
const timeoutMs = Number(opts['timeout-ms'])
if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new Error('bad --timeout-ms')

const doc = new Y.Doc()
const map = doc.getMap('interop')
const title = doc.getText('title')
// The provider connects to `${url}/${room}`; the okrhub server routes on that path.
// disableBc: no BroadcastChannel shortcut, everything must go through the server.
const provider = new WebsocketProvider(opts.url, opts.room, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  // A signed token goes as ?token=, the way a browser app passes it.
  params: opts.token ? { token: opts.token } : {}
})
const awareness = provider.awareness
awareness.setLocalState({ user: { name } })

// Current view of the world, used by the ready line, `dump` and error reports.
const awarenessNames = () =>
  [...awareness.getStates().values()]
    .map((s) => s?.user?.name)
    .filter((n) => typeof n === 'string')
    .sort()
const snapshot = () => ({
  map: map.toJSON(),
  title: title.toString(),
  awareness: awarenessNames(),
  clientID: doc.clientID
})
const printState = () =>
  process.stdout.write(JSON.stringify({ ready: true, ...snapshot() }) + '\n')

provider.on('status', ({ status }) => log('status', status))
provider.on('connection-error', (ev) => log('connection error', ev?.message ?? ev?.type ?? ev))
provider.on('connection-close', (ev) => log('connection closed', ev?.code ?? '(local)', ev?.reason ?? ''))

let written = false // own entries written (after the first sync)
let ready = false // ready line printed

const timer = setTimeout(() => {
  fail(`timeout after ${timeoutMs}ms waiting for sync/expected peers`, {
    synced: provider.synced,
    wrote: written,
    expect: expected,
    expectKeys: expectedKeys,
    ...snapshot()
  })
}, timeoutMs)

// Called from every relevant event; does each step at most once.
const progress = () => {
  if (ready || !provider.synced) return
  if (!written) {
    // Only write after the initial sync, so we know we are talking to the server.
    written = true
    doc.transact(() => {
      map.set(name, 'hello from ' + name)
      title.insert(0, name + ';')
    })
    log('synced, wrote own entries')
    // The transaction above fires map.observe -> progress() re-entrantly, which may
    // already have finished; re-check `ready` so the ready line is printed once.
    if (ready) return
  }
  const names = new Set(awarenessNames())
  if (!expected.every((n) => map.has(n) && names.has(n))) return
  if (!expectedKeys.every((k) => map.has(k))) return
  ready = true
  clearTimeout(timer)
  map.unobserve(progress)
  awareness.off('change', progress)
  provider.off('sync', progress)
  printState()
  serveStdin()
}
map.observe(progress)
awareness.on('change', progress)
provider.on('sync', progress)
progress() // in case we were already synced (not expected, but harmless)

let quitting = false
const quit = () => {
  if (quitting) return
  quitting = true
  const ws = provider.ws
  // destroy() sends a null awareness update and closes the socket; the provider
  // drops its own handlers, so we listen on the `ws` object itself for the close.
  provider.destroy()
  if (!ws || ws.readyState === WebSocket.CLOSED) process.exit(0)
  ws.once('close', () => process.exit(0))
  // Don't hang forever if the server never completes the closing handshake.
  setTimeout(() => { log('close handshake timed out, terminating'); ws.terminate() }, 5000).unref()
}

function serveStdin () {
  const rl = readline.createInterface({ input: process.stdin, terminal: false })
  rl.on('line', (line) => {
    const trimmed = line.trim()
    if (trimmed === '') return
    const [cmd, key, ...rest] = trimmed.split(' ')
    if (cmd === 'dump') {
      printState()
    } else if (cmd === 'set' && key) {
      map.set(key, rest.join(' '))
      process.stdout.write('{"ok":true}\n')
    } else if (cmd === 'quit') {
      rl.close()
    } else {
      // Not fatal: report and keep serving.
      process.stdout.write(JSON.stringify({ ok: false, error: `unknown command: ${trimmed}` }) + '\n')
    }
  })
  rl.on('close', quit) // `quit` closes rl too, so EOF and `quit` share one path
}
