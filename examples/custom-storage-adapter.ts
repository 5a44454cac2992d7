/**
 * Writing your own StoragePort adapter and proving it with the testkit. The adapter here is a metering layer:
 * it forwards every call to another StoragePort (the memory adapter, standing in for your array's SDK client) and
 * records per-method call counts, errors and latency — the shape of most first adapters, which wrap a vendor
 * client. The same 70-odd conformance cases that every drkit storage adapter passes are run against it with a tiny
 * runner (use your test runner instead: `for (const c of cases) it(c.name, c.run)`), then fault injection shows
 * that a failing adapter call surfaces as a DrError with a stable code.
 *
 * Run: npx tsx examples/custom-storage-adapter.ts
 */
import { DrError, isDrError, memoryStorage, type FenceToken, type Json, type ShareInfo, type StoragePort } from '../src/index.js'
import { injectFaults, storageConformance } from '../src/testkit/index.js'

/** Per-method counters the metering adapter keeps. */
interface MethodStats {
  calls: number
  errors: number
  totalMs: number
}

/** A StoragePort that forwards to `inner` and meters every call. */
class MeteredStorage implements StoragePort {
  readonly kind: string
  readonly stats = new Map<string, MethodStats>()
  readonly #inner: StoragePort

  constructor(inner: StoragePort) {
    this.#inner = inner
    this.kind = `metered(${inner.kind})`
  }

  async #metered<T>(method: string, call: () => Promise<T>): Promise<T> {
    const stats = this.stats.get(method) ?? { calls: 0, errors: 0, totalMs: 0 }
    this.stats.set(method, stats)
    const started = performance.now()
    stats.calls++
    try {
      return await call()
    } catch (error) {
      stats.errors++
      throw error // keep the inner adapter's DrError (and its code) unchanged
    } finally {
      stats.totalMs += performance.now() - started
    }
  }

  createVolume: StoragePort['createVolume'] = (request, token) => this.#metered('createVolume', () => this.#inner.createVolume(request, token))
  deleteVolume: StoragePort['deleteVolume'] = (volume, token) => this.#metered('deleteVolume', () => this.#inner.deleteVolume(volume, token))
  resizeVolume: StoragePort['resizeVolume'] = (volume, size, token) => this.#metered('resizeVolume', () => this.#inner.resizeVolume(volume, size, token))
  volumeInfo: StoragePort['volumeInfo'] = (volume) => this.#metered('volumeInfo', () => this.#inner.volumeInfo(volume))
  listVolumes: StoragePort['listVolumes'] = () => this.#metered('listVolumes', () => this.#inner.listVolumes())
  setOnline: StoragePort['setOnline'] = (volume, online, token) => this.#metered('setOnline', () => this.#inner.setOnline(volume, online, token))
  setWritable: StoragePort['setWritable'] = (volume, writable, token) => this.#metered('setWritable', () => this.#inner.setWritable(volume, writable, token))
  read: StoragePort['read'] = (volume, offset, length, source) => this.#metered('read', () => this.#inner.read(volume, offset, length, source))
  write: StoragePort['write'] = (volume, offset, data, token) => this.#metered('write', () => this.#inner.write(volume, offset, data, token))
  trim: StoragePort['trim'] = (volume, offset, length, token) => this.#metered('trim', () => this.#inner.trim(volume, offset, length, token))
  readRanges: StoragePort['readRanges'] = (volume, ranges, options) => this.#metered('readRanges', () => this.#inner.readRanges(volume, ranges, options))
  writeRanges: StoragePort['writeRanges'] = (volume, changes, token, options) =>
    this.#metered('writeRanges', () => this.#inner.writeRanges(volume, changes, token, options))
  createSnapshot: StoragePort['createSnapshot'] = (volume, name, token, labels) =>
    this.#metered('createSnapshot', () => this.#inner.createSnapshot(volume, name, token, labels))
  deleteSnapshot: StoragePort['deleteSnapshot'] = (volume, snapshot, token) => this.#metered('deleteSnapshot', () => this.#inner.deleteSnapshot(volume, snapshot, token))
  snapshotInfo: StoragePort['snapshotInfo'] = (volume, snapshot) => this.#metered('snapshotInfo', () => this.#inner.snapshotInfo(volume, snapshot))
  listSnapshots: StoragePort['listSnapshots'] = (volume) => this.#metered('listSnapshots', () => this.#inner.listSnapshots(volume))
  restoreSnapshot: StoragePort['restoreSnapshot'] = (volume, snapshot, token) => this.#metered('restoreSnapshot', () => this.#inner.restoreSnapshot(volume, snapshot, token))
  cloneSnapshot: StoragePort['cloneSnapshot'] = (volume, snapshot, clone, token) =>
    this.#metered('cloneSnapshot', () => this.#inner.cloneSnapshot(volume, snapshot, clone, token))
  holdSnapshot: StoragePort['holdSnapshot'] = (volume, snapshot, tag, token) => this.#metered('holdSnapshot', () => this.#inner.holdSnapshot(volume, snapshot, tag, token))
  releaseSnapshot: StoragePort['releaseSnapshot'] = (volume, snapshot, tag, token) =>
    this.#metered('releaseSnapshot', () => this.#inner.releaseSnapshot(volume, snapshot, tag, token))
  changedBlocks: StoragePort['changedBlocks'] = (volume, from, to) => this.#metered('changedBlocks', () => this.#inner.changedBlocks(volume, from, to))
  fence: StoragePort['fence'] = (volume, token) => this.#metered('fence', () => this.#inner.fence(volume, token))
  unfence: StoragePort['unfence'] = (volume, token) => this.#metered('unfence', () => this.#inner.unfence(volume, token))
  isFenced: StoragePort['isFenced'] = (volume) => this.#metered('isFenced', () => this.#inner.isFenced(volume))
  createShare = (share: Omit<ShareInfo, 'createdAt'>, token: FenceToken) => this.#metered('createShare', () => this.#inner.createShare(share, token))
  deleteShare: StoragePort['deleteShare'] = (name, token) => this.#metered('deleteShare', () => this.#inner.deleteShare(name, token))
  setShareAccess: StoragePort['setShareAccess'] = (name, access, token) => this.#metered('setShareAccess', () => this.#inner.setShareAccess(name, access, token))
  getShare: StoragePort['getShare'] = (name) => this.#metered('getShare', () => this.#inner.getShare(name))
  listShares: StoragePort['listShares'] = () => this.#metered('listShares', () => this.#inner.listShares())
  probeShare: StoragePort['probeShare'] = (name, access) => this.#metered('probeShare', () => this.#inner.probeShare(name, access))
  putConfig = (volume: string, key: string, value: Json, token: FenceToken) => this.#metered('putConfig', () => this.#inner.putConfig(volume, key, value, token))
  getConfig: StoragePort['getConfig'] = (volume, key) => this.#metered('getConfig', () => this.#inner.getConfig(volume, key))
  listConfig: StoragePort['listConfig'] = (volume) => this.#metered('listConfig', () => this.#inner.listConfig(volume))
  deleteConfig: StoragePort['deleteConfig'] = (volume, key, token) => this.#metered('deleteConfig', () => this.#inner.deleteConfig(volume, key, token))
  presentToken: StoragePort['presentToken'] = (token) => this.#metered('presentToken', () => this.#inner.presentToken(token))
  close: StoragePort['close'] = () => this.#metered('close', () => this.#inner.close())
}

// 1. The conformance suite: every case gets a fresh adapter from the factory.
const adapters: MeteredStorage[] = []
const cases = storageConformance({
  create: async () => {
    const adapter = new MeteredStorage(memoryStorage())
    adapters.push(adapter)
    return adapter
  },
  dispose: (adapter) => adapter.close(),
})
const failures: string[] = []
for (const c of cases) {
  try {
    await c.run()
  } catch (error) {
    failures.push(`${c.name}: ${error instanceof Error ? error.message : String(error)}`)
  }
}
console.log(`conformance: ${cases.length - failures.length} of ${cases.length} cases passed`)
for (const failure of failures) console.log(`  FAIL ${failure}`)

const totals = new Map<string, number>()
for (const adapter of adapters) for (const [method, stats] of adapter.stats) totals.set(method, (totals.get(method) ?? 0) + stats.calls)
const busiest = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5)
console.log(`the suite made ${[...totals.values()].reduce((a, b) => a + b, 0)} calls; busiest: ${busiest.map(([m, n]) => `${m} ${n}`).join(', ')}`)

// 2. Fault injection: make every write fail once as the array being unreachable would, and watch it surface.
const token = { scope: 'example', value: 1 }
const metered = new MeteredStorage(memoryStorage())
const faults = injectFaults<StoragePort>(metered, { name: 'metered' })
faults.fail({ method: 'write', times: 1, error: new DrError('E_UNAVAILABLE', 'array unreachable') })
const flaky = faults.port
await flaky.createVolume({ name: 'v', sizeBytes: 1024 * 1024 }, token)
const first = await flaky.write('v', 0, new Uint8Array(4096).fill(7), token).then(() => 'ok', (error: unknown) => (isDrError(error) ? error.code : 'not a DrError'))
await flaky.write('v', 0, new Uint8Array(4096).fill(7), token)
const readBack = await flaky.read('v', 0, 4096)
console.log(`fault injection: first write rejected with ${first}, the retry landed (${readBack.every((b) => b === 7) ? 'data verified' : 'data WRONG'})`)

if (failures.length > 0 || first !== 'E_UNAVAILABLE' || !readBack.every((b) => b === 7)) process.exit(1)
console.log('custom storage adapter: every verification passed')
