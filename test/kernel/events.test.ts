import { describe, expect, it } from 'vitest'
import { EventBus, ManualClock } from '../../src/kernel/index.js'

type Events = { 'mirror.failedOver': { restartPoint: string }; 'snapshot.created': { name: string } }

describe('EventBus', () => {
  it('delivers typed events with name, time and severity; once fires once; off unsubscribes', () => {
    const clock = new ManualClock(1000)
    const bus = new EventBus<Events>(() => clock.now())
    const seen: string[] = []
    const listener = (e: { payload: { name: string } }) => void seen.push(`on:${e.payload.name}`)
    bus.on('snapshot.created', listener)
    bus.once('snapshot.created', (e) => void seen.push(`once:${e.payload.name}`))
    const event = bus.emit('snapshot.created', 'info', { name: 'a' })
    expect(event).toEqual({ name: 'snapshot.created', at: 1000, severity: 'info', payload: { name: 'a' } })
    bus.emit('snapshot.created', 'info', { name: 'b' })
    bus.off('snapshot.created', listener)
    bus.emit('snapshot.created', 'info', { name: 'c' })
    expect(seen).toEqual(['on:a', 'once:a', 'on:b'])
    expect(bus.listenerCount()).toBe(0)
  })

  it('keeps delivering when a listener throws', () => {
    const bus = new EventBus<Events>()
    const seen: string[] = []
    bus.on('mirror.failedOver', () => {
      throw new Error('bad listener')
    })
    bus.on('mirror.failedOver', (e) => void seen.push(e.payload.restartPoint))
    expect(() => bus.emit('mirror.failedOver', 'critical', { restartPoint: 'rp1' })).not.toThrow()
    expect(seen).toEqual(['rp1'])
  })

  it('streams every event as an async iterator until closed', async () => {
    const bus = new EventBus<Events>()
    const stream = bus.stream()
    bus.emit('snapshot.created', 'info', { name: 'a' })
    bus.emit('mirror.failedOver', 'warning', { restartPoint: 'r' })
    const names: string[] = []
    const reading = (async () => {
      for await (const event of stream) names.push(event.name)
    })()
    await new Promise((r) => setTimeout(r, 5))
    bus.emit('snapshot.created', 'info', { name: 'b' })
    await new Promise((r) => setTimeout(r, 5))
    bus.close()
    await reading
    expect(names).toEqual(['snapshot.created', 'mirror.failedOver', 'snapshot.created'])
  })

  it('ends a stream when its signal aborts', async () => {
    const bus = new EventBus<Events>()
    const controller = new AbortController()
    const stream = bus.stream({ signal: controller.signal })
    const next = stream.next()
    controller.abort()
    await expect(next).resolves.toEqual({ value: undefined, done: true })
    expect(bus.listenerCount()).toBe(0)
  })
})
