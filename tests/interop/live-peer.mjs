#!/usr/bin/env node
// A stock `yjs` + `y-websocket` client that types into an OKR key result's title, the way an
// editor would (proto/DOCUMENT.md: `key_results` → Y.Map → `title` Y.Text), for the okrhub
// interop test that watches the result as `kr.updated` events on /live.
//
//   node live-peer.mjs --url ws://127.0.0.1:PORT/sync --room ROOM --user USER --kr KR_ID
//                      --text TEXT [--timeout-ms 20000]
//
// Connects as ?user=USER (awareness {user: {name: USER}}), waits for the first sync and for
// the KR, appends TEXT to its title one character per transaction (a keystroke each), then
// prints ONE JSON line {"typed": true, "title": "..."} and serves stdin: `quit` or EOF →
// provider.destroy() and exit 0 once the socket is closed. Errors: {"error": "..."}, exit 1.

import { parseArgs } from 'node:util'
import readline from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const log = (...args) => console.error('[live-peer]', ...args)
const finish = (code, obj) => {
  process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(code))
}
const fail = (err) => {
  if (err?.stack) console.error(err.stack)
  finish(1, { error: String(err?.message ?? err) })
}
process.on('uncaughtException', fail)
process.on('unhandledRejection', fail)

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    room: { type: 'string' },
    user: { type: 'string' },
    kr: { type: 'string' },
    text: { type: 'string' },
    'timeout-ms': { type: 'string', default: '20000' }
  }
})
for (const k of ['url', 'room', 'user', 'kr', 'text']) {
  if (!opts[k]) throw new Error(`missing required --${k}`)
}

const doc = new Y.Doc()
const provider = new WebsocketProvider(opts.url, opts.room, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  params: { user: opts.user }
})
provider.awareness.setLocalState({ user: { name: opts.user } })
provider.on('connection-close', (ev) => log('connection closed', ev?.code ?? '(local)', ev?.reason ?? ''))

const keyResults = doc.getMap('key_results')
const title = () => keyResults.get(opts.kr)?.get('title')

const timer = setTimeout(() => fail(`timeout: synced=${provider.synced}, kr found=${!!title()}`),
  Number(opts['timeout-ms']))

let typed = false
const progress = () => {
  if (typed || !provider.synced) return
  const t = title()
  if (!(t instanceof Y.Text)) return
  typed = true
  clearTimeout(timer)
  keyResults.unobserveDeep(progress)
  for (const ch of opts.text) {
    doc.transact(() => t.insert(t.length, ch))
  }
  process.stdout.write(JSON.stringify({ typed: true, title: t.toString() }) + '\n')
  serveStdin()
}
keyResults.observeDeep(progress)
provider.on('sync', progress)
progress()

let quitting = false
const quit = () => {
  if (quitting) return
  quitting = true
  const ws = provider.ws
  provider.destroy()
  if (!ws || ws.readyState === WebSocket.CLOSED) process.exit(0)
  ws.once('close', () => process.exit(0))
  setTimeout(() => { log('close handshake timed out'); ws.terminate() }, 5000).unref()
}

function serveStdin () {
  const rl = readline.createInterface({ input: process.stdin, terminal: false })
  rl.on('line', (line) => { if (line.trim() === 'quit') rl.close() })
  rl.on('close', quit)
}
