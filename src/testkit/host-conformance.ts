import assert from 'node:assert/strict'
import { isDrError } from '../kernel/errors.js'
import { failsWith } from './assertions.js'
import type { FenceToken } from '../kernel/fencing.js'
import type { HookRequest, HostPolicies, HostPort, MountInfo, VmSpec } from '../ports/host.js'
import { withAdapter, type AdapterFactory, type ConformanceCase } from './conformance.js'

/**
 * What a host conformance case runs against: the host port under test and the name of one of its hosts, online
 * and with room for at least one VM of 1 CPU and 1 MiB. Optional fixtures enable more checks: `actorVolume`, a
 * volume at least one I/O actor of the port is using; `hook`, a request the port runs to the given exit code;
 * `policies`, a host whose agent reports the given protection policies (for ports with `hostPolicies`).
 *
 * @public
 */
export interface HostConformanceTarget {
  readonly host: HostPort
  readonly hostName: string
  readonly actorVolume?: string
  readonly hook?: { readonly request: HookRequest; readonly exitCode: number }
  readonly policies?: { readonly host: string; readonly expected: HostPolicies }
}

const token: FenceToken = { scope: 'conformance-host', value: 5 }
const stale: FenceToken = { ...token, value: 4 }

function vmSpec(id: string, cpus = 1, memoryMb = 1): VmSpec {
  return {
    id,
    name: `conformance ${id}`,
    cpus,
    memoryMb,
    disks: [{ volume: 'conformance-disk', mountPath: '/data' }],
    networks: ['conformance-net'],
    tags: ['conformance'],
    config: { firmware: 'efi', nics: [{ mac: '00:00:5e:00:53:01' }], secureBoot: true },
  }
}

function mountAt(path: string, volume = 'conformance-volume'): MountInfo {
  return { path, volume, identity: `identity-of-${volume}`, options: { mode: 'rw' }, readOnly: false }
}

function registrationCases(factory: AdapterFactory<HostConformanceTarget>): ConformanceCase[] {
  return [
    withAdapter(factory, 'lists its hosts sorted by name and describes each; an unknown host is E_NOT_FOUND', async (t) => {
      const hosts = await t.host.listHosts()
      const names = hosts.map((host) => host.name)
      assert.ok(names.includes(t.hostName))
      assert.deepEqual(names, [...names].sort())
      const info = await t.host.hostInfo(t.hostName)
      assert.equal(info.name, t.hostName)
      assert.equal(info.online, true)
      assert.ok(info.allocatedCpus <= info.cpus && info.allocatedMemoryMb <= info.memoryMb)
      await assert.rejects(t.host.hostInfo('no-such-host'), failsWith('E_NOT_FOUND'))
    }),

    withAdapter(factory, 'registers a VM powered off with its spec unchanged, accounts for it, refuses a duplicate id with E_CONFLICT and unregisters it', async (t) => {
      const before = await t.host.hostInfo(t.hostName)
      const registered = await t.host.registerVm(t.hostName, vmSpec('conformance-vm-1'), token)
      assert.deepEqual(registered, { ...vmSpec('conformance-vm-1'), host: t.hostName, power: 'off' })
      assert.deepEqual(await t.host.getVm('conformance-vm-1'), registered)
      const during = await t.host.hostInfo(t.hostName)
      assert.equal(during.allocatedCpus, before.allocatedCpus + 1)
      assert.equal(during.allocatedMemoryMb, before.allocatedMemoryMb + 1)
      await assert.rejects(t.host.registerVm(t.hostName, vmSpec('conformance-vm-1'), token), failsWith('E_CONFLICT'))
      await t.host.registerVm(t.hostName, vmSpec('conformance-vm-0'), token)
      const listed = (await t.host.listVms(t.hostName)).map((vm) => vm.id).filter((id) => id.startsWith('conformance-vm-'))
      assert.deepEqual(listed, ['conformance-vm-0', 'conformance-vm-1'])
      assert.deepEqual(await t.host.listVms('no-such-host'), [])
      await t.host.unregisterVm('conformance-vm-1', token)
      await t.host.unregisterVm('conformance-vm-0', token)
      assert.equal(await t.host.getVm('conformance-vm-1'), undefined)
      const after = await t.host.hostInfo(t.hostName)
      assert.equal(after.allocatedCpus, before.allocatedCpus)
      assert.equal(after.allocatedMemoryMb, before.allocatedMemoryMb)
    }),

    withAdapter(factory, 'refuses with E_PRECONDITION a VM the host has no CPU or memory left for', async (t) => {
      const before = await t.host.hostInfo(t.hostName)
      const cpus = Math.max(1, Math.ceil((before.cpus - before.allocatedCpus) / 3))
      const memoryMb = Math.max(1, Math.ceil((before.memoryMb - before.allocatedMemoryMb) / 3))
      const registered: string[] = []
      let refused = false
      while (!refused && registered.length < 8) {
        const id = `conformance-big-${registered.length}`
        try {
          await t.host.registerVm(t.hostName, vmSpec(id, cpus, memoryMb), token)
          registered.push(id)
        } catch (error) {
          assert.ok(isDrError(error, 'E_PRECONDITION'), `expected E_PRECONDITION, got ${String(error)}`)
          assert.equal(await t.host.getVm(id), undefined, 'a refused VM is not registered')
          refused = true
        }
      }
      assert.ok(refused, `the host accepted ${registered.length} VMs of ${cpus} CPUs and ${memoryMb} MiB without running out`)
      const full = await t.host.hostInfo(t.hostName)
      assert.equal(full.allocatedCpus, before.allocatedCpus + registered.length * cpus)
      assert.ok(full.allocatedCpus <= full.cpus && full.allocatedMemoryMb <= full.memoryMb)
      for (const id of registered) await t.host.unregisterVm(id, token)
    }),

    withAdapter(factory, 'powers VMs on and off idempotently and refuses to unregister a running VM with E_PRECONDITION', async (t) => {
      await t.host.registerVm(t.hostName, vmSpec('conformance-power'), token)
      await t.host.powerOn('conformance-power', token)
      await t.host.powerOn('conformance-power', token)
      assert.equal((await t.host.getVm('conformance-power'))?.power, 'running')
      await assert.rejects(t.host.unregisterVm('conformance-power', token), failsWith('E_PRECONDITION'))
      assert.notEqual(await t.host.getVm('conformance-power'), undefined)
      await t.host.powerOff('conformance-power', token)
      await t.host.powerOff('conformance-power', token)
      assert.equal((await t.host.getVm('conformance-power'))?.power, 'off')
      await t.host.unregisterVm('conformance-power', token)
    }),

    withAdapter(factory, 'quiesces and unquiesces a running VM (unquiesce is idempotent); quiescing a VM that is off is E_PRECONDITION', async (t) => {
      await t.host.registerVm(t.hostName, vmSpec('conformance-quiesce'), token)
      await assert.rejects(t.host.quiesce('conformance-quiesce', 5000), failsWith('E_PRECONDITION'))
      await t.host.powerOn('conformance-quiesce', token)
      const result = await t.host.quiesce('conformance-quiesce', 5000)
      assert.equal(result.vmId, 'conformance-quiesce')
      assert.equal(typeof result.applicationConsistent, 'boolean')
      assert.ok(Array.isArray(result.writers))
      await t.host.unquiesce('conformance-quiesce')
      await t.host.unquiesce('conformance-quiesce')
      await t.host.powerOff('conformance-quiesce', token)
      await t.host.unregisterVm('conformance-quiesce', token)
    }),

    withAdapter(factory, 'registerVm and powerOn repeated with the idempotency key of a call that succeeded do not act again', async (t) => {
      const id = 'conformance-keyed'
      const first = await t.host.registerVm(t.hostName, vmSpec(id), token, { idempotencyKey: 'conformance-register-1' })
      assert.deepEqual(await t.host.registerVm(t.hostName, vmSpec(id), token, { idempotencyKey: 'conformance-register-1' }), first, 'a retry resolves as the first call did')
      await assert.rejects(t.host.registerVm(t.hostName, vmSpec(id), token, { idempotencyKey: 'conformance-register-2' }), failsWith('E_CONFLICT'))
      assert.deepEqual((await t.host.listVms(t.hostName)).filter((vm) => vm.id === id).length, 1)
      await t.host.powerOn(id, token, { idempotencyKey: 'conformance-start-1' })
      await t.host.powerOff(id, token)
      await t.host.powerOn(id, token, { idempotencyKey: 'conformance-start-1' })
      assert.equal((await t.host.getVm(id))?.power, 'off', 'a retried power-on did not start the VM a second time')
      await t.host.powerOn(id, token, { idempotencyKey: 'conformance-start-2' })
      assert.equal((await t.host.getVm(id))?.power, 'running')
      await t.host.powerOff(id, token)
      await t.host.unregisterVm(id, token)
    }),

    withAdapter(factory, 'reports the protection policies of a host agent (where the port has hostPolicies); an unknown host is E_NOT_FOUND', async (t) => {
      const read = t.host.hostPolicies?.bind(t.host)
      if (read === undefined) return
      const reported = await read(t.hostName)
      assert.ok(reported === undefined || (reported.backupEveryMs > 0 && reported.replicateEveryMs > 0))
      if (t.policies !== undefined) assert.deepEqual(await read(t.policies.host), t.policies.expected)
      await assert.rejects(read('no-such-host'), failsWith('E_NOT_FOUND'))
    }),

    withAdapter(factory, 'answers E_NOT_FOUND for unknown hosts, VMs and actors, and undefined where the port reads optional things', async (t) => {
      await assert.rejects(t.host.registerVm('no-such-host', vmSpec('conformance-lost'), token), failsWith('E_NOT_FOUND'))
      await assert.rejects(t.host.unregisterVm('no-such-vm', token), failsWith('E_NOT_FOUND'))
      await assert.rejects(t.host.powerOn('no-such-vm', token), failsWith('E_NOT_FOUND'))
      await assert.rejects(t.host.powerOff('no-such-vm', token), failsWith('E_NOT_FOUND'))
      await assert.rejects(t.host.quiesce('no-such-vm', 1000), failsWith('E_NOT_FOUND'))
      await assert.rejects(t.host.freezeActor('no-such-actor', token), failsWith('E_NOT_FOUND'))
      await assert.rejects(t.host.thawActor('no-such-actor', token), failsWith('E_NOT_FOUND'))
      assert.equal(await t.host.getVm('no-such-vm'), undefined)
      assert.equal(await t.host.getMount('/no/such/mount'), undefined)
      assert.deepEqual(await t.host.listActors('no-such-volume'), [])
    }),
  ]
}

function mountActorHookCases(factory: AdapterFactory<HostConformanceTarget>): ConformanceCase[] {
  return [
    withAdapter(factory, 'mounts a volume at a free path, refuses a taken path with E_CONFLICT, lists mounts sorted and dismounts idempotently', async (t) => {
      const first = mountAt('/conformance/b', 'vol-b')
      assert.deepEqual(await t.host.mount(first, token), first)
      assert.deepEqual(await t.host.getMount('/conformance/b'), first)
      await assert.rejects(t.host.mount(mountAt('/conformance/b', 'vol-other'), token), failsWith('E_CONFLICT'))
      assert.deepEqual(await t.host.getMount('/conformance/b'), first)
      await t.host.mount(mountAt('/conformance/a', 'vol-a'), token)
      const paths = (await t.host.listMounts()).map((mount) => mount.path).filter((path) => path.startsWith('/conformance/'))
      assert.deepEqual(paths, ['/conformance/a', '/conformance/b'])
      await t.host.dismount('/conformance/b', token)
      await t.host.dismount('/conformance/b', token)
      assert.equal(await t.host.getMount('/conformance/b'), undefined)
      await t.host.dismount('/conformance/a', token)
    }),

    withAdapter(factory, 'lists the actors of a volume and freezes and thaws them idempotently', async (t) => {
      if (t.actorVolume === undefined) return
      const actors = await t.host.listActors(t.actorVolume)
      const actor = actors[0]
      assert.ok(actor !== undefined, `no actor uses volume "${t.actorVolume}"`)
      assert.ok(actors.every((each) => each.volumes.includes(t.actorVolume ?? '')))
      const frozen = async (): Promise<boolean | undefined> =>
        (await t.host.listActors(t.actorVolume ?? '')).find((each) => each.id === actor.id)?.frozen
      await t.host.freezeActor(actor.id, token)
      await t.host.freezeActor(actor.id, token)
      assert.equal(await frozen(), true)
      await t.host.thawActor(actor.id, token)
      await t.host.thawActor(actor.id, token)
      assert.equal(await frozen(), false)
    }),

    withAdapter(factory, "runs a hook and reports its exit code without rejecting for the script's own failure", async (t) => {
      if (t.hook !== undefined) {
        const result = await t.host.runHook(t.hook.request)
        assert.equal(result.exitCode, t.hook.exitCode)
        assert.equal(result.timedOut, false)
      }
      const missing = await t.host.runHook({ script: '/no/such/conformance-hook', args: ['x'], env: { DR_PHASE: 'pre' }, timeoutMs: 5000 })
      assert.ok(missing.exitCode === null || Number.isInteger(missing.exitCode))
      assert.equal(typeof missing.stdout, 'string')
      assert.equal(typeof missing.stderr, 'string')
      assert.equal(typeof missing.timedOut, 'boolean')
    }),
  ]
}

function fencingAndCloseCases(factory: AdapterFactory<HostConformanceTarget>): ConformanceCase[] {
  return [
    withAdapter(factory, 'refuses a stale fence token with E_FENCED on every mutating call and changes nothing', async (t) => {
      const h = t.host
      await h.registerVm(t.hostName, vmSpec('conformance-fenced'), token)
      await assert.rejects(h.registerVm(t.hostName, vmSpec('conformance-stale'), stale), failsWith('E_FENCED'))
      assert.equal(await h.getVm('conformance-stale'), undefined)
      await assert.rejects(h.powerOn('conformance-fenced', stale), failsWith('E_FENCED'))
      assert.equal((await h.getVm('conformance-fenced'))?.power, 'off')
      await h.powerOn('conformance-fenced', token)
      await assert.rejects(h.powerOff('conformance-fenced', stale), failsWith('E_FENCED'))
      assert.equal((await h.getVm('conformance-fenced'))?.power, 'running')
      await h.powerOff('conformance-fenced', token)
      await assert.rejects(h.unregisterVm('conformance-fenced', stale), failsWith('E_FENCED'))
      assert.notEqual(await h.getVm('conformance-fenced'), undefined)
      await assert.rejects(h.mount(mountAt('/conformance/fenced'), stale), failsWith('E_FENCED'))
      assert.equal(await h.getMount('/conformance/fenced'), undefined)
      await h.mount(mountAt('/conformance/fenced'), token)
      await assert.rejects(h.dismount('/conformance/fenced', stale), failsWith('E_FENCED'))
      assert.notEqual(await h.getMount('/conformance/fenced'), undefined)
      if (t.actorVolume !== undefined) {
        const actor = (await h.listActors(t.actorVolume))[0]
        assert.ok(actor !== undefined, `no actor uses volume "${t.actorVolume}"`)
        await assert.rejects(h.freezeActor(actor.id, stale), failsWith('E_FENCED'))
        assert.equal((await h.listActors(t.actorVolume)).find((each) => each.id === actor.id)?.frozen, false)
        await h.freezeActor(actor.id, token)
        await assert.rejects(h.thawActor(actor.id, stale), failsWith('E_FENCED'))
        assert.equal((await h.listActors(t.actorVolume)).find((each) => each.id === actor.id)?.frozen, true)
        await h.thawActor(actor.id, token)
      }
      const newer = { ...token, value: 6 }
      await h.dismount('/conformance/fenced', newer)
      await assert.rejects(h.unregisterVm('conformance-fenced', token), failsWith('E_FENCED'), 'a higher token makes the old one stale')
      await h.unregisterVm('conformance-fenced', { scope: 'conformance-other-scope', value: 1 })
      assert.equal(await h.getVm('conformance-fenced'), undefined)
    }),

    withAdapter(factory, 'presentToken raises the fence floor without changing anything; a stale presentation is refused', async (t) => {
      const h = t.host
      await h.registerVm(t.hostName, vmSpec('conformance-presented'), token)
      const vmsBefore = await h.listVms()
      const mountsBefore = await h.listMounts()
      const newer = { ...token, value: token.value + 1 }
      await h.presentToken(newer)
      assert.deepEqual(await h.listVms(), vmsBefore, 'presentToken changed no VM')
      assert.deepEqual(await h.listMounts(), mountsBefore, 'presentToken changed no mount')
      await assert.rejects(h.powerOn('conformance-presented', token), failsWith('E_FENCED'), 'the superseded token is stale at once')
      await assert.rejects(h.mount(mountAt('/conformance/presented'), token), failsWith('E_FENCED'))
      await assert.rejects(h.presentToken(token), failsWith('E_FENCED'), 'presenting a stale token')
      assert.equal((await h.getVm('conformance-presented'))?.power, 'off')
      assert.equal(await h.getMount('/conformance/presented'), undefined)
      await h.unregisterVm('conformance-presented', newer)
    }),

    withAdapter(factory, 'after close every call rejects with E_CLOSED', async (t) => {
      await t.host.close()
      await assert.rejects(t.host.listHosts(), failsWith('E_CLOSED'))
      await assert.rejects(t.host.getVm('anything'), failsWith('E_CLOSED'))
      await assert.rejects(t.host.registerVm(t.hostName, vmSpec('conformance-closed'), token), failsWith('E_CLOSED'))
      await assert.rejects(t.host.mount(mountAt('/conformance/closed'), token), failsWith('E_CLOSED'))
      await assert.rejects(t.host.runHook({ script: 'true', args: [], env: {}, timeoutMs: 1000 }), failsWith('E_CLOSED'))
      await assert.rejects(t.host.presentToken(token), failsWith('E_CLOSED'))
    }),
  ]
}

/**
 * The conformance suite of `HostPort`: hosts and capacity, VM registration, power and quiesce, idempotency keys,
 * host policies, E_NOT_FOUND
 * codes, mounts, I/O actors (with an `actorVolume`), hooks, fence tokens on every mutating call, and close.
 * Run it against any host adapter: `for (const c of hostConformance(factory)) it(c.name, c.run)`.
 *
 * @public
 */
export function hostConformance(factory: AdapterFactory<HostConformanceTarget>): ConformanceCase[] {
  return [...registrationCases(factory), ...mountActorHookCases(factory), ...fencingAndCloseCases(factory)]
}
