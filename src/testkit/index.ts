/**
 * drkit's testkit: conformance suites that every adapter must pass (the shipped ones run them in drkit's own
 * tests) and a fault injector that makes any adapter slow, failing or crashed on demand.
 *
 * @packageDocumentation
 */

export * from './conformance.js'
export * from './faults.js'
export { storageConformance } from './storage-conformance.js'
export { networkConformance } from './network-conformance.js'
export type { NetworkConformanceTarget } from './network-conformance.js'
export { hostConformance } from './host-conformance.js'
export type { HostConformanceTarget } from './host-conformance.js'
export { stateStoreConformance } from './state-store-conformance.js'
export type { StateStoreFactory } from './state-store-conformance.js'
export type { FencingFactory } from './state-store-conformance-fencing.js'
export type { StoragePort, NetworkPort, HostPort, ByteRange, RangeChange, WriteRangesOptions, HostCallOptions, HostPolicies } from '../ports/index.js'
export type { ManualClock } from '../kernel/clock.js'
export type { StateStore } from '../kernel/state-store.js'
export type { FenceToken } from '../kernel/fencing.js'
