#!/usr/bin/env node
// Every kind of content the stock JS client encodes, for the decode guard's test
// (tests/decode_bounds.rs): one JSON line per sample on stdout,
//   {"what": "...", "kind": "update" | "update_sv" | "frame", "hex": "..."}
// where an update is a v1 update and a frame a whole y-sync frame as y-websocket sends it.
//
//   node contents.mjs

import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'

const out = (what, kind, bytes) =>
  process.stdout.write(JSON.stringify({ what, kind, hex: Buffer.from(bytes).toString('hex') }) + '\n')

// Three clients, with ids across the 53-bit range a JS client may use.
const a = new Y.Doc()
a.clientID = 1
const b = new Y.Doc()
b.clientID = 2 ** 32 + 7
const c = new Y.Doc()
c.clientID = Number.MAX_SAFE_INTEGER
const updates = []
a.on('update', (u) => updates.push(u))

const step = (what, doc, f) => {
  const before = Y.encodeStateVector(doc)
  doc.transact(f)
  out(what, 'update', Y.encodeStateAsUpdate(doc, before))
}

// text: inserts, formatting (ContentFormat), embeds (ContentEmbed), deletions
step('text', a, () => {
  const t = a.getText('title')
  t.insert(0, 'Grow revenue 🚀 en 日本')
  t.format(0, 4, { bold: true, link: { href: 'https://x.example', n: [1, 2.5, null] } })
  t.insertEmbed(5, { image: 'cat.png', size: { w: 10, h: 20 } })
  t.delete(2, 3)
})
// maps with nested Any values (ContentAny), binary (ContentBinary), nested types (ContentType)
step('map', a, () => {
  const m = a.getMap('kr')
  m.set('n', 42)
  m.set('neg', -7)
  m.set('big', 2 ** 40)
  m.set('float', 0.1)
  m.set('f32', 1.5)
  m.set('bigint', 2n ** 62n)
  m.set('yes', true)
  m.set('no', false)
  m.set('nil', null)
  m.set('undef', undefined)
  m.set('s', 'ünïcödé')
  m.set('nested', { a: [1, 'two', { three: [3, [4, [5]]] }], b: { c: null } })
  m.set('bytes', new Uint8Array([1, 2, 3, 255]))
  const inner = new Y.Map()
  m.set('inner', inner)
  inner.set('t', new Y.Text('inner text'))
  inner.set('arr', Y.Array.from([1, 2, 3]))
})
// arrays of mixed content, then removals (deleted content, GC'd structs)
step('array', a, () => {
  const arr = a.getArray('list')
  arr.insert(0, [1, 'x', { k: 'v' }, [1, 2], new Uint8Array([9]), new Y.Map(), new Y.Array()])
  arr.push([new Y.Text('in array')])
  arr.delete(1, 2)
})
step('removals', a, () => {
  a.getMap('kr').delete('inner')
  a.getArray('list').delete(0, 3)
})
// XML: fragment, elements with attributes, text
step('xml', a, () => {
  const frag = a.getXmlFragment('prose')
  const p = new Y.XmlElement('paragraph')
  p.setAttribute('class', 'lead')
  const text = new Y.XmlText('hello')
  text.format(0, 2, { italic: true })
  p.insert(0, [text])
  frag.insert(0, [p, new Y.XmlElement('hr')])
})
// An XML hook, alone: Yjs writes its name after the type ref, which yrs 0.28.1 does not read.
{
  const h = new Y.Doc()
  h.clientID = 5
  const hook = new Y.XmlHook('mention')
  hook.set('user', 'ana')
  h.getXmlFragment('prose').insert(0, [hook])
  out('xml hook', 'update', Y.encodeStateAsUpdate(h))
}
// sub-documents (ContentDoc)
step('subdoc', a, () => {
  const m = a.getMap('docs')
  m.set('plain', new Y.Doc())
  m.set('options', new Y.Doc({ guid: 'guid-1', collectionid: 'col', gc: false, autoLoad: true, meta: { x: 1 } }))
})

// Several clients editing the same doc, and the merges of their updates.
Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
Y.applyUpdate(c, Y.encodeStateAsUpdate(a))
const bUpdates = []
b.on('update', (u) => bUpdates.push(u))
b.getText('title').insert(3, 'B')
b.getMap('kr').set('by-b', { deep: [[[1]]] })
c.getArray('list').insert(0, ['from c'])
Y.applyUpdate(b, Y.encodeStateAsUpdate(c))
out('full state, three clients', 'update', Y.encodeStateAsUpdate(b))
out('diff against a', 'update', Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)))
out('merged updates', 'update', Y.mergeUpdates([...updates, ...bUpdates]))
// A merge with a hole in one client's clocks: written with a skip struct.
if (updates.length >= 3) out('merged with a gap (skip)', 'update', Y.mergeUpdates([updates[0], updates[2]]))
out('state vector', 'update_sv', Y.encodeStateVector(b))
// GC'd content: a doc whose deleted text and types are collected
const g = new Y.Doc()
g.clientID = 99
g.getText('t').insert(0, 'to be collected')
g.getMap('m').set('x', new Y.Map())
g.getMap('m').get('x').set('y', 'z')
g.getText('t').delete(0, 6)
g.getMap('m').delete('x')
out('garbage collected', 'update', Y.encodeStateAsUpdate(g))

// Frames as y-websocket writes them.
const frame = (f) => {
  const e = encoding.createEncoder()
  f(e)
  return encoding.toUint8Array(e)
}
out('sync step 1', 'frame', frame((e) => {
  encoding.writeVarUint(e, 0)
  syncProtocol.writeSyncStep1(e, b)
}))
out('sync step 2', 'frame', frame((e) => {
  encoding.writeVarUint(e, 0)
  syncProtocol.writeSyncStep2(e, b)
}))
out('sync update', 'frame', frame((e) => {
  encoding.writeVarUint(e, 0)
  syncProtocol.writeUpdate(e, Y.encodeStateAsUpdate(c))
}))
const aw = new awarenessProtocol.Awareness(b)
aw.setLocalState({ user: { name: 'Ana', color: '#f00' }, cursor: { anchor: 3, head: [1, 2] } })
const other = new awarenessProtocol.Awareness(c)
other.setLocalState({ user: { name: 'Bo' } })
awarenessProtocol.applyAwarenessUpdate(aw, awarenessProtocol.encodeAwarenessUpdate(other, [c.clientID]), 'remote')
out('awareness', 'frame', frame((e) => {
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(aw, [b.clientID, c.clientID]))
}))
other.setLocalState(null)
out('awareness removal', 'frame', frame((e) => {
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(other, [c.clientID]))
}))
out('query awareness', 'frame', frame((e) => encoding.writeVarUint(e, 3)))
out('auth denied', 'frame', frame((e) => {
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 0)
  encoding.writeVarString(e, 'no')
}))
aw.destroy()
other.destroy()
