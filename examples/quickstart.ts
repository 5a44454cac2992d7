/**
 * Quick start: a volume on the embedded local storage, the file journal, a snapshot before a risky change,
 * a restore, a schedule with a retention grid — and a restart that finds the catalog again.
 *
 * Run: npm run demo   (or: npx tsx examples/quickstart.ts [--dir <path>])
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDrSystem, fileStateStore, localStorage } from '../src/index.js'

const dirFlag = process.argv.indexOf('--dir')
const keep = dirFlag >= 0
const root = keep ? (process.argv[dirFlag + 1] ?? './drkit-demo') : await mkdtemp(join(tmpdir(), 'drkit-quickstart-'))
const token = { scope: 'quickstart', value: 1 }
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

async function open() {
  return createDrSystem({
    state: fileStateStore({ dir: join(root, 'state') }),
    sites: { east: { storage: localStorage({ dir: join(root, 'east') }) } },
  })
}

try {
  {
    await using dr = await open()
    const east = dr.site('east').storage
    dr.events.on('snapshot.created', (e) => console.log(`snapshot.created  ${e.payload.volume}@${e.payload.name}`))
    dr.events.on('snapshot.restored', (e) => console.log(`snapshot.restored ${e.payload.volume}@${e.payload.name}`))

    await east.createVolume({ name: 'db', sizeBytes: 64 * 1024 * 1024 }, token)
    await east.write('db', 0, new TextEncoder().encode('schema v1'), token)
    await dr.snapshots.create({ site: 'east', volume: 'db', name: 'before-upgrade', labels: { reason: 'upgrade' } })

    await east.write('db', 0, new TextEncoder().encode('schema v2 (broken)'), token)
    console.log(`after the upgrade: "${text(await east.read('db', 0, 18))}"`)
    await dr.snapshots.restore({ site: 'east', volume: 'db', name: 'before-upgrade' })
    const restored = text(await east.read('db', 0, 9))
    console.log(`after the restore: "${restored}"`)
    if (restored !== 'schema v1') throw new Error(`restore verification failed: read "${restored}"`)

    await dr.snapshots.addSchedule({
      id: 'db-quarter-hourly',
      site: 'east',
      volume: 'db',
      spec: { every: '15m' },
      retention: { keepLast: 4, buckets: [{ every: '1h', count: 24 }, { every: '1d', count: 7 }] },
    })
  }
  {
    await using dr = await open()
    const names = (await dr.snapshots.list({ site: 'east', volume: 'db' })).map((s) => s.name)
    console.log(`after a restart the catalog holds: ${names.join(', ')}; schedules: ${dr.snapshots.listSchedules().map((s) => s.id).join(', ')}`)
    if (!names.includes('before-upgrade')) throw new Error('catalog verification failed after restart')
  }
  console.log('quickstart: every verification passed')
} finally {
  if (!keep) await rm(root, { recursive: true, force: true })
}
